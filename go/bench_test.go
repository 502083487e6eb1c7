package cachemonitor

import (
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks compare, in one run, the cost of one record: a Go-native floor (one atomic add),
// Library.Record (one cgo call each), Batch.Add and LocalBatch.Add (one cgo call per 256 records),
// without and with a key. BenchmarkBatchAddVsRecord measures them side by side, interleaved, and splits
// a batched record into the library's share and the package's. go/compare/ runs the same beside
// client_golang's histogram. Ratios: BENCHMARKS.md, "Go".

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

// BenchmarkBatchAddVsRecord records b.N times four ways, interleaved in rounds of 4096 records so that
// all four see the same machine (on shared cores, separate benchmarks a second apart do not):
//
//   - Record: one Library.Record each;
//   - BatchAdd: one Batch.Add each, a Batch of DefaultBatchSize flushing when full;
//   - LocalBatchAdd: the same through a LocalBatch (no mutex);
//   - library: the flush alone of a full batch prepared once, which is the cgo call and
//     cache_monitor_record_batch: the library's share of a batched record. The rest of BatchAdd (or
//     LocalBatchAdd) is the package's, in Go.
//
// It reports each per record and the ratios to Record that BENCHMARKS.md quotes. Its ns/op counts one
// record each way and is not a figure to read.
func BenchmarkBatchAddVsRecord(b *testing.B) {
	b.Run("NoKey", func(b *testing.B) { benchmarkBatchAddVsRecord(b, "") })
	b.Run("WithKey", func(b *testing.B) { benchmarkBatchAddVsRecord(b, "user:42") })
}

func benchmarkBatchAddVsRecord(b *testing.B, key string) {
	const round = 16 * DefaultBatchSize
	lib := testLibrary(b)
	batch := lib.NewBatch(DefaultBatchSize)
	defer batch.Close()
	local := lib.NewLocalBatch(DefaultBatchSize)
	defer local.Close()
	// A full batch of DefaultBatchSize records (one more fits, so Add does not flush it), flushed again
	// and again: a flush leaves the records and their keys' bytes in place, so putting the count back
	// makes it full again.
	prepared := lib.NewLocalBatch(DefaultBatchSize + 1)
	defer prepared.Close()
	for i := 0; i < DefaultBatchSize; i++ {
		if err := prepared.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
			b.Fatal(err)
		}
	}
	legs := []struct {
		name    string
		record  func(n int) int // records at least n times, returns how many
		elapsed time.Duration
		records int
	}{
		{name: "Record", record: func(n int) int {
			for i := 0; i < n; i++ {
				if err := lib.Record(OperationGet, ResultHit, benchDuration, key); err != nil {
					b.Fatal(err)
				}
			}
			return n
		}},
		{name: "BatchAdd", record: func(n int) int {
			for i := 0; i < n; i++ {
				if err := batch.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
					b.Fatal(err)
				}
			}
			return n
		}},
		{name: "LocalBatchAdd", record: func(n int) int {
			for i := 0; i < n; i++ {
				if err := local.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
					b.Fatal(err)
				}
			}
			return n
		}},
		{name: "library", record: func(n int) int {
			flushed := 0
			for ; flushed < n; flushed += DefaultBatchSize {
				prepared.buf.n = DefaultBatchSize
				if err := prepared.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			return flushed
		}},
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := b.N - done
		if n > round {
			n = round
		}
		for i := range legs {
			start := time.Now()
			legs[i].records += legs[i].record(n)
			legs[i].elapsed += time.Since(start)
		}
	}
	b.StopTimer()
	perRecord := make([]float64, len(legs))
	for i, leg := range legs {
		perRecord[i] = float64(leg.elapsed.Nanoseconds()) / float64(leg.records)
		b.ReportMetric(perRecord[i], leg.name+"-ns/record")
	}
	b.ReportMetric(perRecord[1]/perRecord[0], "BatchAdd/Record")
	b.ReportMetric(perRecord[2]/perRecord[0], "LocalBatchAdd/Record")
}

func benchmarkLocalBatch(b *testing.B, key string) {
	lib := testLibrary(b)
	batch := lib.NewLocalBatch(DefaultBatchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := batch.Add(OperationGet, ResultHit, benchDuration, key); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkLocalBatchAdd(b *testing.B)        { benchmarkLocalBatch(b, "") }
func BenchmarkLocalBatchAddWithKey(b *testing.B) { benchmarkLocalBatch(b, "user:42") }
