/*
 * Every kind of bad input the C ABI documents gets its documented status code, changes nothing, and
 * loses no valid record.
 *
 * usage: bad_input <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

static monitor_api api;

#define EXPECT_STATUS(call, want)                                                          \
    do {                                                                                   \
        int32_t got_ = (call);                                                             \
        CHECK(got_ == (want), "%s returned %d (%s), want %d", #call, got_, api.strerror(got_), (want)); \
    } while (0)

static const char *const GET_HIT = "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}";

static char *last_error(void) { return render_text(api.last_error); }

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    const uint8_t *key = (const uint8_t *)"user:1";

    /* Records with bad codes or pointers. */
    EXPECT_STATUS(api.record(99, CACHE_MONITOR_RESULT_HIT, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_FIRST_CUSTOM, CACHE_MONITOR_RESULT_OK, 1, NULL, 0),
                  CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, 4, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, UINT32_MAX, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_HIT, 1, NULL, 5),
                  CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_HIT, 1, key, SIZE_MAX),
                  CACHE_MONITOR_STATUS_INVALID_LENGTH);
    EXPECT_STATUS(api.begin(99), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.end(99, CACHE_MONITOR_RESULT_HIT, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.set_gauge(2, 1), CACHE_MONITOR_STATUS_UNKNOWN_GAUGE);

    char *text = render_text(api.render);
    CHECK(strstr(text, "cuenv_cache_operations_total{") == NULL, "a refused record was counted:\n%s", text);
    free(text);

    /* Valid edge cases are counted: NULL key, invalid UTF-8, huge duration, zero duration. */
    const uint8_t invalid_utf8[] = {0xff, 0xfe, ':', '1'};
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_HIT, 0, NULL, 0), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_HIT, UINT64_MAX, invalid_utf8,
                             sizeof invalid_utf8), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_HIT, 5, key, 6), CACHE_MONITOR_STATUS_OK);
    /* end with a bad result: refused, but the operation is no longer in flight */
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_PUT), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.end(CACHE_MONITOR_OPERATION_PUT, 17, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    text = render_text(api.render);
    CHECK(sample_value(text, GET_HIT) == 3, "three valid records:\n%s", text);
    CHECK(sample_value(text, "cuenv_cache_stats{metric=\"operations_in_flight\"}") == 0, "in flight:\n%s", text);
    free(text);

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
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001, 0.01]}"), CACHE_MONITOR_STATUS_BUSY); /* records exist */
    text = render_text(api.render);
    CHECK(sample_value(text, GET_HIT) == 3, "namespace and counts unchanged:\n%s", text);
    CHECK(strstr(text, "le=\"0.0025\"") != NULL, "default buckets still in force");
    free(text);

    /* Custom operations take codes from FIRST_CUSTOM once registered. */
    EXPECT_STATUS(api.configure("{\"operations\": [\"compact\"]}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_FIRST_CUSTOM, CACHE_MONITOR_RESULT_OK, 9, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    text = render_text(api.render);
    CHECK(sample_value(text, "cuenv_cache_operations_total{operation=\"compact\",result=\"ok\"}") == 1, "%s", text);
    free(text);

    /* The buffer contract. */
    size_t len = 0;
    EXPECT_STATUS(api.render(NULL, 0, &len), CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL);
    CHECK(len > 100, "size query reports the needed size, got %zu", len);
    char small[16];
    memset(small, 'x', sizeof small);
    EXPECT_STATUS(api.render((uint8_t *)small, sizeof small, &len), CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < sizeof small; i++) {
        CHECK(small[i] == 'x', "nothing written to a too-small buffer");
    }
    EXPECT_STATUS(api.render((uint8_t *)small, sizeof small, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.render(NULL, 64, &len), CACHE_MONITOR_STATUS_NULL_POINTER);
    EXPECT_STATUS(api.last_error(NULL, 0, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);

    /* Reset, then buckets may change. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001, 0.01], \"namespace\": \"edge\"}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_RESULT_MISS, 2000000, key, 6),
                  CACHE_MONITOR_STATUS_OK);
    text = render_text(api.render);
    CHECK(sample_value(text, "edge_operation_duration_seconds_bucket{operation=\"get\",result=\"miss\",le=\"0.001\"}") == 0,
          "%s", text);
    CHECK(sample_value(text, "edge_operation_duration_seconds_bucket{operation=\"get\",result=\"miss\",le=\"0.01\"}") == 1,
          "%s", text);
    CHECK(sample_value(text, "edge_operations_total{operation=\"get\",result=\"hit\"}") == -1, "reset forgot hits");
    free(text);
    text = render_text(api.render_openmetrics);
    CHECK(strstr(text, "# TYPE edge_operations counter\n") != NULL, "OpenMetrics counter family:\n%s", text);
    size_t n = strlen(text);
    CHECK(n >= 6 && strcmp(text + n - 6, "# EOF\n") == 0, "OpenMetrics ends with # EOF");
    free(text);

    /* strerror: every documented code has its own text; unknown codes still get one. */
    const int32_t codes[] = {
        CACHE_MONITOR_STATUS_OK,               CACHE_MONITOR_STATUS_NULL_POINTER,
        CACHE_MONITOR_STATUS_UNKNOWN_OPERATION, CACHE_MONITOR_STATUS_UNKNOWN_RESULT,
        CACHE_MONITOR_STATUS_INVALID_LENGTH,   CACHE_MONITOR_STATUS_INVALID_UTF8,
        CACHE_MONITOR_STATUS_INVALID_JSON,     CACHE_MONITOR_STATUS_INVALID_CONFIG,
        CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL, CACHE_MONITOR_STATUS_UNKNOWN_GAUGE,
        CACHE_MONITOR_STATUS_BUSY,             CACHE_MONITOR_STATUS_INTERNAL,
        CACHE_MONITOR_STATUS_INVALID_ADDRESS,  CACHE_MONITOR_STATUS_ALREADY_SERVING,
        CACHE_MONITOR_STATUS_BIND_FAILED,      CACHE_MONITOR_STATUS_NOT_SERVING,
        CACHE_MONITOR_STATUS_SERVE_FAILED,
    };
    size_t count = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < count; i++) {
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
