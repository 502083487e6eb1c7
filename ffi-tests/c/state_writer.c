/*
 * state_writer.c: a short-lived command-line host whose counts outlive it. The library attaches the state
 * file that CACHE_MONITOR_STATE names (the host itself knows nothing of it), and the host records
 * RECORDS operations with keys under its own pattern `p<SLOT>:`, then exits; or it is killed.
 *
 * So that the test can tell exactly which records returned, the host keeps its progress in slot SLOT of
 * a shared file (PROGRESS): `pending` is 1 while a record call runs, `completed` counts the calls that
 * returned. A process killed with pending == 1 may or may not have counted its last record; otherwise its
 * pattern's count must equal `completed` exactly.
 *
 * usage: state_writer LIBRARY PROGRESS SLOT RECORDS [CHILD_RECORDS]
 * With CHILD_RECORDS, the host forks after half its records: the child records CHILD_RECORDS under the
 * pattern `c<SLOT>:` into the same file (progress slot SLOT + 1), and the parent waits for it.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_monitor.h"

enum { READY, PENDING, COMPLETED, FINISHED, SLOT_WORDS = 8 };

static void fail(const char *what) {
    fprintf(stderr, "state_writer: %s\n", what);
    exit(1);
}

static volatile uint64_t *progress_slot(const char *path, long slot) {
    int fd = open(path, O_RDWR);
    if (fd < 0) fail("cannot open the progress file");
    size_t size = (size_t)(slot + 2) * SLOT_WORDS * sizeof(uint64_t);
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail("cannot map the progress file");
    close(fd);
    return (volatile uint64_t *)map + slot * SLOT_WORDS;
}

static void record_all(CacheMonitorRecordFn record, volatile uint64_t *progress, const char *prefix, long slot,
                       long records) {
    char key[64];
    for (long i = 0; i < records; i++) {
        int len = snprintf(key, sizeof key, "%s%ld:%ld", prefix, slot, i);
        uint32_t result = i % 4 == 0 ? CACHE_MONITOR_OUTCOME_MISS : CACHE_MONITOR_OUTCOME_HIT;
        __atomic_store_n(&progress[PENDING], 1, __ATOMIC_SEQ_CST);
        int32_t status = record(CACHE_MONITOR_OPERATION_GET, result, 1000, (const uint8_t *)key, (size_t)len);
        __atomic_store_n(&progress[COMPLETED], (uint64_t)i + 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&progress[PENDING], 0, __ATOMIC_SEQ_CST);
        if (status != CACHE_MONITOR_STATUS_OK) fail("a record was refused");
        if (i == 0) __atomic_store_n(&progress[READY], 1, __ATOMIC_SEQ_CST);
        /* A little work between records, so that a kill lands anywhere, inside records too. */
        for (volatile int spin = 0; spin < 300; spin++) {
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) fail("usage: state_writer LIBRARY PROGRESS SLOT RECORDS [CHILD_RECORDS]");
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) fail(dlerror());
    CacheMonitorRecordFn record = (CacheMonitorRecordFn)dlsym(library, "cache_monitor_record");
    if (record == NULL) fail("no cache_monitor_record");
    long slot = atol(argv[3]), records = atol(argv[4]);
    volatile uint64_t *progress = progress_slot(argv[2], slot);
    if (argc == 5) {
        record_all(record, progress, "p", slot, records);
    } else {
        long half = records / 2, child_records = atol(argv[5]);
        record_all(record, progress, "p", slot, half);
        pid_t child = fork();
        if (child < 0) fail("fork failed");
        if (child == 0) {
            volatile uint64_t *child_progress = progress + SLOT_WORDS;
            record_all(record, child_progress, "c", slot, child_records);
            __atomic_store_n(&child_progress[FINISHED], 1, __ATOMIC_SEQ_CST);
            _exit(0);
        }
        int status = 0;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("the forked child failed");
        /* The parent's own records after the fork continue its progress. */
        volatile uint64_t *rest = progress;
        for (long i = half; i < records; i++) {
            char key[64];
            int len = snprintf(key, sizeof key, "p%ld:%ld", slot, i);
            uint32_t result = i % 4 == 0 ? CACHE_MONITOR_OUTCOME_MISS : CACHE_MONITOR_OUTCOME_HIT;
            if (record(CACHE_MONITOR_OPERATION_GET, result, 1000, (const uint8_t *)key, (size_t)len) != 0)
                fail("a record after the fork was refused");
            __atomic_store_n(&rest[COMPLETED], (uint64_t)i + 1, __ATOMIC_SEQ_CST);
        }
    }
    __atomic_store_n(&progress[FINISHED], 1, __ATOMIC_SEQ_CST);
    return 0;
}
