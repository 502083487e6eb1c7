/*
 * cache_monitor_record_batch with mixed good and bad records: each call records the records before the
 * first refused one, returns that record's status and says in *recorded how many counted, so the host
 * can keep its own exact tally; the render must then show exactly that tally. Batch records are sampled
 * like single ones, and the batch entry point is cut from their stacks like cache_monitor_record.
 *
 * usage: record_batch <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

#define OPERATIONS 8 /* the built-in ones and "compact", registered as the first custom code */
#define RESULTS 4
#define LARGE_BATCH 1000

static monitor_api api;

static const char *const OPERATION_NAMES[OPERATIONS] = {"get",   "put",   "delete", "contains",
                                                        "clear", "evict", "load",   "compact"};
static const char *const RESULT_NAMES[RESULTS] = {"hit", "miss", "ok", "error"};

/* What the host knows it recorded: [operation][result], and per key pattern ("user:*", "session:*"). */
static uint64_t expected[OPERATIONS][RESULTS];
static uint64_t expected_user_hits, expected_session_ok;

static CacheMonitorRecord record(uint32_t op, uint32_t result, uint64_t duration_ns, const char *key) {
    CacheMonitorRecord r;
    r.operation = op;
    r.result = result;
    r.duration_ns = duration_ns;
    r.key = (const uint8_t *)key;
    r.key_len = key ? strlen(key) : 0;
    return r;
}

/* Adds records[0 .. recorded) to the host's tally. */
static void tally(const CacheMonitorRecord *records, size_t recorded) {
    for (size_t i = 0; i < recorded; i++) {
        expected[records[i].operation][records[i].result]++;
        if (records[i].key_len >= 5 && memcmp(records[i].key, "user:", 5) == 0 &&
            records[i].result == CACHE_MONITOR_OUTCOME_HIT) {
            expected_user_hits++;
        }
        if (records[i].key_len >= 8 && memcmp(records[i].key, "session:", 8) == 0 &&
            records[i].result == CACHE_MONITOR_OUTCOME_OK) {
            expected_session_ok++;
        }
    }
}

/* Sends records[0 .. count) and checks the status and the count recorded; tallies what counted. */
static void send(const CacheMonitorRecord *records, size_t count, int32_t want_status, size_t want_recorded) {
    size_t recorded = (size_t)-1;
    EXPECT_STATUS(api.record_batch(records, count, &recorded), want_status);
    CHECK(recorded == want_recorded, "recorded %zu of %zu, want %zu", recorded, count, want_recorded);
    tally(records, recorded);
}

static void expect_last_error_contains(const char *needle) {
    char *message = copy_text(api.last_error);
    CHECK(strstr(message, needle) != NULL, "last error %s does not mention %s", message, needle);
    free(message);
}

