/*
 * Code written against the names of ABI 1.5 and before still compiles and means the same: the outcome
 * codes' old names (CacheMonitorResult, CACHE_MONITOR_RESULT_*) are the new ones (CacheMonitorOutcome,
 * CACHE_MONITOR_OUTCOME_*), and cache_monitor_end is cache_monitor_finish: it ends the operation and
 * records it, once. Compiled like every host, with -Werror, so the old names must not warn unless the
 * host asks for it (CACHE_MONITOR_WARN_DEPRECATED).
 *
 * usage: deprecated_names <libcache_monitor.so>
 */
#undef CACHE_MONITOR_NO_DEPRECATED /* the hosts are built without the old names; this one uses them */

#include <stdint.h>

#include "host.h"

_Static_assert(CACHE_MONITOR_RESULT_HIT == CACHE_MONITOR_OUTCOME_HIT, "hit");
_Static_assert(CACHE_MONITOR_RESULT_MISS == CACHE_MONITOR_OUTCOME_MISS, "miss");
_Static_assert(CACHE_MONITOR_RESULT_OK == CACHE_MONITOR_OUTCOME_OK, "ok");
_Static_assert(CACHE_MONITOR_RESULT_ERROR == CACHE_MONITOR_OUTCOME_ERROR, "error");
_Static_assert(sizeof(CacheMonitorResult) == sizeof(uint32_t), "the old type is the outcome type");

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    monitor_api api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);

    /* A 1.5 host: the old type and constants, and cache_monitor_end looked up by its old name. */
    CacheMonitorResult hit = CACHE_MONITOR_RESULT_HIT;
    CacheMonitorRecordFn end = NULL;
    *(void **)(&end) = dlsym(api.handle, "cache_monitor_end");
    CHECK(end != NULL, "cache_monitor_end is still exported");
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, hit, 1000, (const uint8_t *)"user:1", 6),
                  CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_LOAD), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(end(CACHE_MONITOR_OPERATION_LOAD, CACHE_MONITOR_RESULT_OK, 2000, NULL, 0), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_LOAD), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_LOAD, CACHE_MONITOR_OUTCOME_OK, 2000, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    /* The trap the old name hid: end records, so a record after it counts the operation again. */
    EXPECT_STATUS(api.record(99, CACHE_MONITOR_RESULT_OK, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    CHECK(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_OK, 1, NULL, 0) != CACHE_MONITOR_RESULT_OK,
          "a status is never compared with an outcome: CACHE_MONITOR_RESULT_OK is 2, success is 0");

    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}") == 1, "%s", text);
    CHECK(sample_value(text, "cuenv_cache_operations_total{operation=\"load\",result=\"ok\"}") == 2,
          "end and finish each record once:\n%s", text);
    CHECK(sample_value(text, "cuenv_cache_stats{metric=\"operations_in_flight\"}") == 0, "nothing in flight:\n%s",
          text);
    release_text(&api, text);
    printf("deprecated_names: CacheMonitorResult, CACHE_MONITOR_RESULT_* and cache_monitor_end still work\n");
    return 0;
}
