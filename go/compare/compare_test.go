package compare

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	cachemonitor "github.com/cache-monitor/cache-monitor/go"
	"github.com/prometheus/client_golang/prometheus"
)

// The peers of one record, measured in one run: the floor (one atomic add), client_golang's histogram
// (Observe on a labelled child bound once, and through WithLabelValues as most code calls it), and
// cachemonitor's Record (one cgo call), Batch.Add and LocalBatch.Add (one cgo call per 256 records),
// without and with a key.

var floor uint64

func BenchmarkFloorAtomicAdd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		atomic.AddUint64(&floor, 1)
	}
}

func newHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cache_operation_duration_seconds",
		Help:    "Duration of cache operations.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 2.5, 16),
	}, []string{"operation", "result"})
}

func BenchmarkClientGolangHistogramObserve(b *testing.B) {
	observer := newHistogram().WithLabelValues("get", "hit")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		observer.Observe(1.2e-6)
	}
}

func BenchmarkClientGolangHistogramWithLabelValues(b *testing.B) {
	histogram := newHistogram()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		histogram.WithLabelValues("get", "hit").Observe(1.2e-6)
	}
}

func open(b *testing.B) *cachemonitor.Library {
	lib, err := cachemonitor.Open(os.Getenv(cachemonitor.LibraryEnv))
	if err != nil {
		b.Fatalf("%v (set %s to libcache_monitor.so)", err, cachemonitor.LibraryEnv)
	}
	if err := lib.Reset(); err != nil {
		b.Fatal(err)
	}
	return lib
}

func benchmarkRecord(b *testing.B, key string) {
	lib := open(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := lib.Record(cachemonitor.OperationGet, cachemonitor.ResultHit, 1200*time.Nanosecond, key); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkBatch(b *testing.B, key string) {
	batch := open(b).NewBatch(cachemonitor.DefaultBatchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := batch.Add(cachemonitor.OperationGet, cachemonitor.ResultHit, 1200*time.Nanosecond, key); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchmarkLocalBatch(b *testing.B, key string) {
	batch := open(b).NewLocalBatch(cachemonitor.DefaultBatchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := batch.Add(cachemonitor.OperationGet, cachemonitor.ResultHit, 1200*time.Nanosecond, key); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRecord(b *testing.B)               { benchmarkRecord(b, "") }
func BenchmarkRecordWithKey(b *testing.B)        { benchmarkRecord(b, "user:42") }
func BenchmarkBatchAdd(b *testing.B)             { benchmarkBatch(b, "") }
func BenchmarkBatchAddWithKey(b *testing.B)      { benchmarkBatch(b, "user:42") }
func BenchmarkLocalBatchAdd(b *testing.B)        { benchmarkLocalBatch(b, "") }
func BenchmarkLocalBatchAddWithKey(b *testing.B) { benchmarkLocalBatch(b, "user:42") }
