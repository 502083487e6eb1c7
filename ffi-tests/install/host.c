/*
 * A C host of the *installed* library, built the way its users build: with nothing but what pkg-config
 * says (tests/install.rs builds it against a temporary prefix, linked to the shared object and, a second
 * time, to the static library):
 *
 *   cc host.c $(pkg-config --cflags --libs cache_monitor)
 *
 * Checks the ABI version, records 1000 gets (750 hits, 250 misses) and finds exactly those counts in the
 * Prometheus render.
 *
 * usage: host
 */
#include <cache_monitor.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GETS 1000

/* The Prometheus render, rendered once into a NUL-terminated buffer of the library's (release it with
 * cache_monitor_free); NULL on failure. */
static char *render(void) {
    uint8_t *text = NULL;
    size_t len = 0;
    int32_t status = cache_monitor_render_alloc(CACHE_MONITOR_FORMAT_PROMETHEUS, &text, &len);
    if (status != CACHE_MONITOR_STATUS_OK) {
        fprintf(stderr, "render: %s\n", cache_monitor_strerror(status));
        return NULL;
    }
    return (char *)text;
}

int main(void) {
    uint32_t version = cache_monitor_abi_version();
    if (version >> 16 != CACHE_MONITOR_ABI_VERSION_MAJOR || (version & 0xffff) < CACHE_MONITOR_ABI_VERSION_MINOR) {
        fprintf(stderr, "library ABI %u.%u, header %u.%u\n", (unsigned)(version >> 16), (unsigned)(version & 0xffff),
                (unsigned)CACHE_MONITOR_ABI_VERSION_MAJOR, (unsigned)CACHE_MONITOR_ABI_VERSION_MINOR);
        return 1;
    }
    for (int i = 0; i < GETS; i++) {
        CacheMonitorOutcome result = i % 4 == 0 ? CACHE_MONITOR_OUTCOME_MISS : CACHE_MONITOR_OUTCOME_HIT;
        int32_t status = cache_monitor_record(CACHE_MONITOR_OPERATION_GET, result, 1000, (const uint8_t *)"user:42", 7);
        if (status != CACHE_MONITOR_STATUS_OK) {
            fprintf(stderr, "record: %s\n", cache_monitor_strerror(status));
            return 1;
        }
    }
    char *text = render();
    if (text == NULL) return 1;
    const char *wanted[] = {
        "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 750\n",
        "cuenv_cache_operations_total{operation=\"get\",result=\"miss\"} 250\n",
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        if (strstr(text, wanted[i]) == NULL) {
            fprintf(stderr, "expected %s in:\n%s", wanted[i], text);
            cache_monitor_free((uint8_t *)text);
            return 1;
        }
    }
    cache_monitor_free((uint8_t *)text);
    cache_monitor_shutdown();
    printf("cache_monitor %u.%u: 750 hits and 250 misses counted\n", (unsigned)(version >> 16),
           (unsigned)(version & 0xffff));
    return 0;
}
