// Command statewriter is a Go host whose counts outlive it: the library attaches the state file that
// CACHE_MONITOR_STATE names, and 8 goroutines record RECORDS operations under the key pattern `go:`
// through the cachemonitor package, then the program exits.
//
// Usage: statewriter LIBRARY RECORDS
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	cachemonitor "github.com/cache-monitor/cache-monitor/go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: statewriter LIBRARY RECORDS")
		os.Exit(2)
	}
	records, err := strconv.Atoi(os.Args[2])
	if err != nil || records%8 != 0 {
		fmt.Fprintln(os.Stderr, "statewriter: RECORDS must be a multiple of 8")
		os.Exit(2)
	}
	library, err := cachemonitor.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "statewriter:", err)
		os.Exit(1)
	}
	var failed sync.Once
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < records/8; i++ {
				key := "go:" + strconv.Itoa(g) + ":" + strconv.Itoa(i)
				if err := library.Record(cachemonitor.OperationGet, cachemonitor.ResultHit, time.Microsecond, key); err != nil {
					failed.Do(func() { fmt.Fprintln(os.Stderr, "statewriter:", err) })
					os.Exit(1)
				}
			}
		}(g)
	}
	wg.Wait()
	fmt.Println("recorded", records)
}
