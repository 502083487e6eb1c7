/*
 * Profiling and rendering flamegraphs do not keep the library loaded: after dlclose nothing of it stays
 * mapped (no thread-local destructor registered on a host thread, no cached mapping of its file).
 *
 * usage: unload_after_flamegraph <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

/* Lines of /proc/self/maps naming the library's file. */
static int library_mappings(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL, "cannot read /proc/self/maps");
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, maps) != NULL) {
        if (strstr(line, "libcache_monitor") != NULL) {
            fputs(line, stderr);
            found++;
        }
    }
    fclose(maps);
    return found;
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    monitor_api api = load_monitor(argv[1]);
    CHECK(api.configure("{\"profiler\": {\"sample_every\": 1}}") == CACHE_MONITOR_STATUS_OK, "configure");
    for (int i = 0; i < 100; i++) {
        CHECK(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, NULL, 0) == CACHE_MONITOR_STATUS_OK,
              "record");
        CHECK(api.record_with_frames(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 1000, NULL, 0, "host.f", 6) ==
                  CACHE_MONITOR_STATUS_OK,
              "record_with_frames");
    }
    char *folded = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED);
    CHECK(strstr(folded, ";main;cache_monitor::get 100\n") != NULL, "folded:\n%s", folded);
    CHECK(strstr(folded, ";main;host.f;cache_monitor::put 100\n") != NULL, "folded:\n%s", folded);
    release_text(&api, folded);
    char *svg = render(&api, CACHE_MONITOR_FORMAT_FLAMEGRAPH_SVG);
    CHECK(strstr(svg, "cache_monitor::get") != NULL, "svg");
    release_text(&api, svg);
    CHECK(library_mappings() > 0, "the library is mapped while loaded");

    CHECK(dlclose(api.handle) == 0, "dlclose: %s", dlerror());
    CHECK(dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD) == NULL, "the library is still loaded after dlclose");
    CHECK(library_mappings() == 0, "the library's file is still mapped after dlclose (lines above)");
    printf("unload_after_flamegraph: nothing left mapped after dlclose\n");
    return 0;
}
