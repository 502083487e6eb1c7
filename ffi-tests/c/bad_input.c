/*
 * Every kind of bad input the C ABI documents gets its documented status code, changes nothing, and
 * loses no valid record.
 *
 * usage: bad_input <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

static monitor_api api;


static const char *const GET_HIT = "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}";

static char *last_error(void) { return copy_text(api.last_error); }

/* The buffer contract, for a render whose text is longer than 100 bytes: a size query, a buffer too small,
 * a buffer of exactly the reported size (no room for the NUL: refused, unless the text shrank in between,
 * when it must come NUL-terminated), one byte more (NUL-terminated), and NULL arguments. */
static void expect_buffer_contract(CacheMonitorRenderFn write, const char *name) {
    size_t len = 0;
    EXPECT_STATUS(write(NULL, 0, &len), CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL);
    CHECK(len > 100, "%s: size query reports the needed size, got %zu", name, len);
    char small[16];
    memset(small, 'x', sizeof small);
    EXPECT_STATUS(write((uint8_t *)small, sizeof small, &len), CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < sizeof small; i++) {
        CHECK(small[i] == 'x', "%s: nothing written to a too-small buffer", name);
    }

    size_t reported = len;
    char *exact = malloc(reported);
    CHECK(exact != NULL, "out of memory");
    memset(exact, 'x', reported);
    int32_t status = write((uint8_t *)exact, reported, &len);
    if (status == CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) {
        CHECK(len >= reported, "%s: refused %zu bytes for a text of %zu", name, reported, len);
        for (size_t i = 0; i < reported; i++) {
            CHECK(exact[i] == 'x', "%s: nothing written to a buffer of exactly the text's size", name);
        }
    } else {
        /* The text may have shrunk since the size query (a JSON report's time stamp has fewer digits). */
        CHECK(status == CACHE_MONITOR_STATUS_OK && len < reported && exact[len] == '\0',
              "%s: an exact-size buffer gives BUFFER_TOO_SMALL or a NUL-terminated text, got %d with %zu in %zu",
              name, status, len, reported);
    }
    free(exact);

    char *roomy = malloc(len + 64);
    CHECK(roomy != NULL, "out of memory");
    EXPECT_STATUS(write((uint8_t *)roomy, len + 64, &len), CACHE_MONITOR_STATUS_OK);
    CHECK(roomy[len] == '\0' && strlen(roomy) == len, "%s: NUL-terminated after %zu bytes", name, len);
    free(roomy);

    EXPECT_STATUS(write((uint8_t *)small, sizeof small, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(write(NULL, 64, &len), CACHE_MONITOR_STATUS_NULL_POINTER);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    const uint8_t *key = (const uint8_t *)"user:1";

    /* Records with bad codes or pointers. */
    EXPECT_STATUS(api.record(99, CACHE_MONITOR_OUTCOME_HIT, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_FIRST_CUSTOM, CACHE_MONITOR_OUTCOME_OK, 1, NULL, 0),
                  CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, 4, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, UINT32_MAX, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1, NULL, 5),
                  CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1, key, SIZE_MAX),
                  CACHE_MONITOR_STATUS_INVALID_LENGTH);
    EXPECT_STATUS(api.begin(99), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.finish(99, CACHE_MONITOR_OUTCOME_HIT, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.set_gauge(2, 1), CACHE_MONITOR_STATUS_UNKNOWN_GAUGE);

    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(strstr(text, "cuenv_cache_operations_total{") == NULL, "a refused record was counted:\n%s", text);
    release_text(&api, text);

    /* Valid edge cases are counted: NULL key, invalid UTF-8, huge duration, zero duration. */
    const uint8_t invalid_utf8[] = {0xff, 0xfe, ':', '1'};
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 0, NULL, 0), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, UINT64_MAX, invalid_utf8,
                             sizeof invalid_utf8), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 5, key, 6), CACHE_MONITOR_STATUS_OK);
    /* finish with a bad result: refused, but the operation is no longer in flight */
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_PUT), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.finish(CACHE_MONITOR_OPERATION_PUT, 17, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, GET_HIT) == 3, "three valid records:\n%s", text);
    CHECK(sample_value(text, "cuenv_cache_stats{metric=\"operations_in_flight\"}") == 0, "in flight:\n%s", text);
    release_text(&api, text);

    /* Configuration: each kind of bad input, and the previous configuration stays in force. */
    EXPECT_STATUS(api.configure(NULL), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.configure("{\"namespace\": \"\xff\"}"), CACHE_MONITOR_STATUS_INVALID_UTF8);
    EXPECT_STATUS(api.configure("not json"), CACHE_MONITOR_STATUS_INVALID_JSON);
    EXPECT_STATUS(api.configure("[1, 2]"), CACHE_MONITOR_STATUS_INVALID_JSON);
    EXPECT_STATUS(api.configure("{\"colour\": \"red\"}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    char *message = last_error();
    CHECK(strstr(message, "colour") != NULL, "last error names the key: %s", message);
    free(message);
    EXPECT_STATUS(api.configure("{\"namespace\": \"ok_name\", \"buckets\": \"many\"}"),
                  CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"namespace\": \"bad name\"}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.5, 0.1]}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001, 0.01]}"), CACHE_MONITOR_STATUS_BUCKETS_LOCKED); /* records exist */
    message = last_error();
    CHECK(strcmp(message, "histogram buckets can only change before the first record or right after a reset") == 0,
          "last error: %s", message);
    free(message);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, GET_HIT) == 3, "namespace and counts unchanged:\n%s", text);
    CHECK(strstr(text, "le=\"0.0025\"") != NULL, "default buckets still in force");
    release_text(&api, text);

    /* Custom operations take codes from FIRST_CUSTOM once registered. */
    EXPECT_STATUS(api.configure("{\"operations\": [\"compact\"]}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_FIRST_CUSTOM, CACHE_MONITOR_OUTCOME_OK, 9, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, "cuenv_cache_operations_total{operation=\"compact\",result=\"ok\"}") == 1, "%s", text);
    release_text(&api, text);

    /* The buffer contract. */
    expect_buffer_contract(api.render, "render");
    EXPECT_STATUS(api.last_error(NULL, 0, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);

    /* Reset, then buckets may change. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001, 0.01], \"namespace\": \"edge\"}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 2000000, key, 6),
                  CACHE_MONITOR_STATUS_OK);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, "edge_operation_duration_seconds_bucket{operation=\"get\",result=\"miss\",le=\"0.001\"}") == 0,
          "%s", text);
    CHECK(sample_value(text, "edge_operation_duration_seconds_bucket{operation=\"get\",result=\"miss\",le=\"0.01\"}") == 1,
          "%s", text);
    CHECK(sample_value(text, "edge_operations_total{operation=\"get\",result=\"hit\"}") == -1, "reset forgot hits");
    release_text(&api, text);
    text = render(&api, CACHE_MONITOR_FORMAT_OPENMETRICS);
    CHECK(strstr(text, "# TYPE edge_operations counter\n") != NULL, "OpenMetrics counter family:\n%s", text);
    size_t n = strlen(text);
    CHECK(n >= 6 && strcmp(text + n - 6, "# EOF\n") == 0, "OpenMetrics ends with # EOF");
    release_text(&api, text);

    /* The JSON reports and the state export follow the same buffer contract. */
    expect_buffer_contract(api.render_hit_rate_json, "render_hit_rate_json");
    expect_buffer_contract(api.render_stats_json, "render_stats_json");
    expect_buffer_contract(api.export_state, "export_state");
    text = render(&api, CACHE_MONITOR_FORMAT_HIT_RATE_JSON);
    CHECK(text[0] == '{' && strstr(text, "\"pattern\": \"user:*\"") != NULL, "hit-rate JSON:\n%s", text);
    release_text(&api, text);
    text = render(&api, CACHE_MONITOR_FORMAT_STATS_JSON);
    CHECK(text[0] == '{' && strstr(text, "\"operations_in_flight\": 0") != NULL, "stats JSON:\n%s", text);
    release_text(&api, text);

    /* State snapshots: NULL, malformed and foreign ones are refused; our own export cannot come back in. */
    const char *foreign = "{\"format\": \"someone-else\", \"version\": 1}";
    const char *malformed = "{\"format\": \"cache-monitor-state\", \"version\": 1, \"series\": 3}";
    EXPECT_STATUS(api.import_state(NULL, 10), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.import_state((const uint8_t *)"{", 1), CACHE_MONITOR_STATUS_INVALID_SNAPSHOT);
    EXPECT_STATUS(api.import_state((const uint8_t *)"\xff\xfe", 2), CACHE_MONITOR_STATUS_INVALID_SNAPSHOT);
    EXPECT_STATUS(api.import_state((const uint8_t *)malformed, strlen(malformed)), CACHE_MONITOR_STATUS_INVALID_SNAPSHOT);
    EXPECT_STATUS(api.import_state((const uint8_t *)foreign, strlen(foreign)), CACHE_MONITOR_STATUS_FOREIGN_SNAPSHOT);
    text = render(&api, CACHE_MONITOR_FORMAT_STATE_SNAPSHOT);
    EXPECT_STATUS(api.import_state((const uint8_t *)text, strlen(text)), CACHE_MONITOR_STATUS_INVALID_SNAPSHOT);
    release_text(&api, text);
    EXPECT_STATUS(api.shutdown(), CACHE_MONITOR_STATUS_OK);

    /* record_with_frames: the validation and counts of record, plus its frames. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    const char frames[] = "main.main;cache.(*Cache).Get";
    const size_t frames_len = sizeof frames - 1;
    const char cut_utf8[] = {'m', ';', (char)0xc3}; /* a two-byte character without its second byte */
    const uint32_t get = CACHE_MONITOR_OPERATION_GET, hit = CACHE_MONITOR_OUTCOME_HIT;
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, key, 6, NULL, 3), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, key, 6, frames, SIZE_MAX), CACHE_MONITOR_STATUS_INVALID_LENGTH);
    EXPECT_STATUS(api.record_with_frames(99, hit, 1, key, 6, frames, frames_len), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record_with_frames(get, 4, 1, key, 6, frames, frames_len), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, NULL, 6, frames, frames_len), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, key, SIZE_MAX, frames, frames_len),
                  CACHE_MONITOR_STATUS_INVALID_LENGTH);
    const char *const EDGE_GET_HIT = "edge_operations_total{operation=\"get\",result=\"hit\"}";
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, EDGE_GET_HIT) == -1, "a refused record_with_frames was counted:\n%s", text);
    release_text(&api, text);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, key, 6, frames, frames_len), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, NULL, 0, NULL, 0), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, invalid_utf8, sizeof invalid_utf8, "", 0), CACHE_MONITOR_STATUS_OK);
    /* Frames that are not UTF-8 never cost the record (ABI 1.6; INVALID_UTF8 and nothing counted before). */
    EXPECT_STATUS(api.record_with_frames(get, hit, 1, key, 6, cut_utf8, sizeof cut_utf8), CACHE_MONITOR_STATUS_OK);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, EDGE_GET_HIT) == 4, "record_with_frames counts like record:\n%s", text);
    release_text(&api, text);

    /* Profiler configuration: bad values change nothing. */
    EXPECT_STATUS(api.configure("{\"profiler\": {\"max_stacks\": 0}}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"max_stacks\": 16385}}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"sample_every\": -1}}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"weight\": \"bytes\"}}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"rate\": 1}}"), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    message = last_error();
    CHECK(strstr(message, "rate") != NULL, "last error names the key: %s", message);
    free(message);

    /* Flamegraph renders follow the buffer contract: nothing sampled is an empty folded text, which still
       needs one byte, for its NUL. */
    size_t folded_len = 99;
    EXPECT_STATUS(api.render_flamegraph_folded(NULL, 0, &folded_len), CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL);
    CHECK(folded_len == 0, "profiler never configured: empty folded text, got %zu bytes", folded_len);
    char nul_only = 'x';
    EXPECT_STATUS(api.render_flamegraph_folded((uint8_t *)&nul_only, 1, &folded_len), CACHE_MONITOR_STATUS_OK);
    CHECK(folded_len == 0 && nul_only == '\0', "an empty text is a lone NUL");
    EXPECT_STATUS(api.render_flamegraph_folded(NULL, 8, &folded_len), CACHE_MONITOR_STATUS_NULL_POINTER);
    expect_buffer_contract(api.render_flamegraph_svg, "render_flamegraph_svg"); /* an SVG even without samples */
    text = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_SVG);
    CHECK(strstr(text, "</svg>") != NULL, "%s", text);
    release_text(&api, text);

    /* strerror: every documented code has its own text; unknown codes still get one. */
    const int32_t codes[] = {
        CACHE_MONITOR_STATUS_OK,               CACHE_MONITOR_STATUS_NULL_POINTER,
        CACHE_MONITOR_STATUS_UNKNOWN_OPERATION, CACHE_MONITOR_STATUS_UNKNOWN_RESULT,
        CACHE_MONITOR_STATUS_INVALID_LENGTH,   CACHE_MONITOR_STATUS_INVALID_UTF8,
        CACHE_MONITOR_STATUS_INVALID_JSON,     CACHE_MONITOR_STATUS_INVALID_CONFIG,
        CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL, CACHE_MONITOR_STATUS_UNKNOWN_GAUGE,
        CACHE_MONITOR_STATUS_BUSY,             CACHE_MONITOR_STATUS_INTERNAL,
        CACHE_MONITOR_STATUS_INVALID_SNAPSHOT, CACHE_MONITOR_STATUS_FOREIGN_SNAPSHOT,
        CACHE_MONITOR_STATUS_INVALID_ADDRESS,  CACHE_MONITOR_STATUS_ALREADY_SERVING,
        CACHE_MONITOR_STATUS_BIND_FAILED,      CACHE_MONITOR_STATUS_NOT_SERVING,
        CACHE_MONITOR_STATUS_SERVE_FAILED,     CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT,
        CACHE_MONITOR_STATUS_STATE_FILE,
        CACHE_MONITOR_STATUS_RENDER_FAILED,    CACHE_MONITOR_STATUS_BUCKETS_LOCKED,
        CACHE_MONITOR_STATUS_TOO_MANY_IMPORT_SOURCES, CACHE_MONITOR_STATUS_INCOMPATIBLE_SNAPSHOT,
        CACHE_MONITOR_STATUS_UNKNOWN_FORMAT,
    };
    size_t count = sizeof codes / sizeof codes[0];
    CHECK(count == 26, "every code from 0 to -25");
    for (size_t i = 0; i < count; i++) {
        CHECK(codes[i] == -(int32_t)i, "code %zu is %d", i, codes[i]);
        CHECK(api.strerror(codes[i]) != NULL && *api.strerror(codes[i]) != '\0', "strerror(%d)", codes[i]);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(api.strerror(codes[i]), api.strerror(codes[j])) != 0, "codes %d and %d share a text",
                  codes[i], codes[j]);
        }
    }
    CHECK(api.strerror(12345) != NULL, "strerror of an unknown code");

    printf("bad_input: every bad input got its documented code\n");
    return 0;
}
