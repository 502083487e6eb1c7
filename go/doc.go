// Package cachemonitor is the Go interface of cache-monitor: it records cache operations (get, put,
// delete, ... with their result, duration and key) into libcache_monitor.so, and renders what was
// counted as Prometheus text or OpenMetrics, JSON reports (rolling hit rates, latency quantiles,
// alerts) and flamegraphs, or serves it all over HTTP.
//
// The library is loaded at run time with dlopen, so a program builds with the standard library and
// cgo alone and needs the .so only when it runs:
//
//	lib, err := cachemonitor.Open("") // $CACHE_MONITOR_LIB, else libcache_monitor.so through the loader
//	if err != nil {
//		log.Fatal(err)
//	}
//	start := time.Now()
//	value, found := cache.Get(key)
//	result := cachemonitor.ResultMiss
//	if found {
//		result = cachemonitor.ResultHit
//	}
//	err = lib.Record(cachemonitor.OperationGet, result, time.Since(start), key)
//	...
//	metrics, err := lib.Render() // or lib.Serve("127.0.0.1:9464") and let Prometheus scrape /metrics
//
// # Batches
//
// Every call from Go into C costs a cgo transition, tens of nanoseconds: more than the library takes to
// record an operation. A [Batch] buffers records and hands each full batch to the library in one call
// (cache_monitor_record_batch), which makes a record a fraction of the cost of [Library.Record]; see
// BENCHMARKS.md, section "Go". Records count once flushed: when the batch is full, on [Batch.Flush] and
// on [Batch.Close]. A [LocalBatch] is the same without the Batch's mutex, for a goroutine that records
// alone.
//
// # Errors
//
// Every failed call returns an [*Error] with the library's status ([Status]) and its message
// (cache_monitor_last_error, which the library keeps per OS thread: the package reads it within the
// failed call's own cgo call, so each error has its own message). Statuses are error values:
// errors.Is(err, cachemonitor.StatusUnknownOperation). Nothing is recorded or changed by a call that
// fails.
//
// # Renders
//
// Every render (Render, RenderOpenMetrics, ..., ExportState) renders once into the library's memory
// (cache_monitor_render_alloc), is copied into a []byte and released: no size query, no retry.
//
// # Concurrency
//
// A [Library] and a [Batch] may be used from any number of goroutines. The library counts per OS thread
// without locks, so goroutines moving between threads, or an operation begun on one and ended on
// another, are counted exactly. A [LocalBatch], like a bufio.Writer, is not safe for concurrent use: one
// goroutine at a time calls it (concurrent calls are a data race, which the race detector reports).
//
// # Building
//
// cgo must be on (CGO_ENABLED=1, a C compiler); the package links only libdl. It needs Go 1.19 or later
// and a library of C ABI 1.6 or a later 1.x ([ABIMajor], [ABIMinor]); cache_monitor.h in this directory
// is a copy of the repository's include/cache_monitor.h (go generate refreshes it).
package cachemonitor

//go:generate cp ../include/cache_monitor.h cache_monitor.h
