package cachemonitor

import (
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks compare, in one run, the cost of one record: a Go-native floor (one atomic add),
// Library.Record (one cgo call each) and Batch.Add (one cgo call per 256 records), without and with a
// key. go/compare/ runs the same beside client_golang's histogram. Ratios: BENCHMARKS.md, "Go".

// floor is the counter of the floor benchmark.
var floor uint64

func BenchmarkFloorAtomicAdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		atomic.AddUint64(&floor, 1)
	}
}

func benchmarkRecord(b *testing.B, key string) {
	lib := testLibrary(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := lib.Record(OperationGet, ResultHit, 1200*time.Nanosecond, key); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkBatch(b *testing.B, key string) {
	lib := testLibrary(b)
	batch := lib.NewBatch(DefaultBatchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := batch.Add(OperationGet, ResultHit, 1200*time.Nanosecond, key); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRecord(b *testing.B)          { benchmarkRecord(b, "") }
func BenchmarkRecordWithKey(b *testing.B)   { benchmarkRecord(b, "user:42") }
func BenchmarkBatchAdd(b *testing.B)        { benchmarkBatch(b, "") }
func BenchmarkBatchAddWithKey(b *testing.B) { benchmarkBatch(b, "user:42") }
