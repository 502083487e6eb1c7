package cachemonitor

import (
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks compare, in one run, the cost of one record: a Go-native floor (one atomic add),
// Library.Record (one cgo call each) and Batch.Add (one cgo call per 256 records), without and with a
// key. BenchmarkBatchAddVsRecord measures the two side by side, interleaved, and splits a batched record
// into the library's share and the package's. go/compare/ runs the same beside client_golang's
// histogram. Ratios: BENCHMARKS.md, "Go".

// floor is the counter of the floor benchmark.
var floor uint64

func BenchmarkFloorAtomicAdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		atomic.AddUint64(&floor, 1)
	}
}

// benchDuration is the duration every benchmark records: 1.2 µs, a fast cache hit.
const benchDuration = 1200 * time.Nanosecond

func benchmarkRecord(b *testing.B, key string) {
	lib := testLibrary(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := lib.Record(OperationGet, ResultHit, benchDuration, key); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkBatch(b *testing.B, key string) {
	lib := testLibrary(b)
	batch := lib.NewBatch(DefaultBatchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := batch.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Close(); err != nil { // the last, partial, flush is part of the cost
		b.Fatal(err)
	}
}

func BenchmarkRecord(b *testing.B)          { benchmarkRecord(b, "") }
func BenchmarkRecordWithKey(b *testing.B)   { benchmarkRecord(b, "user:42") }
func BenchmarkBatchAdd(b *testing.B)        { benchmarkBatch(b, "") }
func BenchmarkBatchAddWithKey(b *testing.B) { benchmarkBatch(b, "user:42") }

// BenchmarkBatchAddVsRecord records b.N times three ways, interleaved in rounds of 4096 records so that
// all three see the same machine (on shared cores, separate benchmarks a second apart do not):
//
//   - Record: one Library.Record each;
//   - BatchAdd: one Batch.Add each, a Batch of DefaultBatchSize flushing when full;
//   - library: the flush alone of a full Batch prepared once, which is the cgo call and
//     cache_monitor_record_batch: the library's share of a batched record.
//
// It reports each per record, the package's share of a batched record (Go = BatchAdd - library) and the
// ratio BatchAdd/Record that BENCHMARKS.md quotes. Its ns/op counts one record each way and is not a
// figure to read.
func BenchmarkBatchAddVsRecord(b *testing.B) {
	b.Run("NoKey", func(b *testing.B) { benchmarkBatchAddVsRecord(b, "") })
	b.Run("WithKey", func(b *testing.B) { benchmarkBatchAddVsRecord(b, "user:42") })
}

func benchmarkBatchAddVsRecord(b *testing.B, key string) {
	const round = 16 * DefaultBatchSize
	lib := testLibrary(b)
	batch := lib.NewBatch(DefaultBatchSize)
	defer batch.Close()
	// A full batch of DefaultBatchSize records (one more fits, so Add does not flush it), flushed again
	// and again: a flush leaves the records and their keys' bytes in place, so putting the count back
	// makes it full again.
	prepared := lib.NewBatch(DefaultBatchSize + 1)
	defer prepared.Close()
	for i := 0; i < DefaultBatchSize; i++ {
		if err := prepared.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
			b.Fatal(err)
		}
	}
	refill := prepared.Len()
	var single, batched, library time.Duration
	flushed := 0
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := b.N - done
		if n > round {
			n = round
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := lib.Record(OperationGet, ResultHit, benchDuration, key); err != nil {
				b.Fatal(err)
			}
		}
		single += time.Since(start)
		start = time.Now()
		for i := 0; i < n; i++ {
			if err := batch.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
				b.Fatal(err)
			}
		}
		batched += time.Since(start)
		start = time.Now()
		for i := 0; i < n; i += refill {
			prepared.mu.Lock()
			prepared.n = refill
			err := prepared.flushLocked()
			prepared.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
		library += time.Since(start)
		flushed += (n + refill - 1) / refill * refill
	}
	b.StopTimer()
	perRecord := func(d time.Duration, records int) float64 { return float64(d.Nanoseconds()) / float64(records) }
	b.ReportMetric(perRecord(single, b.N), "Record-ns/record")
	b.ReportMetric(perRecord(batched, b.N), "BatchAdd-ns/record")
	b.ReportMetric(perRecord(library, flushed), "library-ns/record")
	b.ReportMetric(perRecord(batched, b.N)-perRecord(library, flushed), "Go-ns/record")
	b.ReportMetric(float64(batched)/float64(single), "BatchAdd/Record")
}
