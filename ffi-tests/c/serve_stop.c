/*
 * The HTTP exporter through the C ABI: every documented status of cache_monitor_serve, a real scrape
 * of /metrics, and after cache_monitor_serve_stop no thread of the library is left: the thread count is
 * back to what it was, and dlclose really unmaps the library.
 *
 * usage: serve_stop <libcache_monitor.so>
 */
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "host.h"
#include "http.h"

static monitor_api api;


/* Threads of this process, from /proc/self/task. */
static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir != NULL, "opendir /proc/self/task");
    int n = 0;
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
        n += entry->d_name[0] != '.';
    }
    closedir(dir);
    return n;
}

/* Whether the library is mapped into this process. */
static int library_mapped(const char *path) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL, "open /proc/self/maps");
    char line[4096];
    int mapped = 0;
    while (fgets(line, sizeof line, maps)) {
        mapped |= strstr(line, name) != NULL;
    }
    fclose(maps);
    return mapped;
}

/* A listening socket on a free loopback port, to make the port busy. */
static int occupy_port(uint16_t port, uint16_t *bound) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof addr;
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0, "getsockname");
    *bound = ntohs(addr.sin_port);
    return fd;
}

/* GET `path` from the exporter at "127.0.0.1:N", with `extra` header lines ("" for none); returns the
   malloc'ed raw response. */
static char *http_get(const char *address, const char *path, const char *extra) {
    int fd = http_connect(address, 0);
    CHECK(fd >= 0, "connect %s: %s", address, strerror(errno));
    CHECK(http_send_get(fd, path, extra) == 0, "send GET %s", path);
    size_t cap = 1 << 16, len = 0;
    char *response = malloc(cap);
    CHECK(response != NULL, "out of memory");
    for (ssize_t got; (got = read(fd, response + len, cap - len - 1)) > 0;) {
        len += (size_t)got;
        if (len + 1 == cap) {
            cap *= 2;
            response = realloc(response, cap);
            CHECK(response != NULL, "out of memory");
        }
    }
    response[len] = '\0';
    close(fd);
    return response;
}

static char *serving_address(void) {
    char *address = copy_text(api.serve_address);
    CHECK(strncmp(address, "127.0.0.1:", 10) == 0 && atoi(address + 10) > 0, "serving on %s", address);
    return address;
}

