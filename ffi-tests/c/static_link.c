/*
 * A C host linked against libcache_monitor.a (the staticlib build) instead of dlopen'ing the .so: the
 * header's declarations are the whole interface. Records from two threads, renders, checks the counts.
 *
 * usage: static_link
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_monitor.h"

#define RECORDS 100000

static void *record_hits(void *arg) {
    (void)arg;
    for (int i = 0; i < RECORDS; i++) {
        if (cache_monitor_record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000 + i, (const uint8_t *)"user:1",
                                 6) != CACHE_MONITOR_STATUS_OK) {
            fprintf(stderr, "record failed\n");
            exit(1);
        }
    }
    return NULL;
}

int main(void) {
    if (cache_monitor_abi_version() >> 16 != CACHE_MONITOR_ABI_VERSION_MAJOR) {
        fprintf(stderr, "ABI major mismatch\n");
        return 1;
    }
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, record_hits, NULL);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);

    size_t len = 0;
    uint8_t *rendered = NULL;
    if (cache_monitor_render_alloc(CACHE_MONITOR_FORMAT_PROMETHEUS, &rendered, &len) != CACHE_MONITOR_STATUS_OK) {
        fprintf(stderr, "render_alloc failed\n");
        return 1;
    }
    const char *text = (const char *)rendered;
    const char *want = "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 200000\n";
    if (strstr(text, want) == NULL) {
        fprintf(stderr, "expected %s in:\n%s", want, text);
        return 1;
    }
    cache_monitor_free(rendered);
    cache_monitor_free(NULL);
    cache_monitor_shutdown();
    printf("static_link: 2 threads x %d records counted exactly\n", RECORDS);
    return 0;
}
