package cachemonitor

// #include "cache_monitor.h"
import "C"

import "strconv"

// Operation is an operation code: one of the built-in operations below, or a custom operation
// registered through [Library.Configure] (`{"operations": ["compact"]}` makes "compact" code
// [FirstCustomOperation], the next name the code after it, and so on).
type Operation uint32

// The built-in operations (CACHE_MONITOR_OPERATION_* in cache_monitor.h).
const (
	OperationGet      Operation = 0 // a lookup; result hit or miss
	OperationPut      Operation = 1 // an insert or update
	OperationDelete   Operation = 2 // removal of one key
	OperationContains Operation = 3 // a presence check; result hit or miss
	OperationClear    Operation = 4 // removal of every key
	OperationEvict    Operation = 5 // removal decided by the cache
	OperationLoad     Operation = 6 // a fill from the backing store
	// FirstCustomOperation is the code of the first custom operation registered with Configure.
	FirstCustomOperation Operation = 7
)

var operationNames = [...]string{"get", "put", "delete", "contains", "clear", "evict", "load"}

// String returns the name the metrics use for a built-in operation ("get"), and "operation(N)" for
// other codes (custom names live in the library's configuration).
func (op Operation) String() string {
	if int(op) < len(operationNames) {
		return operationNames[op]
	}
	return "operation(" + strconv.FormatUint(uint64(op), 10) + ")"
}

// Result is the outcome of an operation (CacheMonitorOutcome, CACHE_MONITOR_OUTCOME_* in cache_monitor.h;
// its own type, so it cannot be mistaken for a [Status]).
type Result uint32

// The results.
const (
	ResultHit   Result = 0 // the key was found
	ResultMiss  Result = 1 // the key was not found
	ResultOK    Result = 2 // success without hit or miss
	ResultError Result = 3 // the operation failed
)

var resultNames = [...]string{"hit", "miss", "ok", "error"}

// String returns the name the metrics use ("hit", "miss", "ok", "error"), and "result(N)" for an
// unknown code.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "result(" + strconv.FormatUint(uint64(r), 10) + ")"
}

// Gauge is a gauge the host owns and sets with [Library.SetGauge] (CACHE_MONITOR_GAUGE_* in
// cache_monitor.h).
type Gauge uint32

// The gauges.
const (
	GaugeSizeBytes Gauge = 0 // bytes held by the cache
	GaugeEntries   Gauge = 1 // entries held by the cache
)

