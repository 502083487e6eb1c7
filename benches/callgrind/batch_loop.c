/*
 * The batched counterpart of record_loop.c, which benches/callgrind.sh runs under
 * `valgrind --tool=callgrind`: loads the library with dlopen and records `count` operations (durations
 * that move through the buckets, without a key or with the one given) through cache_monitor_record_batch,
 * 256 at a time, as the Go package's Batch hands them over. Two runs with different counts give the
 * instructions of one batched record by difference.
 *
 * usage: batch_loop <libcache_monitor.so> <count> [key]
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_monitor.h"

#define BATCH 256

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <library> <count> [key]\n", argv[0]);
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CacheMonitorRecordBatchFn record_batch;
    *(void **)(&record_batch) = dlsym(library, "cache_monitor_record_batch");
    if (record_batch == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    long count = atol(argv[2]);
    const uint8_t *key = argc > 3 ? (const uint8_t *)argv[3] : NULL;
    size_t key_len = argc > 3 ? strlen(argv[3]) : 0;
    static CacheMonitorRecord records[BATCH];
    size_t recorded = 0;
    /* The first record sets things up (the thread's shard, the key's pattern): not what is measured. */
    records[0] = (CacheMonitorRecord){CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, key, key_len};
    int32_t failed = record_batch(records, 1, &recorded);
    for (long done = 0; done < count; done += BATCH) {
        for (long i = 0; i < BATCH; i++) {
            uint64_t duration_ns = 800 + (((uint64_t)(done + i) * 2654435761u) & 0xffff);
            records[i] = (CacheMonitorRecord){CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, duration_ns, key,
                                              key_len};
        }
        failed |= record_batch(records, BATCH, &recorded);
    }
    return failed != 0;
}
