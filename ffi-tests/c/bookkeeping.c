/*
 * Issue 14's bookkeeping as a C host sees it: after any sequence of configure, reset, import and record,
 * _count, +Inf and operations_total agree and no count vanishes or comes back.
 *   1. New buckets after a reset: the records after it count everywhere; old records never come back;
 *      new buckets while records count are refused (BUCKETS_LOCKED) and change nothing.
 *   2. Lowering patterns.max: every keyed record still counts under its pattern or under "other".
 *   3. A refused import (a pattern prefix that is not hex) changes nothing: counts, patterns and the
 *      configuration (the snapshot names another namespace).
 *
 * usage: bookkeeping <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

static monitor_api api;

#define GET_HIT "{operation=\"get\",result=\"hit\"}"

static void record_gets(int count, uint64_t duration_ns, const char *key) {
    for (int i = 0; i < count; i++) {
        EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, duration_ns, (const uint8_t *)key,
                                 key ? strlen(key) : 0),
                      CACHE_MONITOR_STATUS_OK);
    }
}

/* operations_total, _count and the +Inf bucket of get/hit agree, and equal `want`. */
static void expect_get_hits(double want, const char *when) {
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    double total = sample_value(text, "cuenv_cache_operations_total" GET_HIT);
    double count = sample_value(text, "cuenv_cache_operation_duration_seconds_count" GET_HIT);
    double inf = sample_value(text, "cuenv_cache_operation_duration_seconds_bucket{operation=\"get\",result=\"hit\",le=\"+Inf\"}");
    if (want == 0) {
        /* A series without records may be left out. */
        CHECK(total <= 0 && count <= 0 && inf <= 0, "%s: total %g, _count %g, +Inf %g, want none", when, total, count, inf);
    } else {
        CHECK(total == want && count == want && inf == want, "%s: total %g, _count %g, +Inf %g, want %g", when, total,
              count, inf, want);
    }
    release_text(&api, text);
}

/* The sum of pattern_operations_total over every pattern (and "other") for result="hit". */
static double pattern_hits(void) {
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    double sum = 0;
    const char *name = "cuenv_cache_pattern_operations_total{pattern=\"";
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, strlen(name)) == 0) {
            const char *labels_end = strchr(line, '}');
            CHECK(labels_end != NULL, "a sample line: %.80s", line);
            if (strstr(line, "result=\"hit\"") != NULL && strstr(line, "result=\"hit\"") < labels_end) {
                sum += strtod(labels_end + 2, NULL);
            }
        }
    }
    release_text(&api, text);
    return sum;
}

/* `text` with the first occurrence of `from` replaced by `to` (malloc'ed). */
static char *replaced(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    CHECK(at != NULL, "%s in the snapshot", from);
    size_t head = (size_t)(at - text), n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    CHECK(out != NULL, "out of memory");
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    return out;
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);

    /* 1. Buckets across resets. */
    record_gets(100, 5000000, NULL);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001]}"), CACHE_MONITOR_STATUS_BUCKETS_LOCKED);
    expect_get_hits(100, "a refused bucket change");
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.001]}"), CACHE_MONITOR_STATUS_OK);
    record_gets(10, 5000000, NULL);
    expect_get_hits(10, "new buckets after a reset");
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"buckets\": [0.0001, 0.001, 0.01, 0.1, 1]}"), CACHE_MONITOR_STATUS_OK);
    expect_get_hits(0, "the old records after two resets and the first buckets again");
    record_gets(3, 5000000, NULL);
    expect_get_hits(3, "records after two resets");

    /* 2. Lowering the pattern cap. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"patterns\": {\"max\": 8}}"), CACHE_MONITOR_STATUS_OK);
    char key[32];
    for (int prefix = 0; prefix < 6; prefix++) {
        snprintf(key, sizeof key, "p%d:item", prefix);
        record_gets(5, 1000, key);
    }
    CHECK(pattern_hits() == 30, "30 keyed records under their patterns: %g", pattern_hits());
    EXPECT_STATUS(api.configure("{\"patterns\": {\"max\": 2}}"), CACHE_MONITOR_STATUS_OK);
    CHECK(pattern_hits() == 30, "after lowering the cap, every keyed record still counts: %g", pattern_hits());
    record_gets(4, 1000, "p5:item");
    CHECK(pattern_hits() == 34, "a record of a pattern above the cap counts as other: %g", pattern_hits());
    expect_get_hits(34, "lowered cap");

    /* 3. A refused import changes nothing. */
    char *snapshot = render(&api, CACHE_MONITOR_FORMAT_STATE_SNAPSHOT);
    char *other = replaced(snapshot, "\"instance\":\"", "\"instance\":\"00000000000000ab");
    char *renamed = replaced(other, "\"namespace\":\"cuenv_cache\"", "\"namespace\":\"intruder\"");
    /* The instance gained 16 digits in front of its own: cut them back to 16. */
    char *at = strstr(renamed, "\"instance\":\"") + strlen("\"instance\":\"") + 16;
    memmove(at, at + 16, strlen(at + 16) + 1);
    char *broken = replaced(renamed, "\"prefix\":\"", "\"prefix\":\"zz");
    char *before = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    EXPECT_STATUS(api.import_state((const uint8_t *)broken, strlen(broken)), CACHE_MONITOR_STATUS_INVALID_SNAPSHOT);
    char *after = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(strstr(after, "intruder") == NULL, "the refused snapshot's namespace is not taken");
    CHECK(pattern_hits() == 34, "patterns unchanged: %g", pattern_hits());
    expect_get_hits(34, "after a refused import");
    CHECK(sample_value(before, "cuenv_cache_operations_total" GET_HIT) ==
              sample_value(after, "cuenv_cache_operations_total" GET_HIT),
          "counts unchanged");
    /* The same snapshot, well-formed, is taken: its counts add, our namespace stays. */
    EXPECT_STATUS(api.import_state((const uint8_t *)renamed, strlen(renamed)), CACHE_MONITOR_STATUS_OK);
    expect_get_hits(68, "after an accepted import");
    CHECK(pattern_hits() == 68, "imported pattern counts add: %g", pattern_hits());

    release_text(&api, before);
    release_text(&api, after);
    release_text(&api, snapshot);
    free(other);
    free(renamed);
    free(broken);
    printf("bookkeeping: buckets across resets, a lowered cap and a refused import lose and add nothing\n");
    return 0;
}