// Compile-time proof that the constants of this package are the header's: each index is 0 when the
// two agree, and any other value (or an overflow) fails the build.
var (
	_ = [1]struct{}{}[OperationGet-C.CACHE_MONITOR_OPERATION_GET]
	_ = [1]struct{}{}[OperationPut-C.CACHE_MONITOR_OPERATION_PUT]
	_ = [1]struct{}{}[OperationDelete-C.CACHE_MONITOR_OPERATION_DELETE]
	_ = [1]struct{}{}[OperationContains-C.CACHE_MONITOR_OPERATION_CONTAINS]
	_ = [1]struct{}{}[OperationClear-C.CACHE_MONITOR_OPERATION_CLEAR]
	_ = [1]struct{}{}[OperationEvict-C.CACHE_MONITOR_OPERATION_EVICT]
	_ = [1]struct{}{}[OperationLoad-C.CACHE_MONITOR_OPERATION_LOAD]
	_ = [1]struct{}{}[FirstCustomOperation-C.CACHE_MONITOR_OPERATION_FIRST_CUSTOM]
	_ = [1]struct{}{}[ResultHit-C.CACHE_MONITOR_OUTCOME_HIT]
	_ = [1]struct{}{}[ResultMiss-C.CACHE_MONITOR_OUTCOME_MISS]
	_ = [1]struct{}{}[ResultOK-C.CACHE_MONITOR_OUTCOME_OK]
	_ = [1]struct{}{}[ResultError-C.CACHE_MONITOR_OUTCOME_ERROR]
	_ = [1]struct{}{}[GaugeSizeBytes-C.CACHE_MONITOR_GAUGE_SIZE_BYTES]
	_ = [1]struct{}{}[GaugeEntries-C.CACHE_MONITOR_GAUGE_ENTRIES]
	_ = [1]struct{}{}[ABIMajor-C.CACHE_MONITOR_ABI_VERSION_MAJOR]
	_ = [1]struct{}{}[ABIMinor-C.CACHE_MONITOR_ABI_VERSION_MINOR]
	_ = [1]struct{}{}[StatusOK-C.CACHE_MONITOR_STATUS_OK]
	_ = [1]struct{}{}[StatusNullPointer-C.CACHE_MONITOR_STATUS_NULL_POINTER]
	_ = [1]struct{}{}[StatusUnknownOperation-C.CACHE_MONITOR_STATUS_UNKNOWN_OPERATION]
	_ = [1]struct{}{}[StatusUnknownResult-C.CACHE_MONITOR_STATUS_UNKNOWN_RESULT]
	_ = [1]struct{}{}[StatusInvalidLength-C.CACHE_MONITOR_STATUS_INVALID_LENGTH]
	_ = [1]struct{}{}[StatusInvalidUTF8-C.CACHE_MONITOR_STATUS_INVALID_UTF8]
	_ = [1]struct{}{}[StatusInvalidJSON-C.CACHE_MONITOR_STATUS_INVALID_JSON]
	_ = [1]struct{}{}[StatusInvalidConfig-C.CACHE_MONITOR_STATUS_INVALID_CONFIG]
	_ = [1]struct{}{}[StatusBufferTooSmall-C.CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL]
	_ = [1]struct{}{}[StatusUnknownGauge-C.CACHE_MONITOR_STATUS_UNKNOWN_GAUGE]
	_ = [1]struct{}{}[StatusBusy-C.CACHE_MONITOR_STATUS_BUSY]
	_ = [1]struct{}{}[StatusInternal-C.CACHE_MONITOR_STATUS_INTERNAL]
	_ = [1]struct{}{}[StatusInvalidSnapshot-C.CACHE_MONITOR_STATUS_INVALID_SNAPSHOT]
	_ = [1]struct{}{}[StatusForeignSnapshot-C.CACHE_MONITOR_STATUS_FOREIGN_SNAPSHOT]
	_ = [1]struct{}{}[StatusInvalidAddress-C.CACHE_MONITOR_STATUS_INVALID_ADDRESS]
	_ = [1]struct{}{}[StatusAlreadyServing-C.CACHE_MONITOR_STATUS_ALREADY_SERVING]
	_ = [1]struct{}{}[StatusBindFailed-C.CACHE_MONITOR_STATUS_BIND_FAILED]
	_ = [1]struct{}{}[StatusNotServing-C.CACHE_MONITOR_STATUS_NOT_SERVING]
	_ = [1]struct{}{}[StatusServeFailed-C.CACHE_MONITOR_STATUS_SERVE_FAILED]
	_ = [1]struct{}{}[StatusExporterNotBuilt-C.CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT]
	_ = [1]struct{}{}[StatusStateFile-C.CACHE_MONITOR_STATUS_STATE_FILE]
	_ = [1]struct{}{}[StatusRenderFailed-C.CACHE_MONITOR_STATUS_RENDER_FAILED]
	_ = [1]struct{}{}[StatusBucketsLocked-C.CACHE_MONITOR_STATUS_BUCKETS_LOCKED]
	_ = [1]struct{}{}[StatusTooManyImportSources-C.CACHE_MONITOR_STATUS_TOO_MANY_IMPORT_SOURCES]
	_ = [1]struct{}{}[StatusIncompatibleSnapshot-C.CACHE_MONITOR_STATUS_INCOMPATIBLE_SNAPSHOT]
	_ = [1]struct{}{}[StatusUnknownFormat-C.CACHE_MONITOR_STATUS_UNKNOWN_FORMAT]
	_ = [1]struct{}{}[StatusInvalidExemplar-C.CACHE_MONITOR_STATUS_INVALID_EXEMPLAR]
	_ = [1]struct{}{}[len(statusText)-1+int(StatusInvalidExemplar)] // every status has its text
)