/* Every series of the render against the host's tally. */
static void expect_render_matches_tally(void) {
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    char series[256];
    uint64_t total = 0;
    for (int op = 0; op < OPERATIONS; op++) {
        for (int result = 0; result < RESULTS; result++) {
            double want = expected[op][result] ? (double)expected[op][result] : -1; /* absent until recorded */
            snprintf(series, sizeof series, "cuenv_cache_operations_total{operation=\"%s\",result=\"%s\"}",
                     OPERATION_NAMES[op], RESULT_NAMES[result]);
            CHECK(sample_value(text, series) == want, "%s: got %.0f, want %.0f", series, sample_value(text, series),
                  want);
            snprintf(series, sizeof series,
                     "cuenv_cache_operation_duration_seconds_bucket{operation=\"%s\",result=\"%s\",le=\"+Inf\"}",
                     OPERATION_NAMES[op], RESULT_NAMES[result]);
            CHECK(sample_value(text, series) == want, "%s: got %.0f, want %.0f", series, sample_value(text, series),
                  want);
            total += expected[op][result];
        }
    }
    const char *user_hits = "cuenv_cache_pattern_operations_total{pattern=\"user:*\",result=\"hit\"}";
    CHECK(sample_value(text, user_hits) == (double)expected_user_hits, "%s: got %.0f, want %llu", user_hits,
          sample_value(text, user_hits), (unsigned long long)expected_user_hits);
    const char *session_ok = "cuenv_cache_pattern_operations_total{pattern=\"session:*\",result=\"ok\"}";
    CHECK(sample_value(text, session_ok) == (double)expected_session_ok, "%s: got %.0f, want %llu", session_ok,
          sample_value(text, session_ok), (unsigned long long)expected_session_ok);
    CHECK(total > 0, "nothing tallied");
    release_text(&api, text);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"operations\": [\"compact\"], \"profiler\": {\"sample_every\": 1}}"),
                  CACHE_MONITOR_STATUS_OK);
    const uint32_t GET = CACHE_MONITOR_OPERATION_GET, PUT = CACHE_MONITOR_OPERATION_PUT,
                   COMPACT = CACHE_MONITOR_OPERATION_FIRST_CUSTOM, LOAD = CACHE_MONITOR_OPERATION_LOAD;
    const uint32_t HIT = CACHE_MONITOR_OUTCOME_HIT, MISS = CACHE_MONITOR_OUTCOME_MISS, OK = CACHE_MONITOR_OUTCOME_OK,
                   ERROR = CACHE_MONITOR_OUTCOME_ERROR;

    /* Mixed: four good records, a bad result code, then good ones that must not count. */
    CacheMonitorRecord mixed[] = {
        record(GET, HIT, 1000, "user:1"),     record(GET, MISS, 2000, NULL),
        record(PUT, OK, 3000, "session:9"),   record(COMPACT, OK, 4000, "plain"),
        record(GET, 9, 5000, "user:2"),       record(GET, HIT, 6000, "user:3"),
        record(LOAD, ERROR, 7000, "user:4"),
    };
    size_t n = sizeof mixed / sizeof mixed[0];
    send(mixed, n, CACHE_MONITOR_STATUS_UNKNOWN_RESULT, 4);
    expect_last_error_contains("unknown result code 9");
    expect_render_matches_tally();

    /* The host fixes the refused record and resends the rest: all three count. */
    mixed[4].result = HIT;
    send(mixed + 4, n - 4, CACHE_MONITOR_STATUS_OK, 3);
    expect_render_matches_tally();

    /* Each kind of bad record stops the batch at its index. */
    CacheMonitorRecord bad_operation[] = {record(GET, HIT, 10, "user:5"), record(99, OK, 10, NULL),
                                          record(PUT, OK, 10, NULL)};
    send(bad_operation, 3, CACHE_MONITOR_STATUS_UNKNOWN_OPERATION, 1);
    expect_last_error_contains("unknown operation code 99");
    CacheMonitorRecord null_key[] = {record(PUT, OK, 10, "session:1"), record(PUT, OK, 10, "session:2"),
                                     record(GET, HIT, 10, NULL), record(GET, HIT, 10, NULL)};
    null_key[2].key_len = 4;
    send(null_key, 4, CACHE_MONITOR_STATUS_NULL_POINTER, 2);
    CacheMonitorRecord huge_key[] = {record(GET, MISS, 10, "user:6"), record(GET, HIT, 10, "user:7")};
    huge_key[0].key_len = SIZE_MAX;
    send(huge_key, 2, CACHE_MONITOR_STATUS_INVALID_LENGTH, 0);
    expect_render_matches_tally();

    /* The arguments themselves. */
    send(NULL, 0, CACHE_MONITOR_STATUS_OK, 0);
    send(NULL, 3, CACHE_MONITOR_STATUS_NULL_POINTER, 0);
    send(mixed, SIZE_MAX, CACHE_MONITOR_STATUS_INVALID_LENGTH, 0);
    EXPECT_STATUS(api.record_batch(mixed, n, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);
    expect_render_matches_tally(); /* the call without `recorded` recorded nothing */

    /* A large good batch. */
    static CacheMonitorRecord large[LARGE_BATCH];
    static const char *const KEYS[] = {"user:10", "session:10", "path/a", NULL};
    for (int i = 0; i < LARGE_BATCH; i++) {
        uint32_t op = (uint32_t)(i % OPERATIONS);
        uint32_t result = op == GET || op == CACHE_MONITOR_OPERATION_CONTAINS ? (i % 3 ? HIT : MISS)
                                                                              : (i % 7 ? OK : ERROR);
        large[i] = record(op, result, (uint64_t)i * 1000, KEYS[i % 4]);
    }
    send(large, LARGE_BATCH, CACHE_MONITOR_STATUS_OK, LARGE_BATCH);
    expect_render_matches_tally();

    /* Every record was sampled (sample_every 1); no stack shows the batch entry point itself. */
    char *folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    CHECK(strstr(folded, "cache_monitor::get ") != NULL && strstr(folded, "cache_monitor::compact ") != NULL,
          "batch records are sampled:\n%s", folded);
    CHECK(strstr(folded, "cache_monitor_record_batch") == NULL, "the entry point is cut from stacks:\n%s", folded);
    release_text(&api, folded);

    uint64_t total = 0;
    for (int op = 0; op < OPERATIONS; op++) {
        for (int result = 0; result < RESULTS; result++) {
            total += expected[op][result];
        }
    }
    printf("record_batch: %llu records counted exactly through mixed batches\n", (unsigned long long)total);
    return 0;
}
