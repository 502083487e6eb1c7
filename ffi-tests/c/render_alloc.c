/*
 * cache_monitor_render_alloc renders every CacheMonitorFormat once into a buffer of the library's, which
 * cache_monitor_free releases (run under valgrind too: nothing leaks, nothing is freed twice). The text is
 * what the two-call render writes, NUL-terminated; bad formats and pointers are refused with *out NULL and
 * *len 0. Also the version string.
 *
 * usage: render_alloc <libcache_monitor.so>
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>

#include "host.h"

static monitor_api api;

/* A format, the two-call render of the same text, and what its text starts with. */
typedef struct {
    CacheMonitorFormat format;
    CacheMonitorRenderFn two_call;
    const char *starts;
} format_case;

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    const char *version = api.version_string();
    char want[64];
    snprintf(want, sizeof want, " (C ABI %d.%d)", CACHE_MONITOR_ABI_VERSION_MAJOR, CACHE_MONITOR_ABI_VERSION_MINOR);
    CHECK(strncmp(version, "cache-monitor ", 14) == 0 && strstr(version, want) != NULL, "version string: %s", version);
    CHECK(version == api.version_string(), "the version string is static");

    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"sample_every\": 1}}"), CACHE_MONITOR_STATUS_OK);
    for (int i = 0; i < 50; i++) {
        EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, i % 2 ? CACHE_MONITOR_OUTCOME_HIT : CACHE_MONITOR_OUTCOME_MISS,
                                 1000 + i, (const uint8_t *)"user:7", 6),
                      CACHE_MONITOR_STATUS_OK);
    }

    const format_case cases[] = {
        {CACHE_MONITOR_FORMAT_PROMETHEUS, api.render, "# HELP cuenv_cache_operations_total "},
        {CACHE_MONITOR_FORMAT_OPENMETRICS, api.render_openmetrics, "# HELP cuenv_cache_operations "},
        {CACHE_MONITOR_FORMAT_HIT_RATE_JSON, api.render_hit_rate_json, "{"},
        {CACHE_MONITOR_FORMAT_STATS_JSON, api.render_stats_json, "{"},
        {CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED, api.render_flamegraph_folded, "_start;"},
        {CACHE_MONITOR_FORMAT_FLAMEGRAPH_SVG, api.render_flamegraph_svg, "<?xml"},
        {CACHE_MONITOR_FORMAT_STATE_SNAPSHOT, api.export_state, "{\"format\":\"cache-monitor-state\""},
    };
    const size_t count = sizeof cases / sizeof cases[0];
    CHECK(count == CACHE_MONITOR_FORMAT_STATE_SNAPSHOT + 1, "every text format");
    for (size_t i = 0; i < count; i++) {
        uint8_t *out = (uint8_t *)"not touched";
        size_t len = 12345;
        EXPECT_STATUS(api.render_alloc(cases[i].format, &out, &len), CACHE_MONITOR_STATUS_OK);
        const char *text = (const char *)out;
        CHECK(out != NULL && out[len] == '\0' && strlen(text) == len, "format %u: %zu bytes, NUL-terminated",
              (unsigned)cases[i].format, len);
        CHECK(strncmp(text, cases[i].starts, strlen(cases[i].starts)) == 0, "format %u starts with %s:\n%.200s",
              (unsigned)cases[i].format, cases[i].starts, text);
        if (cases[i].format == CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED) {
            /* A text without anything time-dependent (rates, windows): the two-call render of a quiet
               monitor writes the same bytes. */
            char *two_call = copy_text(cases[i].two_call);
            CHECK(strcmp(two_call, text) == 0, "format %u: render_alloc and the two-call render agree",
                  (unsigned)cases[i].format);
            free(two_call);
        } else if (cases[i].format == CACHE_MONITOR_FORMAT_PROMETHEUS) {
            char *two_call = copy_text(cases[i].two_call);
            const char *series = "cuenv_cache_operations_total{operation=\"get\",result=\"miss\"}";
            CHECK(sample_value(text, series) == 25 && sample_value(two_call, series) == 25,
                  "format %u: render_alloc and the two-call render count alike", (unsigned)cases[i].format);
            free(two_call);
        }
        api.free(out);
    }
    /* The protobuf exposition is binary (NUL bytes inside): its length is what counts, and a NUL follows. */
    {
        uint8_t *out = NULL;
        size_t len = 0;
        EXPECT_STATUS(api.render_alloc(CACHE_MONITOR_FORMAT_PROTOBUF, &out, &len), CACHE_MONITOR_STATUS_OK);
        CHECK(out != NULL && len > 0 && out[len] == '\0', "protobuf: %zu bytes, then a NUL", len);
        /* The first message is length-delimited (a varint), and names the first family. */
        CHECK(memmem(out, len, "cuenv_cache_operations_total", 28) != NULL, "protobuf names the families");
        api.free(out);
    }

    char *prometheus = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(prometheus, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}") == 25, "%s",
          prometheus);
    release_text(&api, prometheus);

    /* Refusals leave *out NULL and *len 0, and nothing to free. */
    uint8_t *out = (uint8_t *)"not touched";
    size_t len = 12345;
    EXPECT_STATUS(api.render_alloc(CACHE_MONITOR_FORMAT_PROTOBUF + 1, &out, &len),
                  CACHE_MONITOR_STATUS_UNKNOWN_FORMAT);
    CHECK(out == NULL && len == 0, "refused: *out NULL and *len 0");
    char *message = copy_text(api.last_error);
    CHECK(strcmp(message, "unknown render format code 8") == 0, "last error: %s", message);
    free(message);
    len = 12345;
    EXPECT_STATUS(api.render_alloc(UINT32_MAX, &out, &len), CACHE_MONITOR_STATUS_UNKNOWN_FORMAT);
    EXPECT_STATUS(api.render_alloc(CACHE_MONITOR_FORMAT_PROMETHEUS, NULL, &len), CACHE_MONITOR_STATUS_NULL_POINTER);
    CHECK(len == 0, "*len is 0 after a refusal");
    out = (uint8_t *)"not touched";
    EXPECT_STATUS(api.render_alloc(CACHE_MONITOR_FORMAT_PROMETHEUS, &out, NULL), CACHE_MONITOR_STATUS_NULL_POINTER);
    CHECK(out == NULL, "*out is NULL after a refusal");
    api.free(NULL); /* does nothing */

    /* Many renders, each freed: under valgrind, nothing is lost. (Not the flamegraphs, each of which reads
       the debug information again: slow under valgrind, and rendered above.) */
    for (int i = 0; i < 100; i++) {
        char *text = render(&api, (CacheMonitorFormat)(i % CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED));
        release_text(&api, text);
    }
    EXPECT_STATUS(api.shutdown(), CACHE_MONITOR_STATUS_OK);
    printf("render_alloc: every format rendered once, NUL-terminated and freed; refusals allocate nothing\n");
    return 0;
}
