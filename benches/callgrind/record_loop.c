/*
 * The C host that benches/callgrind.sh runs under `valgrind --tool=callgrind`: loads the library with
 * dlopen, as a C host does, and calls cache_monitor_record `count` times with durations that move through
 * the buckets, without a key or with the one given. Two runs with different counts give the instructions
 * of one record by difference (start-up, loading and the first record's set-up cancel out).
 *
 * usage: record_loop <libcache_monitor.so> <count> [key]
 */
#include "cache_monitor.h"
#include "loop_host.h"

int main(int argc, char **argv) {
    LoopHost host;
    int status = loop_host_start(argc, argv, "cache_monitor_record", &host);
    if (status != 0) {
        return status;
    }
    CacheMonitorRecordFn record;
    *(void **)(&record) = host.function;
    /* The first record sets things up (the thread's shard, the key's pattern): not what is measured. */
    record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, host.key, host.key_len);
    int32_t failed = 0;
    for (long i = 0; i < host.count; i++) {
        failed |= record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, loop_host_duration_ns((uint64_t)i),
                         host.key, host.key_len);
    }
    return failed != 0;
}
