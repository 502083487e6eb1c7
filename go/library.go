package cachemonitor

/*
#cgo CFLAGS: -DCACHE_MONITOR_NO_DEPRECATED
#cgo LDFLAGS: -ldl
#include "trampolines.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"
)

// The C ABI version this package is written for: [Open] accepts a library with the same major version
// and at least this minor version (1.5 added cache_monitor_record_batch, which [Batch] uses; 1.6
// cache_monitor_render_alloc, which the renders use, cache_monitor_finish and the per-thread last error).
const (
	ABIMajor = 1
	ABIMinor = 6
)

// DefaultLibrary is the file [Open] asks the dynamic loader for when given no path and
// CACHE_MONITOR_LIB is not set: found through LD_LIBRARY_PATH, the executable's run path and the
// loader's cache, as for any shared library.
const DefaultLibrary = "libcache_monitor.so"

// LibraryEnv is the environment variable [Open] reads when given no path.
const LibraryEnv = "CACHE_MONITOR_LIB"

// Library is the loaded libcache_monitor.so. Its methods may be called from any number of goroutines
// at once: the library records lock-free into per-thread shards, and goroutines moving between OS
// threads (or Begin and End of one operation running on different ones) are fine.
//
// Everything a Library records goes into the one monitor of the loaded library, which is process-wide:
// opening the same file twice gives two Library values over the same counts. A loaded library is never
// unloaded (call [Library.Shutdown] to stop its exporter).
type Library struct {
	path    string
	version uint32
	fn      functions
}

// functions holds the addresses dlsym returned, as integers (see trampolines.h).
type functions struct {
	abiVersion, versionString, configure, record, recordWithFrames, recordBatch C.uintptr_t
	begin, finish, setGauge, reset, importState, strerror                       C.uintptr_t
	serve, serveStop, serveAddress, shutdown, lastError                         C.uintptr_t
	renderAlloc, free, setEnabled, isEnabled, recordWithExemplar                C.uintptr_t
}

// symbol is a function Open looks up, and where it keeps its address.
type symbol struct {
	name string
	addr *C.uintptr_t
}

// format is a CacheMonitorFormat: what cache_monitor_render_alloc renders.
type format uint32

const (
	formatPrometheus       format = C.CACHE_MONITOR_FORMAT_PROMETHEUS
	formatOpenMetrics      format = C.CACHE_MONITOR_FORMAT_OPENMETRICS
	formatHitRateJSON      format = C.CACHE_MONITOR_FORMAT_HIT_RATE_JSON
	formatStatsJSON        format = C.CACHE_MONITOR_FORMAT_STATS_JSON
	formatFlamegraphFolded format = C.CACHE_MONITOR_FORMAT_FLAMEGRAPH_FOLDED
	formatFlamegraphSVG    format = C.CACHE_MONITOR_FORMAT_FLAMEGRAPH_SVG
	formatStateSnapshot    format = C.CACHE_MONITOR_FORMAT_STATE_SNAPSHOT
	formatProtobuf         format = C.CACHE_MONITOR_FORMAT_PROTOBUF
)

// Open loads the library at path with dlopen and checks that it speaks a compatible C ABI (see
// [ABIMajor]). An empty path means $CACHE_MONITOR_LIB when set, else [DefaultLibrary] through the
// loader's search. The error is [ErrIncompatibleABI] (wrapped) for a library of another ABI.
func Open(path string) (*Library, error) {
	if path == "" {
		path = os.Getenv(LibraryEnv)
	}
	if path == "" {
		path = DefaultLibrary
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	opened := C.cm_open(cpath)
	if opened.handle == nil {
		return nil, fmt.Errorf("cachemonitor: cannot load %s: %s", path, C.GoString(&opened.error[0]))
	}
	l := &Library{path: path}
	symbols := []symbol{
		{"cache_monitor_abi_version", &l.fn.abiVersion},
		{"cache_monitor_version_string", &l.fn.versionString},
		{"cache_monitor_configure", &l.fn.configure},
		{"cache_monitor_record", &l.fn.record},
		{"cache_monitor_record_with_frames", &l.fn.recordWithFrames},
		{"cache_monitor_record_batch", &l.fn.recordBatch},
		{"cache_monitor_begin", &l.fn.begin},
		{"cache_monitor_finish", &l.fn.finish},
		{"cache_monitor_set_gauge", &l.fn.setGauge},
		{"cache_monitor_reset", &l.fn.reset},
		{"cache_monitor_import_state", &l.fn.importState},
		{"cache_monitor_strerror", &l.fn.strerror},
		{"cache_monitor_serve", &l.fn.serve},
		{"cache_monitor_serve_stop", &l.fn.serveStop},
		{"cache_monitor_serve_address", &l.fn.serveAddress},
		{"cache_monitor_shutdown", &l.fn.shutdown},
		{"cache_monitor_last_error", &l.fn.lastError},
		{"cache_monitor_render_alloc", &l.fn.renderAlloc},
		{"cache_monitor_free", &l.fn.free},
		{"cache_monitor_set_enabled", &l.fn.setEnabled},
		{"cache_monitor_is_enabled", &l.fn.isEnabled},
		{"cache_monitor_record_with_exemplar", &l.fn.recordWithExemplar},
	}
	// The version first: an older library lacks some of the other symbols, and saying so is clearer.
	if err := l.lookUp(opened.handle, symbols[0]); err != nil {
		return nil, err
	}
	l.version = uint32(C.cm_abi_version(l.fn.abiVersion))
	if !compatible(l.version) {
		major, minor := l.ABIVersion()
		return nil, fmt.Errorf("%w: %s has ABI %d.%d, this package needs %d.%d or a later %d.x",
			ErrIncompatibleABI, path, major, minor, ABIMajor, ABIMinor, ABIMajor)
	}
	for _, s := range symbols[1:] {
		if err := l.lookUp(opened.handle, s); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// compatible tells whether a library of ABI version (major << 16) | minor serves this package: the same
// major version, and at least the minor version it needs.
func compatible(version uint32) bool {
	return version>>16 == ABIMajor && version&0xffff >= ABIMinor
}

// lookUp stores the address of a symbol, or fails when the library has no such symbol.
func (l *Library) lookUp(handle unsafe.Pointer, s symbol) error {
	cname := C.CString(s.name)
	defer C.free(unsafe.Pointer(cname))
	*s.addr = C.cm_symbol(handle, cname)
	if *s.addr == 0 {
		return fmt.Errorf("cachemonitor: %s has no symbol %s: not a cache-monitor library?", l.path, s.name)
	}
	return nil
}

// Path returns the path the library was loaded from (as given to dlopen).
func (l *Library) Path() string { return l.path }

// ABIVersion returns the loaded library's C ABI version.
func (l *Library) ABIVersion() (major, minor int) {
	return int(l.version >> 16), int(l.version & 0xffff)
}

// VersionString returns the library's crate version and C ABI version, such as
// "cache-monitor 0.1.0 (C ABI 1.6)", for logs.
func (l *Library) VersionString() string {
	return C.GoString(C.cm_version_string(l.fn.versionString))
}

// check returns nil for a successful call, or an [*Error] carrying the status and the message that the
// trampoline read on the thread of the failed call; it frees the message's C memory.
func (l *Library) check(function string, result C.cm_status) error {
	if result.status == 0 {
		return nil
	}
	return l.fail(function, result)
}

// fail is check for a result known to be a failure, as an [*Error].
func (l *Library) fail(function string, result C.cm_status) *Error {
	err := &Error{Func: function, Status: Status(result.status)}
	if result.message != nil {
		err.Message = C.GoString(result.message)
		C.free(unsafe.Pointer(result.message))
	}
	if err.Message == "" {
		err.Message = err.Status.String()
	}
	return err
}

// nanoseconds converts a duration for the C ABI; a negative duration (which a monotonic clock never
// gives) counts as 0.
func nanoseconds(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d)
}

// bytesOf points at the bytes of s for the length of a C call, without copying: a Go string's bytes
// contain no Go pointers, so cgo's rules allow passing them, and C only reads them. NULL for "".
func bytesOf(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	// A string is a (data pointer, length) pair; this reads the pointer.
	return *(**C.uint8_t)(unsafe.Pointer(&s))
}

// Configure changes the library's configuration with a JSON object naming only the keys to change,
// such as {"namespace": "myapp_cache", "operations": ["compact"], "profiler": {"sample_every": 100}}
// (every key: README, "Configuration"). An unknown key or a bad value changes nothing and returns
// StatusInvalidJSON or StatusInvalidConfig with the library's reason.
func (l *Library) Configure(json string) error {
	cjson := C.CString(json)
	defer C.free(unsafe.Pointer(cjson))
	return l.check("cache_monitor_configure", C.cm_configure(l.fn.configure, l.fn.lastError, cjson))
}

// Record records one finished operation: its code, its result, how long it took and its key ("" for
// none; any bytes). One cgo call: when recording at high rates, a [Batch] costs a fraction of it.
// Durations above about 73 minutes are recorded as that ceiling (CACHE_MONITOR_MAX_DURATION_NS).
func (l *Library) Record(op Operation, result Result, d time.Duration, key string) error {
	r := C.cm_record(l.fn.record, l.fn.lastError, C.uint32_t(op), C.uint32_t(result), nanoseconds(d), bytesOf(key),
		C.size_t(len(key)))
	if r.status != 0 {
		return l.fail("cache_monitor_record", r)
	}
	return nil
}

// RecordWithFrames records like [Library.Record] and gives the profiler the Go call site, since the
// library cannot unwind Go stacks: frames is ";"-separated, outermost first, such as
// "main.main;main.serve;cache.(*Cache).Get", and becomes the leaf frames of the sampled stack
// (README, "Flamegraphs"). Frames never cost the record: bytes that are not UTF-8 show as U+FFFD in the
// flamegraph.
func (l *Library) RecordWithFrames(op Operation, result Result, d time.Duration, key, frames string) error {
	r := C.cm_record_with_frames(l.fn.recordWithFrames, l.fn.lastError, C.uint32_t(op), C.uint32_t(result),
		nanoseconds(d), bytesOf(key), C.size_t(len(key)), bytesOf(frames), C.size_t(len(frames)))
	if r.status != 0 {
		return l.fail("cache_monitor_record_with_frames", r)
	}
	return nil
}

// Label is one label of an exemplar: a name ([a-zA-Z_][a-zA-Z0-9_]*, not beginning with "__") and a
// value (UTF-8 without a line feed).
type Label struct {
	Name, Value string
}

// TraceID is the label set of an exemplar that carries a trace id: Label{"trace_id", id}.
func TraceID(id string) Label { return Label{Name: "trace_id", Value: id} }

// RecordWithExemplar records like [Library.Record] and makes labels (a trace id, say:
// lib.RecordWithExemplar(op, result, d, key, cachemonitor.TraceID(id))) the latest exemplar of the
// histogram bucket the record counts in, with the duration as its value and the time of the call: the
// OpenMetrics and protobuf expositions show it on that bucket (README, "Exemplars"). No labels is an
// exemplar of the value and time alone.
//
// The labels are checked first, by OpenMetrics' rules: valid names, no name twice, at most 128
// characters in the names and values together. A label set that breaks them is refused with
// [StatusInvalidExemplar] ([StatusInvalidUTF8] for text that is not UTF-8) and nothing is recorded. A
// name or value holding a line feed is refused the same way without calling the library (the C ABI's
// label text is name=value lines).
func (l *Library) RecordWithExemplar(op Operation, result Result, d time.Duration, key string, labels ...Label) error {
	text, err := exemplarText(labels)
	if err != nil {
		return err
	}
	r := C.cm_record_with_exemplar(l.fn.recordWithExemplar, l.fn.lastError, C.uint32_t(op), C.uint32_t(result),
		nanoseconds(d), bytesOf(key), C.size_t(len(key)), bytesOf(text), C.size_t(len(text)))
	if r.status != 0 {
		return l.fail("cache_monitor_record_with_exemplar", r)
	}
	return nil
}

// exemplarText writes labels in the C ABI's form: name=value lines, separated by "\n".
func exemplarText(labels []Label) (string, error) {
	size := 0
	for _, label := range labels {
		if strings.ContainsRune(label.Name, '\n') || strings.ContainsRune(label.Value, '\n') {
			return "", &Error{
				Func:    "cache_monitor_record_with_exemplar",
				Status:  StatusInvalidExemplar,
				Message: fmt.Sprintf("exemplar label %q holds a line feed", label.Name),
			}
		}
		size += len(label.Name) + len(label.Value) + 2
	}
	if len(labels) == 1 {
		return labels[0].Name + "=" + labels[0].Value, nil
	}
	var text strings.Builder
	text.Grow(size)
	for i, label := range labels {
		if i > 0 {
			text.WriteByte('\n')
		}
		text.WriteString(label.Name)
		text.WriteByte('=')
		text.WriteString(label.Value)
	}
	return text.String(), nil
}

// Begin counts an operation as in flight until [Library.Finish] (from any goroutine).
func (l *Library) Begin(op Operation) error {
	return l.check("cache_monitor_begin", C.cm_begin(l.fn.begin, l.fn.lastError, C.uint32_t(op)))
}

// Finish ends an operation started with [Library.Begin] and records it as [Library.Record] does: do not
// also Record it. With a valid op the operation stops counting as in flight even if the other
// arguments are refused.
func (l *Library) Finish(op Operation, result Result, d time.Duration, key string) error {
	r := C.cm_record(l.fn.finish, l.fn.lastError, C.uint32_t(op), C.uint32_t(result), nanoseconds(d), bytesOf(key),
		C.size_t(len(key)))
	if r.status != 0 {
		return l.fail("cache_monitor_finish", r)
	}
	return nil
}

// End is [Library.Finish]: it ends the operation and records it.
//
// Deprecated: use Finish, whose name says that it records (the C ABI's cache_monitor_end became
// cache_monitor_finish in 1.6 for the same reason).
func (l *Library) End(op Operation, result Result, d time.Duration, key string) error {
	return l.Finish(op, result, d, key)
}

// InFlight is an operation begun with [Library.Start]: in flight, and timed, until [InFlight.Finish].
type InFlight struct {
	lib   *Library
	op    Operation
	start time.Time
}

// Start begins op (see [Library.Begin]) and starts timing it. Call Finish exactly once.
func (l *Library) Start(op Operation) (InFlight, error) {
	if err := l.Begin(op); err != nil {
		return InFlight{}, err
	}
	return InFlight{lib: l, op: op, start: time.Now()}, nil
}

// Finish ends the operation and records it with the time since Start (see [Library.Finish]).
func (f InFlight) Finish(result Result, key string) error {
	return f.lib.Finish(f.op, result, time.Since(f.start), key)
}

// SetGauge sets a gauge the host owns: the cache's size in bytes or its number of entries.
func (l *Library) SetGauge(gauge Gauge, value uint64) error {
	return l.check("cache_monitor_set_gauge", C.cm_set_gauge(l.fn.setGauge, l.fn.lastError, C.uint32_t(gauge),
		C.uint64_t(value)))
}

// SetEnabled switches monitoring on or off at run time, as the configuration {"enabled": ...} does. Off,
// every record, batch, Begin and Finish returns nil at once and counts nothing; what was counted stays
// rendered and served, the exporter and the state file keep working, and switching back on resumes
// counting. It never fails; it takes the library's configuration lock, so call it from code that may
// wait a moment, not per record.
func (l *Library) SetEnabled(enabled bool) {
	var on C.int32_t
	if enabled {
		on = 1
	}
	C.cm_set_enabled(l.fn.setEnabled, on)
}

// Enabled tells whether records count (see [Library.SetEnabled]). Lock-free.
func (l *Library) Enabled() bool {
	return C.cm_is_enabled(l.fn.isEnabled) != 0
}

// Reset forgets every recorded operation and sampled stack and zeroes the gauges; operations in flight
// stay in flight. The configuration stays.
func (l *Library) Reset() error {
	return l.check("cache_monitor_reset", C.cm_call(l.fn.reset, l.fn.lastError))
}

// render renders f once with cache_monitor_render_alloc and copies the text into Go memory.
func (l *Library) render(f format) ([]byte, error) {
	var out *C.uint8_t
	var length C.size_t
	r := C.cm_render_alloc(l.fn.renderAlloc, l.fn.lastError, C.uint32_t(f), &out, &length)
	if r.status != 0 {
		return nil, l.fail("cache_monitor_render_alloc", r)
	}
	defer C.cm_free(l.fn.free, out)
	// unsafe.Slice rather than C.GoBytes, whose length is a C int: a text may exceed 2 GiB. An empty text
	// is an empty slice, not nil.
	text := make([]byte, int(length))
	copy(text, unsafe.Slice((*byte)(unsafe.Pointer(out)), int(length)))
	return text, nil
}

// text reads a function with the two-call buffer contract (last error, serve address) as a string.
func (l *Library) text(function string, f C.uintptr_t) (string, error) {
	var text *C.char
	var length C.size_t
	r := C.cm_text(f, l.fn.lastError, &text, &length)
	if r.status != 0 {
		return "", l.fail(function, r)
	}
	defer C.free(unsafe.Pointer(text))
	return C.GoStringN(text, C.int(length)), nil // a short text: an address or a message of 256 bytes at most
}

// Render returns the Prometheus text exposition (format 0.0.4) of everything recorded.
func (l *Library) Render() ([]byte, error) { return l.render(formatPrometheus) }

// RenderOpenMetrics returns the OpenMetrics 1.0.0 exposition.
func (l *Library) RenderOpenMetrics() ([]byte, error) { return l.render(formatOpenMetrics) }

// RenderProtobuf returns the protobuf exposition: length-delimited io.prometheus.client.MetricFamily
// messages, the duration histogram with its native buckets (what Prometheus scrapes with
// --enable-feature=native-histograms).
func (l *Library) RenderProtobuf() ([]byte, error) { return l.render(formatProtobuf) }

// RenderHitRateJSON returns the hit-rate report as JSON (rolling windows, operations, key patterns).
func (l *Library) RenderHitRateJSON() ([]byte, error) { return l.render(formatHitRateJSON) }

// RenderStatsJSON returns the stats report as JSON (in flight, operations per second, latencies,
// alerts).
func (l *Library) RenderStatsJSON() ([]byte, error) { return l.render(formatStatsJSON) }

// RenderFlamegraphFolded returns the sampled stacks as folded stacks ("frame;frame;frame weight" per
// line), empty until sampling is configured ({"profiler": {"sample_every": 100}}).
func (l *Library) RenderFlamegraphFolded() ([]byte, error) { return l.render(formatFlamegraphFolded) }

// RenderFlamegraphSVG returns the sampled stacks as an SVG flamegraph.
func (l *Library) RenderFlamegraphSVG() ([]byte, error) { return l.render(formatFlamegraphSVG) }

// ExportState returns a versioned snapshot of everything counted, for [Library.ImportState] of another
// copy of the library (a hot swap; README, "Hot swap").
func (l *Library) ExportState() ([]byte, error) { return l.render(formatStateSnapshot) }

// ImportState adds a snapshot from ExportState of another copy of the library to this one's counts
// (a later snapshot from the same source replaces the earlier one). Nothing changes on error.
func (l *Library) ImportState(snapshot []byte) error {
	var data *C.uint8_t
	if len(snapshot) > 0 {
		data = (*C.uint8_t)(unsafe.Pointer(&snapshot[0]))
	}
	return l.check("cache_monitor_import_state", C.cm_import_state(l.fn.importState, l.fn.lastError, data,
		C.size_t(len(snapshot))))
}

// LastError returns the library's message about the most recent failed call of the OS thread it runs on
// ("" if none failed). The library keeps one message per thread, and a goroutine may move between
// threads between two calls, so this is reliable only under runtime.LockOSThread; the errors of this
// package carry their call's own message already ([Error.Message]).
func (l *Library) LastError() (string, error) {
	return l.text("cache_monitor_last_error", l.fn.lastError)
}

// describe returns cache_monitor_strerror's description of a status.
func (l *Library) describe(status Status) string {
	return C.GoString(C.cm_strerror(l.fn.strerror, C.int32_t(status)))
}

// Serve starts the library's HTTP exporter on addr, an "IP:port" such as "127.0.0.1:9464" ("" means
// that one; port 0 picks a free port, see ServeAddress). It serves /metrics, /hit-rate.json,
// /stats.json and the flamegraphs from one thread of the library's own until StopServing.
// StatusAlreadyServing if it serves already, StatusBindFailed if addr cannot be bound.
func (l *Library) Serve(addr string) error {
	caddr := C.CString(addr)
	defer C.free(unsafe.Pointer(caddr))
	return l.check("cache_monitor_serve", C.cm_serve(l.fn.serve, l.fn.lastError, caddr))
}

// ServeAddress returns the address the exporter listens on, with the real port when 0 was asked for;
// StatusNotServing when it is not running.
func (l *Library) ServeAddress() (string, error) {
	return l.text("cache_monitor_serve_address", l.fn.serveAddress)
}

// StopServing stops the exporter and joins its thread; nil also when it was not serving.
func (l *Library) StopServing() error {
	return l.check("cache_monitor_serve_stop", C.cm_call(l.fn.serveStop, l.fn.lastError))
}

// Shutdown stops everything the library runs on its own (the exporter). Recording and rendering keep
// working afterwards.
func (l *Library) Shutdown() error {
	return l.check("cache_monitor_shutdown", C.cm_call(l.fn.shutdown, l.fn.lastError))
}
