/*
 * cache_monitor_last_error is per thread: eight threads each fail with their own bad operation code at the
 * same moment, and each then reads its own message (with one process-wide message, seven would read
 * another thread's). Messages are bounded: a refused configuration of a megabyte quotes 64 bytes of it.
 *
 * usage: last_error_threads <libcache_monitor.so>
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers, under -std=c11 */

#include <pthread.h>
#include <stdint.h>

#include "host.h"

#define THREADS 8

static monitor_api api;
static pthread_barrier_t failed, read_back;

typedef struct {
    uint32_t code;
    char message[300];
} thread_case;

static void *fail_then_read(void *arg) {
    thread_case *c = arg;
    CHECK(api.last_error(NULL, 0, &(size_t){0}) == CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL, "size query");
    size_t len = 99;
    char empty[1] = {'x'};
    EXPECT_STATUS(api.last_error((uint8_t *)empty, 1, &len), CACHE_MONITOR_STATUS_OK);
    CHECK(len == 0 && empty[0] == '\0', "a new thread has no last error");
    EXPECT_STATUS(api.record(c->code, CACHE_MONITOR_OUTCOME_HIT, 1, NULL, 0), CACHE_MONITOR_STATUS_UNKNOWN_OPERATION);
    pthread_barrier_wait(&failed); /* every thread has failed before any reads */
    EXPECT_STATUS(api.last_error((uint8_t *)c->message, sizeof c->message, &len), CACHE_MONITOR_STATUS_OK);
    pthread_barrier_wait(&read_back);
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    CHECK(pthread_barrier_init(&failed, NULL, THREADS) == 0 && pthread_barrier_init(&read_back, NULL, THREADS) == 0,
          "barriers");
    pthread_t threads[THREADS];
    thread_case cases[THREADS];
    for (int t = 0; t < THREADS; t++) {
        cases[t].code = 1000 + (uint32_t)t;
        cases[t].message[0] = '\0';
        CHECK(pthread_create(&threads[t], NULL, fail_then_read, &cases[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        char want[64];
        snprintf(want, sizeof want, "unknown operation code %u", cases[t].code);
        CHECK(strcmp(cases[t].message, want) == 0, "thread %d read \"%s\", want \"%s\"", t, cases[t].message, want);
    }

    /* The main thread's own last error is untouched by the others'. */
    EXPECT_STATUS(api.set_gauge(7, 1), CACHE_MONITOR_STATUS_UNKNOWN_GAUGE);
    char *message = copy_text(api.last_error);
    CHECK(strcmp(message, "unknown gauge code 7") == 0, "main thread: %s", message);
    free(message);

    /* A megabyte of refused configuration: the message quotes 64 bytes of it, marked as cut. */
    size_t size = 1 << 20;
    char *json = malloc(size + 32);
    CHECK(json != NULL, "out of memory");
    strcpy(json, "{\"namespace\": \"");
    size_t at = strlen(json);
    memset(json + at, 'n', size);
    strcpy(json + at + size, " x\"}");
    EXPECT_STATUS(api.configure(json), CACHE_MONITOR_STATUS_INVALID_CONFIG);
    free(json);
    message = copy_text(api.last_error);
    char quoted[80];
    memset(quoted, 'n', 64);
    strcpy(quoted + 64, "...\"");
    CHECK(strlen(message) <= 256 && strstr(message, quoted) != NULL && strstr(message, "nnnnn...\"") != NULL,
          "a bounded message quoting 64 bytes: %s", message);
    CHECK(strchr(strchr(message, '"') + 1, '"') - strchr(message, '"') - 1 == 64 + 3, "64 bytes and ...: %s",
          message);
    free(message);
    printf("last_error_threads: %d threads each read their own last error; messages are bounded\n", THREADS);
    return 0;
}
