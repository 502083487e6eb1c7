/*
 * host.h: what every C test host shares. Loads libcache_monitor.so with dlopen/dlsym through the typedefs
 * of cache_monitor.h, exactly as a C program that does not link against the library would. The hosts are
 * compiled with CACHE_MONITOR_NO_DEPRECATED (tests/support), so they use only the current names; only
 * deprecated_names.c uses the old ones.
 */
#ifndef CACHE_MONITOR_TEST_HOST_H
#define CACHE_MONITOR_TEST_HOST_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_monitor.h"

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

typedef struct {
    void *handle;
    CacheMonitorAbiVersionFn abi_version;
    CacheMonitorConfigureFn configure;
    CacheMonitorRecordFn record;
    CacheMonitorRecordWithFramesFn record_with_frames;
    CacheMonitorRecordBatchFn record_batch;
    CacheMonitorBeginFn begin;
    CacheMonitorRecordFn finish;
    CacheMonitorRecordFn end; /* the deprecated name of finish */
    CacheMonitorSetGaugeFn set_gauge;
    CacheMonitorResetFn reset;
    CacheMonitorRenderFn render;
    CacheMonitorRenderFn render_openmetrics;
    CacheMonitorRenderFn render_flamegraph_folded;
    CacheMonitorRenderFn render_flamegraph_svg;
    CacheMonitorRenderFn last_error;
    CacheMonitorRenderFn render_hit_rate_json;
    CacheMonitorRenderFn render_stats_json;
    CacheMonitorRenderFn export_state;
    CacheMonitorImportStateFn import_state;
    CacheMonitorResetFn shutdown;
    CacheMonitorStrerrorFn strerror;
    CacheMonitorServeFn serve;
    CacheMonitorServeStopFn serve_stop;
    CacheMonitorRenderFn serve_address;
    CacheMonitorRenderAllocFn render_alloc;
    CacheMonitorFreeFn free;
    CacheMonitorVersionStringFn version_string;
    CacheMonitorSetEnabledFn set_enabled;
    CacheMonitorIsEnabledFn is_enabled;
    CacheMonitorRecordWithExemplarFn record_with_exemplar;
} monitor_api;

static void *required_symbol(void *handle, const char *name) {
    void *symbol = dlsym(handle, name);
    CHECK(symbol != NULL, "dlsym(%s): %s", name, dlerror());
    return symbol;
}

