/*
 * 8 threads x 1,000,000 records of mixed operations through the dlopen'ed library, then one render:
 * every counter, histogram count and +Inf bucket must equal exactly what the threads recorded.
 *
 * usage: threaded_counts <libcache_monitor.so> <file to write the render to> [records per thread]
 * (1,000,000 by default; the valgrind run passes fewer)
 */
#include <pthread.h>

#include "host.h"

#define THREADS 8
#define RECORDS_PER_THREAD 1000000
#define OPERATIONS 7
#define RESULTS 4

static monitor_api api;
static long records_per_thread = RECORDS_PER_THREAD;

static const char *const OPERATION_NAMES[OPERATIONS] = {"get", "put", "delete", "contains", "clear", "evict", "load"};
static const char *const RESULT_NAMES[RESULTS] = {"hit", "miss", "ok", "error"};
static const char *const KEYS[] = {"user:42", "session:7", "path/a/b", "plain"};

/* The workload: a pure function of (thread, i), so main can count what the threads record. */
static void nth_record(int thread, long i, uint32_t *op, uint32_t *result, uint64_t *duration_ns) {
    *op = (uint32_t)((i + thread) % OPERATIONS);
    switch (*op) {
    case CACHE_MONITOR_OPERATION_GET:
    case CACHE_MONITOR_OPERATION_CONTAINS:
        *result = i % 4 == 0 ? CACHE_MONITOR_OUTCOME_MISS : CACHE_MONITOR_OUTCOME_HIT;
        break;
    case CACHE_MONITOR_OPERATION_LOAD:
        *result = i % 10 == 0 ? CACHE_MONITOR_OUTCOME_ERROR : CACHE_MONITOR_OUTCOME_OK;
        break;
    default:
        *result = i % 97 == 0 ? CACHE_MONITOR_OUTCOME_ERROR : CACHE_MONITOR_OUTCOME_OK;
    }
    *duration_ns = (uint64_t)(i % 5000) * 997 + 100;
}

static void *record_workload(void *arg) {
    int thread = (int)(intptr_t)arg;
    for (long i = 0; i < records_per_thread; i++) {
        uint32_t op, result;
        uint64_t duration_ns;
        nth_record(thread, i, &op, &result, &duration_ns);
        const char *key = KEYS[i % 4];
        int32_t status;
        if (i % 1000 == 0) { /* some go through begin/finish, the in-flight pair */
            CHECK(api.begin(op) == CACHE_MONITOR_STATUS_OK, "begin");
            status = api.finish(op, result, duration_ns, (const uint8_t *)key, strlen(key));
        } else if (i % 3 == 0) {
            status = api.record(op, result, duration_ns, NULL, 0);
        } else {
            status = api.record(op, result, duration_ns, (const uint8_t *)key, strlen(key));
        }
        CHECK(status == CACHE_MONITOR_STATUS_OK, "record returned %d", status);
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 3 || argc == 4, "usage: %s <library> <render output> [records per thread]", argv[0]);
    if (argc == 4) {
        records_per_thread = atol(argv[3]);
        CHECK(records_per_thread > 0, "records per thread: %s", argv[3]);
    }
    api = load_monitor(argv[1]);
    CHECK(api.reset() == CACHE_MONITOR_STATUS_OK, "reset");

    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, record_workload, (void *)(intptr_t)t) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
    }

    static uint64_t expected[OPERATIONS][RESULTS];
    static double expected_seconds[OPERATIONS][RESULTS];
    for (int t = 0; t < THREADS; t++) {
        for (long i = 0; i < records_per_thread; i++) {
            uint32_t op, result;
            uint64_t duration_ns;
            nth_record(t, i, &op, &result, &duration_ns);
            expected[op][result]++;
            expected_seconds[op][result] += (double)duration_ns / 1e9;
        }
    }

    char *text = render(&api, CACHE_MONITOR_FORMAT_PROMETHEUS);
    uint64_t total = 0;
    char series[256];
    for (int op = 0; op < OPERATIONS; op++) {
        for (int result = 0; result < RESULTS; result++) {
            const char *labels_fmt = "{operation=\"%s\",result=\"%s\"}";
            char labels[96];
            snprintf(labels, sizeof labels, labels_fmt, OPERATION_NAMES[op], RESULT_NAMES[result]);
            double want = expected[op][result] ? (double)expected[op][result] : -1; /* absent until recorded */

            snprintf(series, sizeof series, "cuenv_cache_operations_total%s", labels);
            double got = sample_value(text, series);
            CHECK(got == want, "%s: got %.0f, want %.0f", series, got, want);

            snprintf(series, sizeof series, "cuenv_cache_operation_duration_seconds_count%s", labels);
            got = sample_value(text, series);
            CHECK(got == want, "%s: got %.0f, want %.0f", series, got, want);

            snprintf(series, sizeof series,
                     "cuenv_cache_operation_duration_seconds_bucket{operation=\"%s\",result=\"%s\",le=\"+Inf\"}",
                     OPERATION_NAMES[op], RESULT_NAMES[result]);
            got = sample_value(text, series);
            CHECK(got == want, "%s: got %.0f, want %.0f", series, got, want);

            if (expected[op][result]) {
                snprintf(series, sizeof series, "cuenv_cache_operation_duration_seconds_sum%s", labels);
                got = sample_value(text, series);
                double err = got - expected_seconds[op][result];
                CHECK(err < 1e-6 && err > -1e-6, "%s: got %.9f, want %.9f", series, got, expected_seconds[op][result]);
            }
            total += expected[op][result];
        }
    }
    CHECK(total == (uint64_t)THREADS * (uint64_t)records_per_thread, "workload covers %llu records", (unsigned long long)total);
    CHECK(sample_value(text, "cuenv_cache_stats{metric=\"operations_in_flight\"}") == 0, "nothing in flight");

    write_file(argv[2], text);
    release_text(&api, text);
    printf("threaded_counts: %d threads x %ld records counted exactly\n", THREADS, records_per_thread);
    return 0;
}
