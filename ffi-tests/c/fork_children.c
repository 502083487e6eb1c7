/*
 * fork() while the library is busy: the parent serves, and three threads render (every format, the SVG
 * flamegraph included), configure (resizing the profiler's table, which waits for samples in flight) and
 * record with every record sampled. Meanwhile the parent forks CHILDREN children, one after the other.
 * Each child must:
 *   - see itself as not serving (the exporter is the parent's), and stop and shut down without touching
 *     the parent's exporter;
 *   - record, reset, configure and render without waiting for a lock or a sample that a parent thread
 *     held at the fork (every child renders the metrics; every fifth also the folded stacks and every
 *     tenth the SVG flamegraph, which read debug information: slow in a test build);
 *   - serve on its own and stop (every tenth child);
 *   - exit 0 within LIVENESS seconds (a child that deadlocked is killed and the test fails).
 * Afterwards the parent still serves (a scrape answers), stops, and unloads the library; a fork after
 * dlclose works (the library's fork handlers left with it).
 *
 * usage: fork_children <libcache_monitor.so>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "http.h"

#ifndef CHILDREN
#define CHILDREN 30
#endif
#ifndef LIVENESS
#define LIVENESS 60 /* seconds a child may take: a liveness bound, not a timing claim */
#endif

static monitor_api api;
static atomic_int stopping;
/* Whether the library was built with the exporter (the parent serves): without it, the children check
   that serving says so, and the rest is the same. */
static int serving;

/* In a child: report and leave at once (no atexit handlers, no stdio buffers copied from the parent). */
#define CHILD_CHECK(cond, ...)                                                  \
    do {                                                                        \
        if (!(cond)) {                                                          \
            char message_[1024];                                                 \
            int n_ = snprintf(message_, sizeof message_, "child %d: %s:%d: %s: ", (int)getpid(), __FILE__, \
                              __LINE__, #cond);                                 \
            n_ += snprintf(message_ + n_, sizeof message_ - (size_t)n_, __VA_ARGS__); \
            message_[sizeof message_ - 2] = '\0';                               \
            strcat(message_, "\n");                                             \
            ssize_t ignored_ = write(2, message_, strlen(message_));            \
            (void)ignored_;                                                     \
            _exit(2);                                                           \
        }                                                                       \
    } while (0)


/* A render with the buffer contract, without CHECK (for children): returns a malloc'ed text or NULL.
   Starts with a buffer large enough for every text here, so each render runs once. */
static char *render_or_null(CacheMonitorRenderFn render) {
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap);
    for (int tries = 0; tries < 100; tries++) {
        int32_t status = render((uint8_t *)buf, cap, &len);
        if (status == CACHE_MONITOR_STATUS_OK && len < cap) return buf;
        free(buf);
        buf = NULL;
        if (status != CACHE_MONITOR_STATUS_OK && status != CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) return NULL;
        cap = len + 1;
        buf = malloc(cap);
        if (buf == NULL) return NULL;
    }
    free(buf);
    return NULL;
}

static void *renderer(void *arg) {
    (void)arg;
    CacheMonitorRenderFn renders[] = {api.render, api.render_openmetrics, api.render_hit_rate_json,
                                      api.render_stats_json, api.render_flamegraph_folded, api.render_flamegraph_svg,
                                      api.export_state};
    for (size_t i = 0; !atomic_load(&stopping); i++) {
        free(copy_text(renders[i % (sizeof renders / sizeof renders[0])]));
    }
    return NULL;
}

static void *configurer(void *arg) {
    (void)arg;
    for (int i = 0; !atomic_load(&stopping); i++) {
        /* A new max_stacks replaces the profiler's table, waiting for samples in flight. */
        EXPECT_STATUS(api.configure(i % 2 ? "{\"profiler\": {\"max_stacks\": 64}, \"alerts\": {\"error_rate\": 0.1}}"
                                          : "{\"profiler\": {\"max_stacks\": 128}, \"alerts\": {\"error_rate\": 0.2}}"),
                      CACHE_MONITOR_STATUS_OK);
    }
    return NULL;
}

static void *recorder(void *arg) {
    (void)arg;
    for (uint64_t i = 0; !atomic_load(&stopping); i++) {
        EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000 + i % 100,
                                 (const uint8_t *)"user:1", 6),
                      CACHE_MONITOR_STATUS_OK);
    }
    return NULL;
}

