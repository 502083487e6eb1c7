package cachemonitor_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	cachemonitor "github.com/cache-monitor/cache-monitor/go"
)

// printSeries prints the lines of a Prometheus text render that start with prefix.
func printSeries(text []byte, prefix string) {
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, prefix) {
			fmt.Println(line)
		}
	}
}

// Load the library, record a few operations and render them as Prometheus text.
func Example() {
	lib, err := cachemonitor.Open("") // $CACHE_MONITOR_LIB, else libcache_monitor.so
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Reset(); err != nil { // the monitor is process-wide: start this example from zero
		log.Fatal(err)
	}
	for _, key := range []string{"user:42", "user:43", "session:7"} {
		start := time.Now()
		// ... look key up in the cache ...
		result := cachemonitor.ResultHit
		if key == "user:43" {
			result = cachemonitor.ResultMiss
		}
		if err := lib.Record(cachemonitor.OperationGet, result, time.Since(start), key); err != nil {
			log.Fatal(err)
		}
	}
	text, err := lib.Render()
	if err != nil {
		log.Fatal(err)
	}
	printSeries(text, "cuenv_cache_operations_total")
	printSeries(text, "cuenv_cache_pattern_operations_total")
	// Output:
	// cuenv_cache_operations_total{operation="get",result="hit"} 2
	// cuenv_cache_operations_total{operation="get",result="miss"} 1
	// cuenv_cache_pattern_operations_total{pattern="session:*",result="hit"} 1
	// cuenv_cache_pattern_operations_total{pattern="user:*",result="hit"} 1
	// cuenv_cache_pattern_operations_total{pattern="user:*",result="miss"} 1
}

// A Batch records many operations with one cgo call per flush.
func ExampleBatch() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Reset(); err != nil {
		log.Fatal(err)
	}
	batch := lib.NewBatch(256) // flushed every 256 records
	for i := 0; i < 1000; i++ {
		if err := batch.Add(cachemonitor.OperationPut, cachemonitor.ResultOK, 3*time.Microsecond, "user:1"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("buffered:", batch.Len()) // 3 flushes of 256 so far
	if err := batch.Close(); err != nil { // flushes the rest
		log.Fatal(err)
	}
	text, err := lib.Render()
	if err != nil {
		log.Fatal(err)
	}
	printSeries(text, "cuenv_cache_operations_total")
	// Output:
	// buffered: 232
	// cuenv_cache_operations_total{operation="put",result="ok"} 1000
}

// Workers that record alone each use a LocalBatch of their own: the Batch without its mutex.
func ExampleLocalBatch() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Reset(); err != nil {
		log.Fatal(err)
	}
	jobs := make(chan string)
	var workers sync.WaitGroup
	for w := 0; w < 4; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			batch := lib.NewLocalBatch(0) // this goroutine's alone
			defer batch.Close()           // flushes the rest when the jobs run out
			for key := range jobs {
				start := time.Now()
				// ... load key into the cache ...
				if err := batch.Add(cachemonitor.OperationLoad, cachemonitor.ResultOK, time.Since(start), key); err != nil {
					log.Print(err)
				}
			}
		}()
	}
	for i := 0; i < 1000; i++ {
		jobs <- fmt.Sprintf("user:%d", i)
	}
	close(jobs)
	workers.Wait()
	text, err := lib.Render()
	if err != nil {
		log.Fatal(err)
	}
	printSeries(text, "cuenv_cache_operations_total")
	// Output:
	// cuenv_cache_operations_total{operation="load",result="ok"} 1000
}

// Failed calls return an *Error carrying the status and the library's message.
func ExampleError() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	err = lib.Record(99, cachemonitor.ResultHit, time.Millisecond, "")
	fmt.Println(errors.Is(err, cachemonitor.StatusUnknownOperation))
	var e *cachemonitor.Error
	if errors.As(err, &e) {
		fmt.Printf("%s returned %d: %s\n", e.Func, e.Status, e.Message)
	}
	// Output:
	// true
	// cache_monitor_record returned -2: unknown operation code 99
}

// Start and Finish time an operation and count it as in flight meanwhile.
func ExampleLibrary_Start() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Reset(); err != nil {
		log.Fatal(err)
	}
	load, err := lib.Start(cachemonitor.OperationLoad)
	if err != nil {
		log.Fatal(err)
	}
	text, _ := lib.Render()
	printSeries(text, `cuenv_cache_stats{metric="operations_in_flight"}`)
	// ... fill the cache from the backing store ...
	if err := load.Finish(cachemonitor.ResultOK, "user:42"); err != nil {
		log.Fatal(err)
	}
	text, _ = lib.Render()
	printSeries(text, `cuenv_cache_stats{metric="operations_in_flight"}`)
	printSeries(text, "cuenv_cache_operations_total")
	// Output:
	// cuenv_cache_stats{metric="operations_in_flight"} 1
	// cuenv_cache_stats{metric="operations_in_flight"} 0
	// cuenv_cache_operations_total{operation="load",result="ok"} 1
}

// Custom operations get codes from FirstCustomOperation on, in the order configured.
func ExampleLibrary_Configure() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Reset(); err != nil {
		log.Fatal(err)
	}
	if err := lib.Configure(`{"operations": ["compact"]}`); err != nil {
		log.Fatal(err)
	}
	compact := cachemonitor.FirstCustomOperation
	if err := lib.Record(compact, cachemonitor.ResultOK, 40*time.Millisecond, ""); err != nil {
		log.Fatal(err)
	}
	text, _ := lib.Render()
	printSeries(text, "cuenv_cache_operations_total")
	// Output:
	// cuenv_cache_operations_total{operation="compact",result="ok"} 1
}
