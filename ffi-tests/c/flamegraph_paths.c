/*
 * Two native call paths and one host-supplied path into the library, sampled 1 in 100, rendered as folded
 * stacks (by samples and by time) and as an SVG flamegraph. tests/flamegraph.rs checks the files.
 *
 *   main -> alpha_lookup_path -> alpha_inner -> cache_monitor_record (get, 2 us)       x RECORDS
 *   main -> beta_store_path -> cache_monitor_record (put, 5 us)                        x RECORDS
 *   main -> gamma_host_frames -> cache_monitor_record_with_frames (get, 1 us,
 *           frames "main.main;main.serve;cache.(*Cache).Get")                          x RECORDS
 *
 * Built with -g -fno-omit-frame-pointer -rdynamic -fno-optimize-sibling-calls so that the functions
 * keep their own frames and names.
 *
 * usage: flamegraph_paths <libcache_monitor.so> <samples.folded> <time.folded> <flamegraph.svg> [records]
 * (RECORDS per path by default; the valgrind run passes fewer)
 */
#include <stdint.h>

#include "host.h"

#define RECORDS 100000

/* Keep each path function a real frame of its own: not inlined, cloned or merged. */
#if defined(__clang__)
#define PATH_FUNCTION __attribute__((noinline, optnone))
#else
#define PATH_FUNCTION __attribute__((noipa))
#endif

static monitor_api api;
static uint64_t records = RECORDS;
static const char GO_FRAMES[] = "main.main;main.serve;cache.(*Cache).Get";

PATH_FUNCTION int alpha_inner(uint64_t i) {
    const uint8_t key[] = {'a', (uint8_t)i};
    int32_t status = api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 2000, key, sizeof key);
    return status == CACHE_MONITOR_STATUS_OK ? 0 : 1; /* work after the call: no tail call */
}

PATH_FUNCTION int alpha_lookup_path(uint64_t i) {
    int failed = alpha_inner(i);
    return failed;
}

PATH_FUNCTION int beta_store_path(uint64_t i) {
    const uint8_t key[] = {'b', (uint8_t)i};
    int32_t status = api.record(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 5000, key, sizeof key);
    return status == CACHE_MONITOR_STATUS_OK ? 0 : 1;
}

PATH_FUNCTION int gamma_host_frames(uint64_t i) {
    const uint8_t key[] = {'g', (uint8_t)i};
    int32_t status = api.record_with_frames(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_MISS, 1000, key,
                                            sizeof key, GO_FRAMES, sizeof GO_FRAMES - 1);
    return status == CACHE_MONITOR_STATUS_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    CHECK(argc == 5 || argc == 6, "usage: %s <library> <samples.folded> <time.folded> <flamegraph.svg> [records]",
          argv[0]);
    if (argc == 6) {
        records = strtoull(argv[5], NULL, 10);
        CHECK(records > 0, "records: %s", argv[5]);
    }
    api = load_monitor(argv[1]);
    CHECK(api.reset() == CACHE_MONITOR_STATUS_OK, "reset");
    char *folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    CHECK(folded[0] == '\0', "nothing sampled before the profiler is configured: %s", folded);
    release_text(&api, folded);
    CHECK(api.configure("{\"profiler\": {\"sample_every\": 100}}") == CACHE_MONITOR_STATUS_OK, "configure");

    int failures = 0;
    for (uint64_t i = 0; i < records; i++) {
        failures += alpha_lookup_path(i);
    }
    for (uint64_t i = 0; i < records; i++) {
        failures += beta_store_path(i);
    }
    for (uint64_t i = 0; i < records; i++) {
        failures += gamma_host_frames(i);
    }
    CHECK(failures == 0, "%d records refused", failures);

    char *metrics = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(metrics, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}") == (double)records,
          "record_with_frames counts like record:\n%s", metrics);
    CHECK(sample_value(metrics, "cuenv_cache_operations_total{operation=\"get\",result=\"miss\"}") == (double)records,
          "record_with_frames counts like record:\n%s", metrics);
    release_text(&api, metrics);

    folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    write_file(argv[2], folded);
    release_text(&api, folded);
    char *svg = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_SVG);
    write_file(argv[4], svg);
    release_text(&api, svg);
    CHECK(api.configure("{\"profiler\": {\"weight\": \"time\"}}") == CACHE_MONITOR_STATUS_OK, "weight");
    folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    write_file(argv[3], folded);
    release_text(&api, folded);

    CHECK(api.reset() == CACHE_MONITOR_STATUS_OK, "reset");
    folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    CHECK(folded[0] == '\0', "reset forgets sampled stacks: %s", folded);
    release_text(&api, folded);
    printf("flamegraph_paths: 3 x %llu records sampled 1 in 100\n", (unsigned long long)records);
    return 0;
}