/* What every child does; exits 0 if all of it worked. */
static void child(int index) {
    size_t len = 0;
    int32_t status = api.serve_address(NULL, 0, &len);
    int32_t not_serving = serving ? CACHE_MONITOR_STATUS_NOT_SERVING : CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT;
    CHILD_CHECK(status == not_serving, "the parent's exporter is not the child's: %d", status);
    int32_t stop_status = serving ? CACHE_MONITOR_STATUS_OK : CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT;
    CHILD_CHECK(api.serve_stop() == stop_status, "serve_stop");
    CHILD_CHECK(api.shutdown() == CACHE_MONITOR_STATUS_OK, "shutdown");
    for (int i = 0; i < 1000; i++) {
        CHILD_CHECK(api.record(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 500, (const uint8_t *)"child:1", 7) ==
                        CACHE_MONITOR_STATUS_OK,
                    "record");
    }
    CHILD_CHECK(api.reset() == CACHE_MONITOR_STATUS_OK, "reset");
    CHILD_CHECK(api.configure("{\"namespace\": \"child\", \"profiler\": {\"max_stacks\": 32}}") == CACHE_MONITOR_STATUS_OK,
                "configure");
    for (int i = 0; i < 10; i++) {
        CHILD_CHECK(api.record(CACHE_MONITOR_OPERATION_PUT, CACHE_MONITOR_OUTCOME_OK, 500, NULL, 0) ==
                        CACHE_MONITOR_STATUS_OK,
                    "record after reset");
    }
    char *text = render_or_null(api.render);
    CHILD_CHECK(text != NULL, "render");
    CHILD_CHECK(sample_value(text, "child_operations_total{operation=\"put\",result=\"ok\"}") == 10,
                "exactly the child's records since its reset:\n%.300s", text);
    free(text);
    CacheMonitorRenderFn cheap[] = {api.render_openmetrics, api.render_hit_rate_json, api.render_stats_json};
    for (size_t i = 0; i < sizeof cheap / sizeof cheap[0]; i++) {
        char *other = render_or_null(cheap[i]);
        CHILD_CHECK(other != NULL, "render %zu", i);
        free(other);
    }
    if (index % 5 == 0) {
        char *folded = render_or_null(api.render_flamegraph_folded);
        CHILD_CHECK(folded != NULL && strstr(folded, "cache_monitor::put 10\n") != NULL &&
                        strstr(folded, "cache_monitor::get") == NULL,
                    "only the child's samples since its reset: %.300s", folded ? folded : "(null)");
        free(folded);
    }
    if (index % 10 == 0) {
        char *svg = render_or_null(api.render_flamegraph_svg);
        CHILD_CHECK(svg != NULL && strstr(svg, "cache_monitor::put") != NULL, "svg");
        free(svg);
    }
    if (index % 10 == 0 && serving) {
        CHILD_CHECK(api.serve("127.0.0.1:0") == CACHE_MONITOR_STATUS_OK, "the child serves on its own");
        char *address = render_or_null(api.serve_address);
        CHILD_CHECK(address != NULL && http_status(address, "/metrics", LIVENESS) == 200, "the child's exporter answers");
        free(address);
        CHILD_CHECK(api.serve_stop() == CACHE_MONITOR_STATUS_OK, "the child stops its own");
    }
    _exit(0);
}

/* Waits for `pid` for at most LIVENESS seconds; kills it if it has not exited by then. Returns its
   status, or -1 if it had to be killed. */
static int wait_live(pid_t pid) {
    struct timespec start, now, pause = {.tv_nsec = 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int status = 0;
        pid_t done = waitpid(pid, &status, WNOHANG);
        CHECK(done >= 0, "waitpid: %s", strerror(errno));
        if (done == pid) return status;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > LIVENESS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}

/* The function every child of the parent runs: named so that the children's stacks have a root. */
__attribute__((noinline)) static void child_root(int index) { child(index); }

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    EXPECT_STATUS(api.configure("{\"profiler\": {\"sample_every\": 1}}"), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, NULL, 0),
                  CACHE_MONITOR_STATUS_OK);
    int32_t served = api.serve("127.0.0.1:0");
    CHECK(served == CACHE_MONITOR_STATUS_OK || served == CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT, "serve: %d", served);
    serving = served == CACHE_MONITOR_STATUS_OK;
    char *address = serving ? copy_text(api.serve_address) : NULL;

    pthread_t threads[3];
    void *(*bodies[3])(void *) = {renderer, configurer, recorder};
    for (int i = 0; i < 3; i++) {
        CHECK(pthread_create(&threads[i], NULL, bodies[i], NULL) == 0, "pthread_create");
    }
    int failed = 0;
    for (int i = 0; i < CHILDREN; i++) {
        /* Let the threads get going, and land the forks at different points of their work. */
        struct timespec pause = {.tv_nsec = (long)(20 + 7 * i) * 1000 * 1000};
        nanosleep(&pause, NULL);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            child_root(i);
        }
        int status = wait_live(pid);
        if (status == -1) {
            fprintf(stderr, "child %d (pid %d) did not exit within %d s: deadlocked\n", i, (int)pid, LIVENESS);
            failed++;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d (pid %d) failed: status %#x\n", i, (int)pid, status);
            failed++;
        }
    }
    atomic_store(&stopping, 1);
    for (int i = 0; i < 3; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
    }
    CHECK(failed == 0, "%d of %d children failed", failed, CHILDREN);

    /* The children's serve_stop and shutdown left the parent serving. */
    if (serving) {
        char *still = copy_text(api.serve_address);
        CHECK(strcmp(still, address) == 0, "the parent still serves at %s: %s", address, still);
        CHECK(http_status(address, "/metrics", LIVENESS) == 200, "the parent's exporter answers");
        free(still);
        free(address);
        EXPECT_STATUS(api.serve_stop(), CACHE_MONITOR_STATUS_OK);
    }
    CHECK(dlclose(api.handle) == 0, "dlclose: %s", dlerror());

    /* The library's fork handlers left with it: forking now calls nothing unmapped. */
    pid_t pid = fork();
    CHECK(pid >= 0, "fork after dlclose");
    if (pid == 0) _exit(0);
    int status = wait_live(pid);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "a fork after dlclose: %#x", status);
    printf("fork_children: %d children forked while rendering, configuring and recording%s\n", CHILDREN,
           serving ? "; the parent still served" : " (built without the exporter)");
    return 0;
}
