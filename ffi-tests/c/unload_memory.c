/*
 * Load, use and unload the library `cycles` times: configure, record (sampled), every render including the
 * SVG flamegraph, serve, scrape /metrics and the flamegraphs, stop (a library built without the exporter
 * skips serving), shut down, dlclose. tests/unload_memory.rs
 * runs it under valgrind: whatever the library allocated must be freed by the time it is unloaded, so
 * valgrind finds nothing definitely or indirectly lost however many cycles run.
 *
 * No call here fails on purpose: the text of the last error is the C ABI's to free (it is becoming a
 * per-thread buffer that allocates nothing), and this host measures everything else.
 *
 * Symbolising sampled stacks is most of the work, and slow under valgrind: with "quick", a cycle renders
 * one flamegraph directly and one through the exporter (the SVG), instead of every render and endpoint.
 *
 * usage: unload_memory <libcache_monitor.so> [cycles [quick]]
 */
#include <errno.h>
#include <unistd.h>

#include "host.h"
#include "http.h"


/* Whether the library's file is mapped into this process. */
static int library_mapped(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL, "open /proc/self/maps");
    char line[4096];
    int mapped = 0;
    while (fgets(line, sizeof line, maps)) {
        mapped |= strstr(line, "libcache_monitor") != NULL;
    }
    fclose(maps);
    return mapped;
}

static monitor_api api;

/* A render with the buffer contract that renders once: the buffer is large enough for every text here. */
static char *render_once(CacheMonitorRenderFn render) {
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL, "out of memory");
    EXPECT_STATUS(render((uint8_t *)buf, cap, &len), CACHE_MONITOR_STATUS_OK);
    CHECK(len < cap, "the text fits");
    return buf;
}

static void cycle(const char *path, int round, int quick) {
    api = load_monitor(path);
    EXPECT_STATUS(api.configure("{\"namespace\": \"unload\", \"operations\": [\"warm\"], \"buckets\": [0.001, 0.01],"
                                " \"patterns\": {\"delimiters\": \":\"}, \"profiler\": {\"sample_every\": 1},"
                                " \"http\": {\"basic_auth\": {\"user\": \"u\", \"password\": \"p\"}}}"),
                  CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.configure("{\"http\": {\"basic_auth\": null}}"), CACHE_MONITOR_STATUS_OK);
    for (int i = 0; i < 200; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "user:%d", i % 7);
        EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, i % 3 ? CACHE_MONITOR_OUTCOME_HIT : CACHE_MONITOR_OUTCOME_MISS,
                                 1000 + (uint64_t)i, (const uint8_t *)key, (size_t)n),
                      CACHE_MONITOR_STATUS_OK);
        EXPECT_STATUS(api.record_with_frames(7, CACHE_MONITOR_OUTCOME_OK, 500, NULL, 0, "host.warm", 9),
                      CACHE_MONITOR_STATUS_OK);
    }
    EXPECT_STATUS(api.begin(CACHE_MONITOR_OPERATION_PUT), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.end(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 2000, NULL, 0), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.set_gauge(CACHE_MONITOR_GAUGE_ENTRIES, 7), CACHE_MONITOR_STATUS_OK);

    CacheMonitorRenderFn renders[] = {api.render,          api.render_openmetrics, api.render_hit_rate_json,
                                      api.render_stats_json, api.render_flamegraph_svg, api.render_flamegraph_folded,
                                      api.export_state};
    size_t count = quick ? 5 : sizeof renders / sizeof renders[0];
    for (size_t i = 0; i < count; i++) {
        free(render_once(renders[i]));
    }
    char *metrics = render_once(api.render);
    CHECK(sample_value(metrics, "unload_operations_total{operation=\"get\",result=\"hit\"}") == 133,
          "the counts:\n%s", metrics);
    free(metrics);
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);

    int32_t served = api.serve("127.0.0.1:0");
    CHECK(served == CACHE_MONITOR_STATUS_OK || served == CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT, "serve: %d", served);
    if (served == CACHE_MONITOR_STATUS_OK) {
        char *address = copy_text(api.serve_address);
        CHECK(http_status(address, "/metrics", 0) == 200, "scrape");
        CHECK(http_status(address, "/flamegraph.svg", 0) == 200, "flamegraph");
        CHECK(quick || http_status(address, "/flamegraph.folded", 0) == 200, "folded");
        free(address);
        EXPECT_STATUS(api.serve_stop(), CACHE_MONITOR_STATUS_OK);
    }
    EXPECT_STATUS(api.shutdown(), CACHE_MONITOR_STATUS_OK);

    CHECK(dlclose(api.handle) == 0, "dlclose: %s", dlerror());
    CHECK(!library_mapped(), "round %d: dlclose left the library mapped", round);
}

int main(int argc, char **argv) {
    CHECK(argc >= 2 && argc <= 4, "usage: %s <library> [cycles [quick]]", argv[0]);
    int cycles = argc >= 3 ? atoi(argv[2]) : 10;
    CHECK(cycles > 0, "cycles: %s", argv[2]);
    int quick = argc == 4 && strcmp(argv[3], "quick") == 0;
    CHECK(argc < 4 || quick, "the third argument is \"quick\" or nothing: %s", argv[3]);
    for (int round = 0; round < cycles; round++) {
        cycle(argv[1], round, quick);
    }
    printf("unload_memory: %d load, use and unload cycles%s\n", cycles, quick ? " (quick)" : "");
    return 0;
}
