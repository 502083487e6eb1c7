// trampolines.h: the C side of the Go package, shared by its cgo files.
//
// Go cannot call a C function pointer, so every cm_* function below calls one of the pointers that dlsym
// returned through the header's typedef. The pointers travel as uintptr_t: integers, which cgo's run-time
// pointer checks have no reason to inspect.
#ifndef CACHE_MONITOR_GO_TRAMPOLINES_H
#define CACHE_MONITOR_GO_TRAMPOLINES_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache_monitor.h"

// The result of cm_open: a handle, or NULL and dlerror's text copied (dlerror's own buffer belongs to
// the calling OS thread, and a goroutine may run on another one by the time it reads it).
typedef struct {
	void *handle;
	char error[512];
} cm_opened;

static inline cm_opened cm_open(const char *path) {
	cm_opened opened;
	opened.error[0] = '\0';
	opened.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (opened.handle == NULL) {
		const char *error = dlerror();
		strncpy(opened.error, error ? error : "dlopen failed", sizeof opened.error - 1);
		opened.error[sizeof opened.error - 1] = '\0';
	}
	return opened;
}

static inline uintptr_t cm_symbol(void *handle, const char *name) { return (uintptr_t)dlsym(handle, name); }

static inline uint32_t cm_abi_version(uintptr_t f) { return ((CacheMonitorAbiVersionFn)f)(); }

static inline int32_t cm_configure(uintptr_t f, const char *json) { return ((CacheMonitorConfigureFn)f)(json); }

static inline int32_t cm_record(uintptr_t f, uint32_t op, uint32_t result, uint64_t duration_ns, const uint8_t *key,
                                size_t key_len) {
	return ((CacheMonitorRecordFn)f)(op, result, duration_ns, key, key_len);
}

static inline int32_t cm_record_with_frames(uintptr_t f, uint32_t op, uint32_t result, uint64_t duration_ns,
                                            const uint8_t *key, size_t key_len, const uint8_t *frames,
                                            size_t frames_len) {
	return ((CacheMonitorRecordWithFramesFn)f)(op, result, duration_ns, key, key_len, (const char *)frames,
	                                           frames_len);
}

static inline int32_t cm_record_batch(uintptr_t f, const CacheMonitorRecord *records, size_t count,
                                      size_t *recorded) {
	return ((CacheMonitorRecordBatchFn)f)(records, count, recorded);
}

static inline int32_t cm_begin(uintptr_t f, uint32_t op) { return ((CacheMonitorBeginFn)f)(op); }

static inline int32_t cm_set_gauge(uintptr_t f, uint32_t gauge, uint64_t value) {
	return ((CacheMonitorSetGaugeFn)f)(gauge, value);
}

// cache_monitor_reset, _shutdown and _serve_stop: no arguments, a status.
static inline int32_t cm_call(uintptr_t f) { return ((CacheMonitorResetFn)f)(); }

static inline int32_t cm_render(uintptr_t f, uint8_t *buf, size_t cap, size_t *len) {
	return ((CacheMonitorRenderFn)f)(buf, cap, len);
}

static inline int32_t cm_import_state(uintptr_t f, const uint8_t *data, size_t len) {
	return ((CacheMonitorImportStateFn)f)(data, len);
}

static inline const char *cm_strerror(uintptr_t f, int32_t code) { return ((CacheMonitorStrerrorFn)f)(code); }

static inline int32_t cm_serve(uintptr_t f, const char *addr) { return ((CacheMonitorServeFn)f)(addr); }

#endif