/* Checks that `call` returns the status `want`; expects a `monitor_api api` in scope for the message. */
#define EXPECT_STATUS(call, want)                                                          \
    do {                                                                                   \
        int32_t got_ = (call);                                                             \
        CHECK(got_ == (want), "%s returned %d (%s), want %d", #call, got_, api.strerror(got_), (want)); \
    } while (0)

/* The library can serve this header: same major version, at least the header's minor version. */
static int abi_compatible(uint32_t library, uint32_t header_major, uint32_t header_minor) {
    return library >> 16 == header_major && (library & 0xffff) >= header_minor;
}

/* Loads every function, checking that the library speaks this header's ABI. */
static monitor_api load_monitor(const char *path) {
    monitor_api api;
    api.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(api.handle != NULL, "dlopen(%s): %s", path, dlerror());
#define LOAD(field, name) *(void **)(&api.field) = required_symbol(api.handle, name)
    LOAD(abi_version, "cache_monitor_abi_version");
    LOAD(configure, "cache_monitor_configure");
    LOAD(record, "cache_monitor_record");
    LOAD(record_with_frames, "cache_monitor_record_with_frames");
    LOAD(record_batch, "cache_monitor_record_batch");
    LOAD(begin, "cache_monitor_begin");
    LOAD(finish, "cache_monitor_finish");
    LOAD(end, "cache_monitor_end");
    LOAD(set_gauge, "cache_monitor_set_gauge");
    LOAD(reset, "cache_monitor_reset");
    LOAD(render, "cache_monitor_render");
    LOAD(render_openmetrics, "cache_monitor_render_openmetrics");
    LOAD(render_flamegraph_folded, "cache_monitor_render_flamegraph_folded");
    LOAD(render_flamegraph_svg, "cache_monitor_render_flamegraph_svg");
    LOAD(last_error, "cache_monitor_last_error");
    LOAD(render_hit_rate_json, "cache_monitor_render_hit_rate_json");
    LOAD(render_stats_json, "cache_monitor_render_stats_json");
    LOAD(export_state, "cache_monitor_export_state");
    LOAD(import_state, "cache_monitor_import_state");
    LOAD(shutdown, "cache_monitor_shutdown");
    LOAD(strerror, "cache_monitor_strerror");
    LOAD(serve, "cache_monitor_serve");
    LOAD(serve_stop, "cache_monitor_serve_stop");
    LOAD(serve_address, "cache_monitor_serve_address");
    LOAD(render_alloc, "cache_monitor_render_alloc");
    LOAD(free, "cache_monitor_free");
    LOAD(version_string, "cache_monitor_version_string");
    LOAD(set_enabled, "cache_monitor_set_enabled");
    LOAD(is_enabled, "cache_monitor_is_enabled");
    LOAD(record_with_exemplar, "cache_monitor_record_with_exemplar");
#undef LOAD
    uint32_t version = api.abi_version();
    CHECK(abi_compatible(version, CACHE_MONITOR_ABI_VERSION_MAJOR, CACHE_MONITOR_ABI_VERSION_MINOR),
          "library ABI %u.%u, header %u.%u", version >> 16, version & 0xffff, CACHE_MONITOR_ABI_VERSION_MAJOR,
          CACHE_MONITOR_ABI_VERSION_MINOR);
    return api;
}

/* Renders `format` once with cache_monitor_render_alloc: a NUL-terminated text to release with
 * release_text(). */
static inline char *render(const monitor_api *api, CacheMonitorFormat format) {
    uint8_t *text = NULL;
    size_t len = 0;
    int32_t status = api->render_alloc(format, &text, &len);
    CHECK(status == CACHE_MONITOR_STATUS_OK, "render_alloc(%u) returned %d (%s)", (unsigned)format, status,
          api->strerror(status));
    CHECK(text != NULL && text[len] == '\0' && strlen((const char *)text) == len,
          "render_alloc(%u): %zu bytes, NUL-terminated, without a NUL inside", (unsigned)format, len);
    return (char *)text;
}

/* Releases a text from render(). */
static inline void release_text(const monitor_api *api, char *text) { api->free((uint8_t *)text); }

/* Calls a function with the two-call buffer contract (last_error, serve_address) and returns a malloc'ed
 * NUL-terminated text: asks for the size, then copies into a buffer one byte larger, and again if the text
 * grew in between. An OK always comes with a NUL-terminated text (snprintf's contract). */
static inline char *copy_text(CacheMonitorRenderFn write) {
    size_t cap = 0, len = 0;
    char *buf = NULL;
    for (;;) {
        int32_t status = write((uint8_t *)buf, cap, &len);
        CHECK(status == CACHE_MONITOR_STATUS_OK || status == CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL,
              "text output returned %d", status);
        if (status == CACHE_MONITOR_STATUS_OK) {
            CHECK(len < cap && buf[len] == '\0', "OK with a text of %zu bytes in %zu not NUL-terminated", len, cap);
            return buf;
        }
        CHECK(len >= cap, "BUFFER_TOO_SMALL for %zu bytes in a buffer of %zu", len, cap);
        free(buf);
        cap = len + 1;
        buf = malloc(cap);
        CHECK(buf != NULL, "out of memory");
    }
}

/* Writes `text` to the file at `path`. */
static inline void write_file(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    CHECK(file != NULL, "cannot open %s", path);
    CHECK(fputs(text, file) >= 0 && fclose(file) == 0, "cannot write %s", path);
}

/* The value of the sample whose name-and-labels is exactly `series`, or -1 if it is absent. */
static inline double sample_value(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            return strtod(line + n + 1, NULL);
        }
    }
    return -1;
}

#endif
