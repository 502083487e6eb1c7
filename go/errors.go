package cachemonitor

import (
	"errors"
	"fmt"
	"strconv"
)

// Status is a status code of the C ABI (CacheMonitorStatus in cache_monitor.h): [StatusOK] (0) or a
// negative error code. Every status is also an error value, so that
//
//	errors.Is(err, cachemonitor.StatusUnknownOperation)
//
// tells why a call failed, whatever wraps the status ([*Error], [*BatchError]).
type Status int32

// The statuses, as cache_monitor.h numbers them.
const (
	StatusOK               Status = 0   // success
	StatusNullPointer      Status = -1  // a required pointer argument was NULL
	StatusUnknownOperation Status = -2  // neither built in nor registered through "operations"
	StatusUnknownResult    Status = -3  // not one of the Result constants
	StatusInvalidLength    Status = -4  // an impossible length
	StatusInvalidUTF8      Status = -5  // a string argument is not valid UTF-8
	StatusInvalidJSON      Status = -6  // the configuration text is not a JSON object
	StatusInvalidConfig    Status = -7  // unknown configuration key or bad value; nothing changed
	StatusBufferTooSmall   Status = -8  // a render buffer is too small (the package retries itself)
	StatusUnknownGauge     Status = -9  // not one of the Gauge constants
	StatusBusy             Status = -10 // not possible in the monitor's current state
	StatusInternal         Status = -11 // an internal error caught at the C boundary
	StatusInvalidSnapshot  Status = -12 // malformed state snapshot; nothing imported
	StatusForeignSnapshot  Status = -13 // state snapshot of another format or version
	StatusInvalidAddress   Status = -14 // the listen address is not IP:port
	StatusAlreadyServing   Status = -15 // the exporter is already serving
	StatusBindFailed       Status = -16 // the listen address cannot be bound
	StatusNotServing       Status = -17 // the exporter is not serving
	StatusServeFailed      Status = -18 // the exporter could not start its thread
	// StatusExporterNotBuilt: the library was built without the HTTP exporter (C ABI 1.5).
	StatusExporterNotBuilt Status = -19
	// StatusStateFile: a state file cannot be attached or used; the message names it (1.6).
	StatusStateFile Status = -20
	// StatusRenderFailed: a render failed, such as the SVG flamegraph's drawing (1.6; StatusInternal before).
	StatusRenderFailed Status = -21
	// StatusBucketsLocked: histogram buckets change only before the first record or after a reset (1.6;
	// StatusBusy before).
	StatusBucketsLocked Status = -22
	// StatusTooManyImportSources: state from the most other library copies is imported already; reset
	// first (1.6; StatusBusy before).
	StatusTooManyImportSources Status = -23
	// StatusIncompatibleSnapshot: a snapshot whose configuration cannot be merged (1.6; StatusBusy before).
	StatusIncompatibleSnapshot Status = -24
	// StatusUnknownFormat: a render format code that is not one (1.6; the package never passes one).
	StatusUnknownFormat Status = -25
	// StatusInvalidExemplar: an exemplar's label set is refused (a bad or repeated name, more than 128
	// characters, a line that is not name=value); nothing was recorded (1.6).
	StatusInvalidExemplar Status = -26
)

// statusText mirrors cache_monitor_strerror, indexed by -status (a test compares the two).
var statusText = [...]string{
	"success",
	"a required pointer argument was NULL",
	"unknown operation code",
	"unknown result code",
	"impossible length",
	"string is not valid UTF-8",
	"configuration is not a JSON object",
	"unknown configuration key or bad value; configuration unchanged",
	"buffer too small; needed size written to *len",
	"unknown gauge code",
	"not possible in the monitor's current state",
	"internal error caught at the C boundary",
	"malformed state snapshot; nothing imported",
	"state snapshot of another format or version; nothing imported",
	"listen address is not IP:port",
	"the exporter is already serving",
	"cannot bind the listen address",
	"the exporter is not serving",
	"the exporter could not start its thread",
	"the library was built without the HTTP exporter",
	"the state file cannot be used; nothing changed (see cache_monitor_last_error)",
	"the render failed; nothing written",
	"histogram buckets can change only before the first record or after a reset",
	"too many import sources; reset first",
	"state snapshot with an incompatible configuration; nothing imported",
	"unknown render format code",
	"invalid exemplar label set; nothing recorded",
}

// String returns the status's description, as cache_monitor_strerror gives it.
func (s Status) String() string {
	if s <= 0 && int(-s) < len(statusText) {
		return statusText[-s]
	}
	return "unknown status code " + strconv.Itoa(int(s))
}

// Error returns the description with the package's prefix, so a bare Status reads as an error.
func (s Status) Error() string { return "cachemonitor: " + s.String() }

// Error is a failed call into the library: the C function, its status and the library's message for it
// (cache_monitor_last_error, read on the same OS thread within the same cgo call, so it is this call's
// own message even when other goroutines fail at the same moment). errors.Is(err, status) matches its
// Status.
type Error struct {
	Func    string // the C function that failed, such as "cache_monitor_record"
	Status  Status // what it returned
	Message string // what the library said about it
}

// Error returns "cachemonitor: <function>: <message> (status <code>)".
func (e *Error) Error() string {
	return fmt.Sprintf("cachemonitor: %s: %s (status %d)", e.Func, e.Message, int32(e.Status))
}

// Unwrap returns the Status, for errors.Is.
func (e *Error) Unwrap() error { return e.Status }

// BatchError reports the records a flush of a [Batch] could not record. A refused record (an unknown
// operation or result code) is dropped and the flush goes on with the records after it, so Recorded +
// Dropped is the number of records the flush had. errors.Is matches the first refusal's Status.
type BatchError struct {
	Recorded int    // records of the flush that were recorded
	Dropped  int    // records of the flush that were refused, hence not recorded
	Index    int    // position of the first refused record in the flush, counting from 0
	First    *Error // why the first refused record was refused
}

// Error returns a summary naming the first refusal.
func (e *BatchError) Error() string {
	return fmt.Sprintf("cachemonitor: batch: %d records recorded, %d refused (the first, record %d: %s)",
		e.Recorded, e.Dropped, e.Index, e.First.Message)
}

// Unwrap returns the first refusal, so errors.Is and errors.As see its [*Error] and [Status].
func (e *BatchError) Unwrap() error { return e.First }

// ErrIncompatibleABI is returned by [Open] when the library's ABI has another major version than
// [ABIMajor], or an older minor version than [ABIMinor].
var ErrIncompatibleABI = errors.New("cachemonitor: incompatible library ABI")

// ErrClosed is returned by [Batch.Add] after [Batch.Close].
var ErrClosed = errors.New("cachemonitor: batch is closed")
