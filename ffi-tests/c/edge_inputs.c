/*
 * Inputs at the edges of what a host passes, as a C host sees their effect:
 * - frames that are not UTF-8 never cost the record (sampling off or on; the flamegraph shows U+FFFD);
 * - an absurd duration (a "negative" end - start that wrapped) never makes a histogram's _sum fall;
 * - keys with NUL bytes put no NUL into the Prometheus or OpenMetrics text (fputs would stop there);
 * - a finish without a begin does not hide operations of another kind in flight;
 * - finish ends and records, once.
 * The Prometheus render is written to the file given, for promtool.
 *
 * usage: edge_inputs <libcache_monitor.so> <render output>
 */
#include <stdint.h>

#include "host.h"

static monitor_api api;

static const char *const GET_HIT = "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}";
static const char *const GET_HIT_SUM = "cuenv_cache_operation_duration_seconds_sum{operation=\"get\",result=\"hit\"}";
static const char *const IN_FLIGHT = "cuenv_cache_stats{metric=\"operations_in_flight\"}";

static double prometheus_value(const char *series) {
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    double value = sample_value(text, series);
    release_text(&api, text);
    return value;
}

static void frames_never_cost_the_record(void) {
    const uint32_t get = CACHE_MONITOR_OPERATION_GET, hit = CACHE_MONITOR_OUTCOME_HIT;
    const char bad[] = "host.main;bad\xff\xfe;nul\0byte";
    /* Sampling off: the frames are not even read. */
    EXPECT_STATUS(api.record_with_frames(get, hit, 1000, NULL, 0, bad, sizeof bad - 1), CACHE_MONITOR_STATUS_OK);
    CHECK(prometheus_value(GET_HIT) == 1, "counted with sampling off");
    /* Sampling every record: counted, and the bytes that are not UTF-8, and the NUL, show as U+FFFD. */
    EXPECT_STATUS(api.configure("{\"profiler\": {\"sample_every\": 1}}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1000, NULL, 0, bad, sizeof bad - 1), CACHE_MONITOR_STATUS_OK);
    CHECK(prometheus_value(GET_HIT) == 2, "counted with sampling on");
    char *folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    CHECK(strstr(folded, ";host.main;bad\xef\xbf\xbd\xef\xbf\xbd;nul\xef\xbf\xbd" "byte;cache_monitor::get 1\n") != NULL,
          "the frames with U+FFFD:\n%s", folded);
    release_text(&api, folded);
    /* NULL with a length is still a refused argument, which records nothing. */
    EXPECT_STATUS(api.record_with_frames(get, hit, 1000, NULL, 0, NULL, 3), CACHE_MONITOR_STATUS_NULL_POINTER);
    CHECK(prometheus_value(GET_HIT) == 2, "a refused call records nothing");
    EXPECT_STATUS(api.configure("{\"profiler\": {\"sample_every\": 0}}"), CACHE_MONITOR_STATUS_OK);
}

static void the_sum_never_falls(void) {
    const uint32_t get = CACHE_MONITOR_OPERATION_GET, hit = CACHE_MONITOR_OUTCOME_HIT;
    double before = prometheus_value(GET_HIT_SUM);
    EXPECT_STATUS(api.record(get, hit, UINT64_MAX - 999, NULL, 0), CACHE_MONITOR_STATUS_OK); /* end - start < 0 */
    double after = prometheus_value(GET_HIT_SUM);
    double want = before + (double)CACHE_MONITOR_MAX_DURATION_NS / 1e9;
    CHECK(after >= before && after - want < 1e-6 && want - after < 1e-6,
          "an absurd duration counts as the ceiling: %.9f -> %.9f, want %.9f", before, after, want);
    double last = after;
    const uint64_t durations[] = {UINT64_MAX, 5, CACHE_MONITOR_MAX_DURATION_NS + 1, 1u << 20, UINT64_MAX / 2};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        EXPECT_STATUS(api.record(get, hit, durations[i], NULL, 0), CACHE_MONITOR_STATUS_OK);
        double now = prometheus_value(GET_HIT_SUM);
        CHECK(now > last, "_sum went from %.9f to %.9f after a duration of %llu", last, now,
              (unsigned long long)durations[i]);
        last = now;
    }
    CHECK(prometheus_value(GET_HIT) == 8, "every record counted");
}

static void nul_bytes_in_keys(const char *output) {
    const uint8_t key[] = {'n', 'u', 'l', 0, 'k', 'e', 'y', ':', '1'};
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 10, key, sizeof key),
                  CACHE_MONITOR_STATUS_OK);
    const CacheMonitorFormat formats[] = {CACHE_MONITOR_FORMAT_PROMETHEUS, CACHE_MONITOR_FORMAT_OPENMETRICS};
    for (int i = 0; i < 2; i++) {
        uint8_t *out = NULL;
        size_t len = 0;
        EXPECT_STATUS(api.render_alloc(formats[i], &out, &len), CACHE_MONITOR_STATUS_OK);
        const char *text = (const char *)out;
        CHECK(strlen(text) == len, "format %d: a NUL at byte %zu of %zu", i, strlen(text), len);
        CHECK(strstr(text, "{pattern=\"nul\xef\xbf\xbdkey:*\",result=\"ok\"} 1") != NULL, "the pattern with U+FFFD:\n%s",
              text);
        if (formats[i] == CACHE_MONITOR_FORMAT_PROMETHEUS) {
            write_file(output, text);
        }
        api.free(out);
    }
}

static void in_flight_per_operation(void) {
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_GET), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_GET), CACHE_MONITOR_STATUS_OK);
    for (int i = 0; i < 3; i++) { /* a host bug: finishes without a begin */
        EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_DELETE, CACHE_MONITOR_OUTCOME_OK, 10, NULL, 0),
                      CACHE_MONITOR_STATUS_OK);
    }
    CHECK(prometheus_value(IN_FLIGHT) == 2, "two gets in flight, whatever deletes did: %.0f",
          prometheus_value(IN_FLIGHT));
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_DELETE), CACHE_MONITOR_STATUS_OK);
    CHECK(prometheus_value(IN_FLIGHT) == 2, "the delete begun is matched by an earlier finish");
    EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 10, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 10, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    CHECK(prometheus_value(IN_FLIGHT) == 0, "none in flight");
    CHECK(prometheus_value("cuenv_cache_operations_total{operation=\"get\",result=\"miss\"}") == 2,
          "finish records each operation once");
    CHECK(prometheus_value("cuenv_cache_operations_total{operation=\"delete\",result=\"ok\"}") == 3,
          "finish records even without a begin");
}

int main(int argc, char **argv) {
    CHECK(argc == 3, "usage: %s <library> <render output>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    frames_never_cost_the_record();
    the_sum_never_falls();
    nul_bytes_in_keys(argv[2]);
    in_flight_per_operation();
    EXPECT_STATUS(api.shutdown(), CACHE_MONITOR_STATUS_OK);
    printf("edge_inputs: frames, absurd durations, NUL keys and unmatched finishes handled\n");
    return 0;
}
