// trampolines.h: the C side of the Go package, shared by its cgo files.
//
// Go cannot call a C function pointer, so every cm_* function below calls one of the pointers that dlsym
// returned through the header's typedef. The pointers travel as uintptr_t: integers, which cgo's run-time
// pointer checks have no reason to inspect.
//
// The library keeps its last error per OS thread, and a goroutine may run on another thread by its next
// cgo call: so a trampoline whose call fails reads the message right away, in the same C call, and
// returns it with the status (cm_status). Success costs nothing more than a status.
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

static inline const char *cm_version_string(uintptr_t f) { return ((CacheMonitorVersionStringFn)f)(); }

// cache_monitor_set_enabled never fails: no last error to read.
static inline void cm_set_enabled(uintptr_t f, int32_t enabled) { ((CacheMonitorSetEnabledFn)f)(enabled); }

static inline int32_t cm_is_enabled(uintptr_t f) { return ((CacheMonitorIsEnabledFn)f)(); }

// What a call returned, and when it failed, the calling thread's last error, copied into memory from
// malloc that the caller frees (NULL on success, or when there was no memory for it).
typedef struct {
	int32_t status;
	char *message;
} cm_status;

// The calling thread's last error as a malloc'ed string, read with the two-call buffer contract (nothing
// else writes this thread's message in between).
static inline char *cm_last_error_copy(uintptr_t last_error) {
	size_t len = 0;
	if (((CacheMonitorRenderFn)last_error)(NULL, 0, &len) != CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) {
		return NULL;
	}
	char *message = malloc(len + 1);
	if (message != NULL && ((CacheMonitorRenderFn)last_error)((uint8_t *)message, len + 1, &len) != 0) {
		free(message);
		message = NULL;
	}
	return message;
}

// `status` with the calling thread's last error when it is a failure.
static inline cm_status cm_checked(int32_t status, uintptr_t last_error) {
	cm_status result = {status, NULL};
	if (status != CACHE_MONITOR_STATUS_OK) {
		result.message = cm_last_error_copy(last_error);
	}
	return result;
}

static inline cm_status cm_configure(uintptr_t f, uintptr_t last_error, const char *json) {
	return cm_checked(((CacheMonitorConfigureFn)f)(json), last_error);
}

// cache_monitor_record and cache_monitor_finish.
static inline cm_status cm_record(uintptr_t f, uintptr_t last_error, uint32_t op, uint32_t result,
                                  uint64_t duration_ns, const uint8_t *key, size_t key_len) {
	return cm_checked(((CacheMonitorRecordFn)f)(op, result, duration_ns, key, key_len), last_error);
}

static inline cm_status cm_record_with_frames(uintptr_t f, uintptr_t last_error, uint32_t op, uint32_t result,
                                              uint64_t duration_ns, const uint8_t *key, size_t key_len,
                                              const uint8_t *frames, size_t frames_len) {
	return cm_checked(((CacheMonitorRecordWithFramesFn)f)(op, result, duration_ns, key, key_len,
	                                                      (const char *)frames, frames_len),
	                  last_error);
}

static inline cm_status cm_record_with_exemplar(uintptr_t f, uintptr_t last_error, uint32_t op, uint32_t result,
                                                uint64_t duration_ns, const uint8_t *key, size_t key_len,
                                                const uint8_t *labels, size_t labels_len) {
	return cm_checked(((CacheMonitorRecordWithExemplarFn)f)(op, result, duration_ns, key, key_len,
	                                                        (const char *)labels, labels_len),
	                  last_error);
}

// cache_monitor_record_batch's status and how many records it recorded.
typedef struct {
	cm_status status;
	size_t recorded;
} cm_batch_status;

// records is the address of the batch's records, as an integer: they are C memory, so cgo's check of a
// pointer argument would only find that out again, at every flush.
static inline cm_batch_status cm_record_batch(uintptr_t f, uintptr_t last_error, uintptr_t records, size_t count) {
	cm_batch_status result;
	result.recorded = 0;
	result.status = cm_checked(((CacheMonitorRecordBatchFn)f)((const CacheMonitorRecord *)records, count,
	                                                          &result.recorded),
	                           last_error);
	return result;
}

static inline cm_status cm_begin(uintptr_t f, uintptr_t last_error, uint32_t op) {
	return cm_checked(((CacheMonitorBeginFn)f)(op), last_error);
}

static inline cm_status cm_set_gauge(uintptr_t f, uintptr_t last_error, uint32_t gauge, uint64_t value) {
	return cm_checked(((CacheMonitorSetGaugeFn)f)(gauge, value), last_error);
}

// cache_monitor_reset, _shutdown and _serve_stop: no arguments, a status.
static inline cm_status cm_call(uintptr_t f, uintptr_t last_error) {
	return cm_checked(((CacheMonitorResetFn)f)(), last_error);
}

// A text with the two-call buffer contract (cache_monitor_last_error, cache_monitor_serve_address), as a
// malloc'ed string in *text on success.
static inline cm_status cm_text(uintptr_t f, uintptr_t last_error, char **text, size_t *len) {
	*text = NULL;
	*len = 0;
	for (;;) {
		size_t needed = 0;
		int32_t status = ((CacheMonitorRenderFn)f)(NULL, 0, &needed);
		if (status != CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) {
			return cm_checked(status, last_error);
		}
		char *buf = malloc(needed + 1);
		if (buf == NULL) {
			cm_status failed = {CACHE_MONITOR_STATUS_INTERNAL, NULL};
			return failed;
		}
		status = ((CacheMonitorRenderFn)f)((uint8_t *)buf, needed + 1, len);
		if (status == CACHE_MONITOR_STATUS_OK) {
			*text = buf;
			return cm_checked(status, last_error);
		}
		free(buf);
		if (status != CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL) {
			return cm_checked(status, last_error);
		}
		// The text grew between the two calls: ask again.
	}
}

// cache_monitor_render_alloc: the text in *out (release it with cm_free) and its size in *len.
static inline cm_status cm_render_alloc(uintptr_t f, uintptr_t last_error, uint32_t format, uint8_t **out,
                                        size_t *len) {
	return cm_checked(((CacheMonitorRenderAllocFn)f)(format, out, len), last_error);
}

static inline void cm_free(uintptr_t f, uint8_t *ptr) { ((CacheMonitorFreeFn)f)(ptr); }

static inline cm_status cm_import_state(uintptr_t f, uintptr_t last_error, const uint8_t *data, size_t len) {
	return cm_checked(((CacheMonitorImportStateFn)f)(data, len), last_error);
}

static inline const char *cm_strerror(uintptr_t f, int32_t code) { return ((CacheMonitorStrerrorFn)f)(code); }

static inline cm_status cm_serve(uintptr_t f, uintptr_t last_error, const char *addr) {
	return cm_checked(((CacheMonitorServeFn)f)(addr), last_error);
}

#endif
