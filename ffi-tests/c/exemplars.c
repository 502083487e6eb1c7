/*
 * cache_monitor_record_with_exemplar: the record counts as cache_monitor_record's would, and its label set
 * (name=value lines) becomes the latest exemplar of the bucket it counted in, on that bucket's OpenMetrics
 * line and in the protobuf exposition, never in the Prometheus text format. Label sets that are not UTF-8,
 * not name=value lines, with a bad or repeated name or over 128 characters are refused with their status
 * and change nothing; a reset forgets exemplars.
 *
 * usage: exemplars <libcache_monitor.so>
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>

#include "host.h"

static monitor_api api;

static const uint8_t KEY[] = "user:1";

/* get/hit records so far, from the text format. */
static double hits(void) {
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    double value = sample_value(text, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}");
    release_text(&api, text);
    return value;
}

/* The OpenMetrics render (release it with release_text). */
static char *openmetrics(void) { return render(&api, CACHE_MONITOR_FORMAT_OPENMETRICS); }

/* Records a get hit of `duration_ns` with `labels` (`len` bytes), expecting `want`. */
static void record(uint64_t duration_ns, const char *labels, size_t len, int32_t want) {
    EXPECT_STATUS(api.record_with_exemplar(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, duration_ns, KEY,
                                           sizeof KEY - 1, labels, len),
                  want);
}

/* Expects a refusal with `want`, whose last error mentions `says` (unless NULL), changing nothing. */
static void refused(const char *labels, size_t len, int32_t want, const char *says) {
    double before = hits();
    char *shown = openmetrics();
    record(7000000, labels, len, want);
    if (says != NULL) {
        char *error = copy_text(api.last_error);
        CHECK(strstr(error, says) != NULL, "last error %s does not say %s", error, says);
        free(error);
    }
    CHECK(hits() == before, "a refused call counted: %g hits, %g before", hits(), before);
    char *after = openmetrics();
    CHECK(strstr(after, "# {trace_id=\"refused") == NULL, "a refused exemplar is shown:\n%s", after);
    /* The exemplars shown stay the same (the texts differ only in time-dependent gauges). */
    const char *line = strstr(shown, "le=\"0.0025\"}");
    CHECK(line != NULL && strstr(after, "le=\"0.0025\"} 1 # {trace_id=\"abc123\",span_id=\"d=e,f\"} 0.0012 ") != NULL,
          "the kept exemplar changed:\n%s", after);
    release_text(&api, shown);
    release_text(&api, after);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);

    /* 1.2 ms: the (0.001, 0.0025] bucket. A value may hold '=' and ','; one '\n' may end the text. */
    const char *labels = "trace_id=abc123\nspan_id=d=e,f\n";
    record(1200000, labels, strlen(labels), CACHE_MONITOR_STATUS_OK);
    char *text = openmetrics();
    CHECK(strstr(text, "cuenv_cache_operation_duration_seconds_bucket{operation=\"get\",result=\"hit\",le=\"0.0025\"} 1 "
                       "# {trace_id=\"abc123\",span_id=\"d=e,f\"} 0.0012 ") != NULL,
          "no exemplar on the bucket line:\n%s", text);
    CHECK(strstr(text, "le=\"0.001\"} 0 #") == NULL && strstr(text, "le=\"0.005\"} 1 #") == NULL,
          "an exemplar on another bucket:\n%s", text);
    release_text(&api, text);
    text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(strstr(text, " # {") == NULL, "the text format has no exemplars:\n%s", text);
    release_text(&api, text);
    uint8_t *body = NULL;
    size_t len = 0;
    EXPECT_STATUS(api.render_alloc(CACHE_MONITOR_FORMAT_PROTOBUF, &body, &len), CACHE_MONITOR_STATUS_OK);
    CHECK(memmem(body, len, "abc123", 6) != NULL && memmem(body, len, "trace_id", 8) != NULL,
          "the protobuf exposition carries the exemplar");
    api.free(body);

    /* Refused: each returns its status, counts nothing and keeps nothing. */
    char longest[200];
    snprintf(longest, sizeof longest, "trace_id=refused%0113d", 0); /* 8 + 7 + 113 = 128 characters: fits */
    refused("trace_id=refused\xff", 17, CACHE_MONITOR_STATUS_INVALID_UTF8, NULL);
    refused("trace_id", 8, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "is not name=value");
    refused("trace_id=refused\n\nb=1", 21, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "is not name=value");
    refused("\n", 1, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "is not name=value");
    refused("trace-id=refused", 16, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "trace-id");
    refused("__name__=refused", 16, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "reserved");
    refused("trace_id=refused\ntrace_id=2", 27, CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "given twice");
    char too_long[256];
    snprintf(too_long, sizeof too_long, "%s1", longest); /* 129 characters */
    refused(too_long, strlen(too_long), CACHE_MONITOR_STATUS_INVALID_EXEMPLAR, "129 characters");
    refused(NULL, 3, CACHE_MONITOR_STATUS_NULL_POINTER, NULL);
    EXPECT_STATUS(api.record_with_exemplar(99, CACHE_MONITOR_OUTCOME_HIT, 5, NULL, 0, "trace_id=refused", 16),
                  CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    EXPECT_STATUS(api.record_with_exemplar(CACHE_MONITOR_OPERATION_GET, 99, 5, NULL, 0, "trace_id=refused", 16),
                  CACHE_MONITOR_STATUS_UNKNOWN_RESULT);
    EXPECT_STATUS(api.record_with_exemplar(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 5, NULL, 4,
                                           "trace_id=refused", 16),
                  CACHE_MONITOR_STATUS_NULL_POINTER);
    CHECK(hits() == 1, "refusals counted: %g hits", hits());

    /* 128 characters, and no labels at all, are fine. */
    record(20000000000ull, longest, strlen(longest), CACHE_MONITOR_STATUS_OK);
    record(500, NULL, 0, CACHE_MONITOR_STATUS_OK);
    text = openmetrics();
    CHECK(strstr(text, "le=\"+Inf\"} 3 # {trace_id=\"refused000") != NULL, "the +Inf exemplar:\n%s", text);
    CHECK(strstr(text, "le=\"0.000001\"} 1 # {} 5e-7 ") != NULL, "an exemplar without labels:\n%s", text);
    release_text(&api, text);
    CHECK(hits() == 3, "%g hits", hits());

    /* A reset forgets them. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1200000, KEY, sizeof KEY - 1),
                  CACHE_MONITOR_STATUS_OK);
    text = openmetrics();
    CHECK(strstr(text, " # {") == NULL, "a reset forgets exemplars:\n%s", text);
    release_text(&api, text);

    printf("exemplars shown on their buckets; refused label sets changed nothing\n");
    return 0;
}
