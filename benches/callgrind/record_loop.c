/*
 * The C host that benches/callgrind.sh runs under `valgrind --tool=callgrind`: loads the library with
 * dlopen, as a C host does, and calls cache_monitor_record `count` times with durations that move through
 * the buckets, without a key or with the one given. Two runs with different counts give the instructions
 * of one record by difference (start-up, loading and the first record's set-up cancel out).
 *
 * usage: record_loop <libcache_monitor.so> <count> [key]
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_monitor.h"

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
    CacheMonitorRecordFn record;
    *(void **)(&record) = dlsym(library, "cache_monitor_record");
    if (record == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    long count = atol(argv[2]);
    const uint8_t *key = argc > 3 ? (const uint8_t *)argv[3] : NULL;
    size_t key_len = argc > 3 ? strlen(argv[3]) : 0;
    /* The first record sets things up (the thread's shard, the key's pattern): not what is measured. */
    record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, key, key_len);
    int32_t failed = 0;
    for (long i = 0; i < count; i++) {
        uint64_t duration_ns = 800 + (((uint64_t)i * 2654435761u) & 0xffff);
        failed |= record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, duration_ns, key, key_len);
    }
    return failed != 0;
}
