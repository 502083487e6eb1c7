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

/* The Prometheus render, grown until it fits (the buffer contract); NULL on failure. */
static char *render(void) {
    size_t cap = 0, len = 0;
    char *text = NULL;
    for (;;) {
        int32_t status = cache_monitor_render((uint8_t *)text, cap, &len);
        if (status == CACHE_MONITOR_STATUS_OK && len < cap) return text;
        free(text);
        if (status != CACHE_MONITOR_STATUS_OK && status != CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) {
            fprintf(stderr, "render: %s\n", cache_monitor_strerror(status));
            return NULL;
        }
        cap = len + 1;
        text = malloc(cap);
        if (text == NULL) return NULL;
    }
}

int main(void) {
    uint32_t version = cache_monitor_abi_version();
    if (version >> 16 != CACHE_MONITOR_ABI_VERSION_MAJOR || (version & 0xffff) < CACHE_MONITOR_ABI_VERSION_MINOR) {
        fprintf(stderr, "library ABI %u.%u, header %u.%u\n", (unsigned)(version >> 16), (unsigned)(version & 0xffff),
                (unsigned)CACHE_MONITOR_ABI_VERSION_MAJOR, (unsigned)CACHE_MONITOR_ABI_VERSION_MINOR);
        return 1;
    }
    for (int i = 0; i < GETS; i++) {
        CacheMonitorResult result = i % 4 == 0 ? CACHE_MONITOR_RESULT_MISS : CACHE_MONITOR_RESULT_HIT;
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
            free(text);
            return 1;
        }
    }
    free(text);
    cache_monitor_shutdown();
    printf("cache_monitor %u.%u: 750 hits and 250 misses counted\n", (unsigned)(version >> 16),
           (unsigned)(version & 0xffff));
    return 0;
}
