/*
 * A library built without the HTTP exporter (cargo build --no-default-features): the cache_monitor_serve*
 * functions are still there, and each returns CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT, whatever its
 * arguments, with a message that says why; recording, rendering and shutdown work as in any build, and the
 * library unloads.
 *
 * usage: no_exporter <libcache_monitor.so>
 */
#include <stdint.h>

#include "host.h"

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    monitor_api api = load_monitor(argv[1]);

    EXPECT_STATUS(api.serve("127.0.0.1:0"), CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT);
    EXPECT_STATUS(api.serve(NULL), CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT);
    EXPECT_STATUS(api.serve("not an address"), CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT);
    char *error = copy_text(api.last_error);
    CHECK(strstr(error, "built without the HTTP exporter") != NULL, "last error: %s", error);
    free(error);
    size_t len = 0;
    EXPECT_STATUS(api.serve_address(NULL, 0, &len), CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT);
    EXPECT_STATUS(api.serve_stop(), CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT);
    CHECK(strstr(api.strerror(CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT), "without the HTTP exporter") != NULL,
          "strerror: %s", api.strerror(CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT));

    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, (const uint8_t *)"k:1", 3),
                  CACHE_MONITOR_STATUS_OK);
    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    CHECK(sample_value(text, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}") == 1, "%s", text);
    release_text(&api, text);
    EXPECT_STATUS(api.shutdown(), CACHE_MONITOR_STATUS_OK);

    CHECK(dlclose(api.handle) == 0, "dlclose: %s", dlerror());
    CHECK(dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD) == NULL, "the library is still loaded after dlclose");
    printf("no_exporter: every serve function says the exporter is not built; the rest works\n");
    return 0;
}
