// Command gohost is a Go host of libcache_monitor.so through the cachemonitor package (go/ in this
// repository, which loads the library with dlopen): it records from many goroutines, which the Go
// scheduler moves between OS threads at will, renders (each rendered once, cache_monitor_render_alloc),
// and checks that every count is exact. Records take every path the package has: Record, Begin and
// Finish, Batch (one batch per
// goroutine, flushed when full and at Close), and RecordWithFrames, carrying a logical Go call site
// (Go stacks cannot be unwound from C) that the sampled flamegraph must show. It exits non-zero on any
// mismatch.
//
// Usage: gohost <path to libcache_monitor.so>
//
// Standard library and the cachemonitor package only; `tests/go_host.rs` builds and runs it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cachemonitor "github.com/cache-monitor/cache-monitor/go"
)

const (
	goroutines  = 64
	perRoutine  = 100000
	operations  = 7
	results     = 4
	beginEndGap = 1000 // every 1000th record goes through Begin/Finish
	framesEvery = 5    // every 5th record carries its Go call site
	batchEvery  = 7    // every 7th record goes through the goroutine's Batch
	batchSize   = 64
	goCallSite  = "main.main;main.worker;cache.(*Cache).Get"
)

var keys = [4]string{"user:42", "session:7f3a", "path/a/b.json", "plain"}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gohost: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

// nthRecord is the workload, a pure function of (goroutine, i), so main can count what was recorded.
func nthRecord(g, i int) (op cachemonitor.Operation, result cachemonitor.Result, d time.Duration) {
	op = cachemonitor.Operation((g + i) % operations)
	switch op {
	case cachemonitor.OperationGet, cachemonitor.OperationContains:
		result = cachemonitor.ResultHit
		if i%4 == 0 {
			result = cachemonitor.ResultMiss
		}
	case cachemonitor.OperationLoad:
		result = cachemonitor.ResultOK
		if i%10 == 0 {
			result = cachemonitor.ResultError
		}
	default:
		result = cachemonitor.ResultOK
		if i%97 == 0 {
			result = cachemonitor.ResultError
		}
	}
	d = time.Duration(i%5000)*997 + 100
	return
}

// worker records goroutine g's share of the workload through every path of the package.
func worker(lib *cachemonitor.Library, g int) {
	batch := lib.NewBatch(batchSize)
	for i := 0; i < perRoutine; i++ {
		op, result, d := nthRecord(g, i)
		key := keys[i%4]
		switch {
		case i%beginEndGap == 0:
			check(lib.Begin(op))
			check(lib.Finish(op, result, d, key))
		case i%framesEvery == 1:
			check(lib.RecordWithFrames(op, result, d, key, goCallSite))
		case i%batchEvery == 2:
			check(batch.Add(op, result, d, key))
		case i%3 == 0:
			check(lib.Record(op, result, d, ""))
		default:
			check(lib.Record(op, result, d, key))
		}
	}
	check(batch.Close())
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
	lib, err := cachemonitor.Open(os.Args[1]) // checks the ABI version
	check(err)
	check(lib.Reset())
	check(lib.Configure(`{"profiler": {"sample_every": 100}}`))

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			worker(lib, g)
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

	rendered, err := lib.Render()
	check(err)
	text := string(rendered)
	var total uint64
	for op := cachemonitor.Operation(0); op < operations; op++ {
		for result := cachemonitor.Result(0); result < results; result++ {
			labels := fmt.Sprintf(`operation="%s",result="%s"`, op, result)
			want := float64(expected[op][result])
			if want == 0 {
				want = -1 // a series appears at its first record
			}
			for _, series := range []string{
				"cuenv_cache_operations_total{" + labels + "}",
				"cuenv_cache_operation_duration_seconds_count{" + labels + "}",
				"cuenv_cache_operation_duration_seconds_bucket{" + labels + `,le="+Inf"}`,
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
	folded, err := lib.RenderFlamegraphFolded()
	check(err)
	withCallSite := 0
	for _, line := range strings.Split(string(folded), "\n") {
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
