// Command gohost is a Go host of libcache_monitor.so: it loads the library with dlopen (cgo calls the
// function pointers dlsym returns through small C trampolines), records from many goroutines, which the
// Go scheduler moves between OS threads at will, renders with the two-call buffer contract, and checks
// that every count is exact. Some records go through cache_monitor_record_with_frames, carrying a logical
// Go call site (Go stacks cannot be unwound from C), which the sampled flamegraph must show. It exits
// non-zero on any mismatch.
//
// Usage: gohost <path to libcache_monitor.so>
//
// Standard library only; `tests/go_host.rs` builds and runs it.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include "cache_monitor.h"

static void *open_library(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static const char *dl_error(void) { const char *e = dlerror(); return e ? e : "unknown dlerror"; }
static void *find_symbol(void *handle, const char *name) { return dlsym(handle, name); }

// Go cannot call a C function pointer: these trampolines do, with the header's typedefs.
static uint32_t call_abi_version(void *f) { return ((CacheMonitorAbiVersionFn)f)(); }
static int32_t call_reset(void *f) { return ((CacheMonitorResetFn)f)(); }
static int32_t call_begin(void *f, uint32_t op) { return ((CacheMonitorBeginFn)f)(op); }
static int32_t call_record(void *f, uint32_t op, uint32_t result, uint64_t ns, const uint8_t *key, size_t len) {
	return ((CacheMonitorRecordFn)f)(op, result, ns, key, len);
}
static int32_t call_configure(void *f, const char *json) { return ((CacheMonitorConfigureFn)f)(json); }
static int32_t call_record_with_frames(void *f, uint32_t op, uint32_t result, uint64_t ns, const uint8_t *key,
                                       size_t len, const char *frames, size_t frames_len) {
	return ((CacheMonitorRecordWithFramesFn)f)(op, result, ns, key, len, frames, frames_len);
}
static int32_t call_render(void *f, uint8_t *buf, size_t cap, size_t *len) {
	return ((CacheMonitorRenderFn)f)(buf, cap, len);
}
static const char *call_strerror(void *f, int32_t code) { return ((CacheMonitorStrerrorFn)f)(code); }
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

const (
	goroutines  = 64
	perRoutine  = 100000
	operations  = 7
	results     = 4
	beginEndGap = 1000 // every 1000th record goes through begin/end
	framesEvery = 5    // every 5th record carries its Go call site
	goCallSite  = "main.main;main.worker;cache.(*Cache).Get"
)

var operationNames = [operations]string{"get", "put", "delete", "contains", "clear", "evict", "load"}
var resultNames = [results]string{"hit", "miss", "ok", "error"}

type library struct {
	handle                                        unsafe.Pointer
	abiVersion, reset, begin, record, end, render unsafe.Pointer
	configure, recordWithFrames, renderFolded     unsafe.Pointer
	strerror                                      unsafe.Pointer
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gohost: "+format+"\n", args...)
	os.Exit(1)
}

func load(path string) library {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	handle := C.open_library(cpath)
	if handle == nil {
		fail("dlopen %s: %s", path, C.GoString(C.dl_error()))
	}
	symbol := func(name string) unsafe.Pointer {
		cname := C.CString(name)
		defer C.free(unsafe.Pointer(cname))
		f := C.find_symbol(handle, cname)
		if f == nil {
			fail("dlsym %s: %s", name, C.GoString(C.dl_error()))
		}
		return f
	}
	return library{
		handle:     handle,
		abiVersion: symbol("cache_monitor_abi_version"),
		reset:      symbol("cache_monitor_reset"),
		begin:      symbol("cache_monitor_begin"),
		record:     symbol("cache_monitor_record"),
		end:        symbol("cache_monitor_end"),
		render:     symbol("cache_monitor_render"),
		strerror:   symbol("cache_monitor_strerror"),

		configure:        symbol("cache_monitor_configure"),
		recordWithFrames: symbol("cache_monitor_record_with_frames"),
		renderFolded:     symbol("cache_monitor_render_flamegraph_folded"),
	}
}

func (lib library) check(what string, status C.int32_t) {
	if status != C.CACHE_MONITOR_STATUS_OK {
		fail("%s returned %d (%s)", what, int32(status), C.GoString(C.call_strerror(lib.strerror, status)))
	}
}

// renderText follows the buffer contract with `render`: ask for the size, then retry until the text fits.
func (lib library) renderText(render unsafe.Pointer) string {
	var length C.size_t
	status := C.call_render(render, nil, 0, &length)
	for {
		if status == C.CACHE_MONITOR_STATUS_OK {
			return ""
		}
		if status != C.CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL {
			lib.check("cache_monitor_render", status)
		}
		capacity := length + 1
		buf := (*C.uint8_t)(C.malloc(capacity))
		if buf == nil {
			fail("out of memory")
		}
		status = C.call_render(render, buf, capacity, &length)
		if status == C.CACHE_MONITOR_STATUS_OK {
			text := C.GoStringN((*C.char)(unsafe.Pointer(buf)), C.int(length))
			C.free(unsafe.Pointer(buf))
			return text
		}
		C.free(unsafe.Pointer(buf)) // the text grew between the calls: ask again
	}
}

// nthRecord is the workload, a pure function of (goroutine, i), so main can count what was recorded.
func nthRecord(g, i int) (op, result uint32, ns uint64) {
	op = uint32((g + i) % operations)
	switch op {
	case C.CACHE_MONITOR_OPERATION_GET, C.CACHE_MONITOR_OPERATION_CONTAINS:
		result = C.CACHE_MONITOR_RESULT_HIT
		if i%4 == 0 {
			result = C.CACHE_MONITOR_RESULT_MISS
		}
	case C.CACHE_MONITOR_OPERATION_LOAD:
		result = C.CACHE_MONITOR_RESULT_OK
		if i%10 == 0 {
			result = C.CACHE_MONITOR_RESULT_ERROR
		}
	default:
		result = C.CACHE_MONITOR_RESULT_OK
		if i%97 == 0 {
			result = C.CACHE_MONITOR_RESULT_ERROR
		}
	}
	ns = uint64(i%5000)*997 + 100
	return
}

// sample returns the value of the series named exactly `series`, or -1 when it is absent.
func sample(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(line[len(series)+1:], 64)
			if err != nil {
				fail("bad value in %q", line)
			}
			return v
		}
	}
	return -1
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: gohost <libcache_monitor.so>")
	}
	lib := load(os.Args[1])
	version := uint32(C.call_abi_version(lib.abiVersion))
	if version>>16 != C.CACHE_MONITOR_ABI_VERSION_MAJOR || version&0xffff < C.CACHE_MONITOR_ABI_VERSION_MINOR {
		fail("library ABI %d.%d, header %d.%d", version>>16, version&0xffff,
			C.CACHE_MONITOR_ABI_VERSION_MAJOR, C.CACHE_MONITOR_ABI_VERSION_MINOR)
	}
	lib.check("cache_monitor_reset", C.call_reset(lib.reset))
	profile := C.CString(`{"profiler": {"sample_every": 100}}`)
	lib.check("cache_monitor_configure", C.call_configure(lib.configure, profile))
	C.free(unsafe.Pointer(profile))
	frames := C.CString(goCallSite)
	framesLen := C.size_t(len(goCallSite))

	// Keys live in C memory, so every call passes a stable pointer without cgo pointer checks.
	keys := make([]*C.uint8_t, 4)
	keyLens := make([]C.size_t, 4)
	for k, key := range []string{"user:42", "session:7f3a", "path/a/b.json", "plain"} {
		keys[k] = (*C.uint8_t)(C.CBytes([]byte(key)))
		keyLens[k] = C.size_t(len(key))
	}

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perRoutine; i++ {
				op, result, ns := nthRecord(g, i)
				k := i % 4
				var status C.int32_t
				switch {
				case i%beginEndGap == 0:
					lib.check("cache_monitor_begin", C.call_begin(lib.begin, C.uint32_t(op)))
					status = C.call_record(lib.end, C.uint32_t(op), C.uint32_t(result), C.uint64_t(ns), keys[k], keyLens[k])
				case i%framesEvery == 1:
					status = C.call_record_with_frames(lib.recordWithFrames, C.uint32_t(op), C.uint32_t(result),
						C.uint64_t(ns), keys[k], keyLens[k], frames, framesLen)
				case i%3 == 0:
					status = C.call_record(lib.record, C.uint32_t(op), C.uint32_t(result), C.uint64_t(ns), nil, 0)
				default:
					status = C.call_record(lib.record, C.uint32_t(op), C.uint32_t(result), C.uint64_t(ns), keys[k], keyLens[k])
				}
				if status != C.CACHE_MONITOR_STATUS_OK {
					lib.check("cache_monitor_record", status)
				}
			}
		}(g)
	}
	wg.Wait()

	var expected [operations][results]uint64
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perRoutine; i++ {
			op, result, _ := nthRecord(g, i)
			expected[op][result]++
		}
	}

	text := lib.renderText(lib.render)
	var total uint64
	for op := 0; op < operations; op++ {
		for result := 0; result < results; result++ {
			labels := fmt.Sprintf(`{operation="%s",result="%s"}`, operationNames[op], resultNames[result])
			want := float64(expected[op][result])
			if want == 0 {
				want = -1 // a series appears at its first record
			}
			for _, series := range []string{
				"cuenv_cache_operations_total" + labels,
				"cuenv_cache_operation_duration_seconds_count" + labels,
				fmt.Sprintf(`cuenv_cache_operation_duration_seconds_bucket{operation="%s",result="%s",le="+Inf"}`,
					operationNames[op], resultNames[result]),
			} {
				if got := sample(text, series); got != want {
					fail("%s: got %.0f, want %.0f", series, got, want)
				}
			}
			total += expected[op][result]
		}
	}
	if total != goroutines*perRoutine {
		fail("the workload covers %d records, not %d", total, goroutines*perRoutine)
	}
	if got := sample(text, `cuenv_cache_stats{metric="operations_in_flight"}`); got != 0 {
		fail("operations in flight: got %.0f, want 0", got)
	}
	// Sampling is one record in 100 per OS thread; a fifth of the records carry the Go call site, so the
	// flamegraph must show it above the operations it called.
	folded := lib.renderText(lib.renderFolded)
	withCallSite := 0
	for _, line := range strings.Split(folded, "\n") {
		if strings.Contains(line, goCallSite+";cache_monitor::") {
			withCallSite++
		}
	}
	if withCallSite == 0 {
		fail("no sampled stack carries the Go call site %q:\n%s", goCallSite, folded)
	}
	fmt.Printf("gohost: %d goroutines x %d records counted exactly; %d sampled stacks show the Go call site\n",
		goroutines, perRoutine, withCallSite)
}