static void scrape_sees_the_record(void) {
    char *address = serving_address();
    char *response = http_get(address, "/metrics", "");
    CHECK(strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0, "scrape of %s:\n%s", address, response);
    const char *body = strstr(response, "\r\n\r\n");
    CHECK(body != NULL && strncmp(body + 4, "# HELP cuenv_cache_operations_total", 35) == 0, "exposition body:\n%s",
          response);
    CHECK(sample_value(body + 4, "cuenv_cache_operations_total{operation=\"get\",result=\"hit\"}") == 1,
          "the recorded hit:\n%s", response);
    free(response);
    free(address);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: %s <library>", argv[0]);
    api = load_monitor(argv[1]);
    int threads_before = thread_count();

    /* Not serving yet: stop is a no-op, there is no address. */
    EXPECT_STATUS(api.serve_stop(), CACHE_MONITOR_STATUS_OK);
    size_t len = 0;
    EXPECT_STATUS(api.serve_address(NULL, 0, &len), CACHE_MONITOR_STATUS_NOT_SERVING);

    /* Bad addresses. */
    EXPECT_STATUS(api.serve("not an address"), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    EXPECT_STATUS(api.serve("127.0.0.1"), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    EXPECT_STATUS(api.serve("localhost:9464"), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    EXPECT_STATUS(api.serve("127.0.0.1:\xff"), CACHE_MONITOR_STATUS_INVALID_UTF8);
    /* Spaces around an address are a typo to report, not to trim (ABI 1.6). */
    EXPECT_STATUS(api.serve(" 127.0.0.1:0"), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    EXPECT_STATUS(api.serve("127.0.0.1:0\n"), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    EXPECT_STATUS(api.serve(" "), CACHE_MONITOR_STATUS_INVALID_ADDRESS);
    char *refused = copy_text(api.last_error);
    CHECK(strcmp(refused, "invalid listen address \" \": expected IP:port, such as 127.0.0.1:9464 or [::1]:9464") == 0,
          "last error: %s", refused);
    free(refused);

    /* A busy port. */
    uint16_t busy_port = 0;
    int busy = occupy_port(0, &busy_port);
    CHECK(busy >= 0, "occupy a port");
    char busy_address[32];
    snprintf(busy_address, sizeof busy_address, "127.0.0.1:%u", busy_port);
    EXPECT_STATUS(api.serve(busy_address), CACHE_MONITOR_STATUS_BIND_FAILED);
    char *message = copy_text(api.last_error);
    CHECK(strstr(message, busy_address) != NULL, "last error names the address: %s", message);
    free(message);
    close(busy);

    /* NULL means the default address: make sure it is taken (by us or by someone else), so the test
       never depends on port 9464 being free. */
    uint16_t ignored;
    int default_port = occupy_port(9464, &ignored);
    EXPECT_STATUS(api.serve(NULL), CACHE_MONITOR_STATUS_BIND_FAILED);
    message = copy_text(api.last_error);
    CHECK(strstr(message, "127.0.0.1:9464") != NULL, "NULL means 127.0.0.1:9464: %s", message);
    free(message);
    if (default_port >= 0) {
        close(default_port);
    }
    CHECK(thread_count() == threads_before, "failed starts leave no thread");

    /* Serve, scrape, refuse a second start, stop: twice, to show a restart works. */
    EXPECT_STATUS(api.reset(), CACHE_MONITOR_STATUS_OK);
    EXPECT_STATUS(api.record(CACHE_MONITOR_OPERATION_GET, CACHE_MONITOR_OUTCOME_HIT, 1000, (const uint8_t *)"user:1", 6),
                  CACHE_MONITOR_STATUS_OK);
    for (int round = 0; round < 2; round++) {
        EXPECT_STATUS(api.serve("127.0.0.1:0"), CACHE_MONITOR_STATUS_OK);
        CHECK(thread_count() == threads_before + 1, "serving adds exactly one thread: %d -> %d", threads_before,
              thread_count());
        EXPECT_STATUS(api.serve("127.0.0.1:0"), CACHE_MONITOR_STATUS_ALREADY_SERVING);
        scrape_sees_the_record();
        if (round == 1) {
            /* Authentication through the configuration, applied at each request. */
            EXPECT_STATUS(api.configure("{\"http\": {\"bearer_token\": \"c-host-token\"}}"), CACHE_MONITOR_STATUS_OK);
            char *address = serving_address();
            char *denied = http_get(address, "/metrics", "");
            CHECK(strncmp(denied, "HTTP/1.1 401 ", 13) == 0, "no token:\n%s", denied);
            char *wrong = http_get(address, "/metrics", "Authorization: Bearer c-host-tokem\r\n");
            CHECK(strncmp(wrong, "HTTP/1.1 401 ", 13) == 0, "wrong token:\n%s", wrong);
            char *allowed = http_get(address, "/metrics", "Authorization: Bearer c-host-token\r\n");
            CHECK(strncmp(allowed, "HTTP/1.1 200 OK\r\n", 17) == 0, "right token:\n%s", allowed);
            free(denied);
            free(wrong);
            free(allowed);
            free(address);
            EXPECT_STATUS(api.configure("{\"http\": {\"bearer_token\": \"has space\"}}"),
                          CACHE_MONITOR_STATUS_INVALID_CONFIG);
            EXPECT_STATUS(api.configure("{\"http\": {\"bearer_token\": null}}"), CACHE_MONITOR_STATUS_OK);
            scrape_sees_the_record();
        }
        EXPECT_STATUS(api.serve_stop(), CACHE_MONITOR_STATUS_OK);
        CHECK(thread_count() == threads_before, "serve_stop joined the exporter thread: %d threads, %d before",
              thread_count(), threads_before);
        EXPECT_STATUS(api.serve_address(NULL, 0, &len), CACHE_MONITOR_STATUS_NOT_SERVING);
    }

    /* Nothing of the library is left running: dlclose unmaps it. */
    CHECK(library_mapped(argv[1]), "the library is mapped while loaded");
    CHECK(dlclose(api.handle) == 0, "dlclose: %s", dlerror());
    CHECK(!library_mapped(argv[1]), "dlclose left the library mapped: a thread or thread-local destructor pins it");
    printf("serve_stop: statuses, scrape, thread count back to %d, library unloaded\n", threads_before);
    return 0;
}
