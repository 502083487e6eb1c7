/*
 * cache_monitor_set_enabled switches monitoring off and on at run time, as {"enabled": ...} does: off,
 * every record, batch, begin and finish returns OK and counts nothing, renders keep showing what was
 * counted, and cache_monitor_is_enabled says so; on again, counting resumes exactly.
 *
 * usage: set_enabled <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

static monitor_api api;

static double gets(const char *result) {
    char *text = copy_text(api.render);
    char series[128];
    snprintf(series, sizeof series, "cuenv_cache_operations_total{operation=\"get\",result=\"%s\"}", result);
    double value = sample_value(text, series);
    free(text);
    return value;
}

static void record_hits(int count) {
    for (int i = 0; i < count; i++) {
        EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, (const uint8_t *)"user:1", 6),
                      CACHE_MONITOR_STATUS_OK);
    }
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    CHECK(api.is_enabled() == 1, "on by default");
    record_hits(5);

    EXPECT_STATUS(api.set_enabled(0), CACHE_MONITOR_STATUS_OK);
    CHECK(api.is_enabled() == 0, "switched off");
    record_hits(10);
    CacheMonitorRecord batch[3] = {
        {CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 10, NULL, 0},
        {CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 10, (const uint8_t *)"k", 1},
        {CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 10, NULL, 0},
    };
    size_t recorded = 99;
    EXPECT_STATUS(api.record_batch(batch, 3, &recorded), CACHE_MONITOR_STATUS_OK);
    CHECK(recorded == 3, "a batch is taken whole (and counts nothing): %zu", recorded);
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_GET), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 10, NULL, 0), CACHE_MONITOR_STATUS_OK);
    /* Bad input is still refused while off. */
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, 99, 10, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    CHECK(gets("hit") == 5 && gets("miss") == -1, "switched off, the renders show what was counted: %g hits",
          gets("hit"));

    EXPECT_STATUS(api.set_enabled(1), CACHE_MONITOR_STATUS_OK);
    CHECK(api.is_enabled() == 1, "switched on");
    record_hits(2);
    CHECK(gets("hit") == 7, "counting resumes: %g hits", gets("hit"));

    /* The configuration's key is the same switch. */
    EXPECT_STATUS(api.configure("{\"enabled\": false}"), CACHE_MONITOR_STATUS_OK);
    CHECK(api.is_enabled() == 0, "configured off");
    record_hits(3);
    CHECK(gets("hit") == 7, "configured off, nothing counted");
    EXPECT_STATUS(api.set_enabled(42), CACHE_MONITOR_STATUS_OK);
    CHECK(api.is_enabled() == 1, "any non-zero value switches on");

    printf("switched off, nothing counted; switched on, counting resumed\n");
    return 0;
}
