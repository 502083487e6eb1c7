/*
 * What the callgrind hosts (record_loop.c, batch_loop.c) share: their arguments and loading one function
 * of the library with dlopen, as a C host does.
 */
#ifndef CALLGRIND_LOOP_HOST_H
#define CALLGRIND_LOOP_HOST_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host's arguments: <library> <count> [key]. */
typedef struct {
    void *function;
    long count;
    const uint8_t *key;
    size_t key_len;
} LoopHost;

/* Parses the arguments and loads `symbol` from the library; prints why and returns nonzero if it cannot. */
static int loop_host_start(int argc, char **argv, const char *symbol, LoopHost *host) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <library> <count> [key]\n", argv[0]);
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    host->function = dlsym(library, symbol);
    if (host->function == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    host->count = atol(argv[2]);
    host->key = argc > 3 ? (const uint8_t *)argv[3] : NULL;
    host->key_len = argc > 3 ? strlen(argv[3]) : 0;
    return 0;
}

/* A duration that moves through the buckets, as real latencies do. */
static inline uint64_t loop_host_duration_ns(uint64_t i) {
    return 800 + ((i * 2654435761u) & 0xffff);
}

#endif
