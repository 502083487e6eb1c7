/*
 * The batched counterpart of record_loop.c, which benches/callgrind.sh runs under
 * `valgrind --tool=callgrind`: loads the library with dlopen and records `count` operations (durations
 * that move through the buckets, without a key or with the one given) through cache_monitor_record_batch,
 * 256 at a time, as the Go package's Batch hands them over. Two runs with different counts give the
 * instructions of one batched record by difference.
 *
 * usage: batch_loop <libcache_monitor.so> <count> [key]
 */
#include "cache_monitor.h"
#include "loop_host.h"

#define BATCH 256

int main(int argc, char **argv) {
    LoopHost host;
    int status = loop_host_start(argc, argv, "cache_monitor_record_batch", &host);
    if (status != 0) {
        return status;
    }
    CacheMonitorRecordBatchFn record_batch;
    *(void **)(&record_batch) = host.function;
    static CacheMonitorRecord records[BATCH];
    size_t recorded = 0;
    /* The first record sets things up (the thread's shard, the key's pattern): not what is measured. */
    records[0] = (CacheMonitorRecord){CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, host.key,
                                      host.key_len};
    int32_t failed = record_batch(records, 1, &recorded);
    for (long done = 0; done < host.count; done += BATCH) {
        for (long i = 0; i < BATCH; i++) {
            records[i] = (CacheMonitorRecord){CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT,
                                              loop_host_duration_ns((uint64_t)(done + i)), host.key, host.key_len};
        }
        failed |= record_batch(records, BATCH, &recorded);
    }
    return failed != 0;
}
