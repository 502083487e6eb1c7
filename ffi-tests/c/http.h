/*
 * http.h: the few lines of HTTP/1.1 over loopback TCP that the hosts testing the exporter share. Every
 * function reports failure with -1 instead of exiting, so that a forked child can use them too.
 */
#ifndef CACHE_MONITOR_TEST_HTTP_H
#define CACHE_MONITOR_TEST_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A connection to "127.0.0.1:N" whose reads give up after `timeout_seconds` (0: never), or -1. */
static inline int http_connect(const char *address, long timeout_seconds) {
    const char *colon = strrchr(address, ':');
    if (colon == NULL) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (timeout_seconds > 0) {
        struct timeval timeout = {.tv_sec = timeout_seconds};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `GET path` with `extra` header lines ("" for none) and `Connection: close`; 0, or -1. */
static inline int http_send_get(int fd, const char *path, const char *extra) {
    char request[512];
    int n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", path,
                     extra);
    if (n <= 0 || (size_t)n >= sizeof request) return -1;
    return write(fd, request, (size_t)n) == n ? 0 : -1;
}

/* Reads the response's status code and the rest of it (so the server is never cut off mid-response),
   then closes `fd`; -1 if no status line came. */
static inline int http_read_status(int fd) {
    char head[32] = {0};
    size_t got = 0;
    for (ssize_t r; got < sizeof head - 1 && (r = read(fd, head + got, sizeof head - 1 - got)) > 0;) {
        got += (size_t)r;
    }
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0) {
    }
    close(fd);
    return strncmp(head, "HTTP/1.1 ", 9) == 0 ? atoi(head + 9) : -1;
}

/* The status code of `GET path` from "127.0.0.1:N" on a fresh connection, or -1. */
static inline int http_status(const char *address, const char *path, long timeout_seconds) {
    int fd = http_connect(address, timeout_seconds);
    if (fd < 0) return -1;
    if (http_send_get(fd, path, "") != 0) {
        close(fd);
        return -1;
    }
    return http_read_status(fd);
}

#endif
