package cachemonitor

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// batcher is what Batch and LocalBatch have in common: the tests of the one run on the other too.
type batcher interface {
	Add(op Operation, result Result, d time.Duration, key string) error
	Len() int
	Flush() error
	Close() error
}

// batchTypes makes a Batch or a LocalBatch, which behave the same but for locking.
var batchTypes = []struct {
	name string
	new  func(lib *Library, size int) batcher
}{
	{"Batch", func(lib *Library, size int) batcher { return lib.NewBatch(size) }},
	{"LocalBatch", func(lib *Library, size int) batcher { return lib.NewLocalBatch(size) }},
}

// forEachBatchType runs test as a subtest for each of Batch and LocalBatch.
func forEachBatchType(t *testing.T, test func(t *testing.T, newBatch func(lib *Library, size int) batcher)) {
	for _, bt := range batchTypes {
		bt := bt
		t.Run(bt.name, func(t *testing.T) { test(t, bt.new) })
	}
}

func TestBatchesFromManyGoroutinesCountExactly(t *testing.T) {
	lib := testLibrary(t)
	const goroutines, perGoroutine = 32, 10000
	shared := lib.NewBatch(0)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// Half the goroutines have a batch of their own (flushed every 100 records and at Close),
			// a Batch or a LocalBatch; the other half share one Batch.
			var batch batcher = shared
			if g%2 == 0 {
				batch = batchTypes[g/2%2].new(lib, 100)
				defer func() {
					if err := batch.Close(); err != nil {
						t.Error(err)
					}
				}()
			}
			for i := 0; i < perGoroutine; i++ {
				op, result, ns, key := workload(g, i)
				if err := batch.Add(op, result, time.Duration(ns), key); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err := shared.Close(); err != nil {
		t.Fatal(err)
	}
	want := newTally()
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perGoroutine; i++ {
			op, result, ns, _ := workload(g, i)
			want.add(op, result, ns, 1)
		}
	}
	want.check(t, render(t, lib))
}

func TestBatchFlushesWhenFullOnFlushAndOnClose(t *testing.T) {
	forEachBatchType(t, testBatchFlushesWhenFullOnFlushAndOnClose)
}

func testBatchFlushesWhenFullOnFlushAndOnClose(t *testing.T, newBatch func(*Library, int) batcher) {
	lib := testLibrary(t)
	batch := newBatch(lib, 4)
	count := func() float64 {
		return render(t, lib).value(`cuenv_cache_operations_total{operation="get",result="hit"}`)
	}
	for i := 0; i < 10; i++ {
		if err := batch.Add(OperationGet, ResultHit, time.Microsecond, "user:1"); err != nil {
			t.Fatal(err)
		}
	}
	if got, buffered := count(), batch.Len(); got != 8 || buffered != 2 {
		t.Fatalf("after 10 adds to a batch of 4: %v counted, %d buffered; want 8 and 2", got, buffered)
	}
	if err := batch.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, buffered := count(), batch.Len(); got != 10 || buffered != 0 {
		t.Fatalf("after Flush: %v counted, %d buffered; want 10 and 0", got, buffered)
	}
	if err := batch.Add(OperationGet, ResultHit, time.Microsecond, ""); err != nil {
		t.Fatal(err)
	}
	if err := batch.Close(); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 11 {
		t.Fatalf("after Close: %v counted, want 11", got)
	}
	if err := batch.Add(OperationGet, ResultHit, 0, ""); err != ErrClosed {
		t.Errorf("Add after Close: %v", err)
	}
	if err := batch.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := batch.Flush(); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
}

func TestBatchDropsRefusedRecordsAndRecordsTheOthers(t *testing.T) {
	forEachBatchType(t, testBatchDropsRefusedRecordsAndRecordsTheOthers)
}

func testBatchDropsRefusedRecordsAndRecordsTheOthers(t *testing.T, newBatch func(*Library, int) batcher) {
	lib := testLibrary(t)
	batch := newBatch(lib, 100)
	defer batch.Close()
	adds := []struct {
		op     Operation
		result Result
	}{
		{OperationGet, ResultHit}, {OperationPut, ResultOK}, {99, ResultOK}, {OperationGet, ResultMiss},
		{OperationGet, 17}, {OperationGet, ResultHit}, {OperationLoad, ResultError}, {1000, ResultOK},
	}
	for _, add := range adds {
		if err := batch.Add(add.op, add.result, time.Millisecond, "session:1"); err != nil {
			t.Fatal(err)
		}
	}
	err := batch.Flush()
	var report *BatchError
	if !errors.As(err, &report) {
		t.Fatalf("Flush = %v, want a *BatchError", err)
	}
	if report.Recorded != 5 || report.Dropped != 3 || report.Index != 2 {
		t.Errorf("report %+v, want 5 recorded, 3 dropped, the first at 2", *report)
	}
	if report.First.Status != StatusUnknownOperation || report.First.Message != "unknown operation code 99" {
		t.Errorf("first refusal %+v", *report.First)
	}
	if !errors.Is(err, StatusUnknownOperation) {
		t.Errorf("errors.Is does not see the status of %v", err)
	}
	if !strings.Contains(err.Error(), "5 records recorded, 3 refused") {
		t.Errorf("Error() = %q", err.Error())
	}
	want := newTally()
	for _, add := range adds {
		if add.op < FirstCustomOperation && add.result <= ResultError {
			want.add(add.op, add.result, 1e6, 1)
		}
	}
	e := render(t, lib)
	want.check(t, e)
	if got := e.value(`cuenv_cache_pattern_operations_total{pattern="session:*",result="hit"}`); got != 2 {
		t.Errorf("session:* hits = %v, want 2", got)
	}
}

func TestBatchKeysLongerThanItsArena(t *testing.T) {
	forEachBatchType(t, testBatchKeysLongerThanItsArena)
}

func testBatchKeysLongerThanItsArena(t *testing.T, newBatch func(*Library, int) batcher) {
	lib := testLibrary(t)
	batch := newBatch(lib, 2) // a 4 KiB arena
	long := "user:" + strings.Repeat("x", 10000)
	for i := 0; i < 5; i++ {
		for _, key := range []string{"user:1", long, ""} {
			if err := batch.Add(OperationGet, ResultHit, time.Microsecond, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Close(); err != nil {
		t.Fatal(err)
	}
	e := render(t, lib)
	if got := e.value(`cuenv_cache_pattern_operations_total{pattern="user:*",result="hit"}`); got != 10 {
		t.Errorf("user:* hits = %v, want 10", got)
	}
	if got := e.value(`cuenv_cache_operations_total{operation="get",result="hit"}`); got != 15 {
		t.Errorf("get hits = %v, want 15", got)
	}
}

// A LocalBatch handed from goroutine to goroutine over a channel, as its documentation allows: each
// call happens before the next, so `go test -race` finds no race, and every record counts.
func TestLocalBatchHandedOnOverAChannelCountsExactly(t *testing.T) {
	lib := testLibrary(t)
	const goroutines, perTurn, turns = 8, 300, 5
	batches := make(chan *LocalBatch, 1)
	batches <- lib.NewLocalBatch(64)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for turn := 0; turn < turns; turn++ {
				batch := <-batches
				for i := 0; i < perTurn; i++ {
					op, result, ns, key := workload(g, turn*perTurn+i)
					if err := batch.Add(op, result, time.Duration(ns), key); err != nil {
						t.Error(err)
					}
				}
				batches <- batch
			}
		}(g)
	}
	wg.Wait()
	if err := (<-batches).Close(); err != nil {
		t.Fatal(err)
	}
	want := newTally()
	for g := 0; g < goroutines; g++ {
		for i := 0; i < turns*perTurn; i++ {
			op, result, ns, _ := workload(g, i)
			want.add(op, result, ns, 1)
		}
	}
	want.check(t, render(t, lib))
}

// Adding allocates nothing, with or without a key, the Adds that flush included; nor does a Record.
func TestAddAndRecordAllocateNothing(t *testing.T) {
	lib := testLibrary(t)
	const size = 64
	for _, key := range []string{"", "user:42"} {
		for _, bt := range batchTypes {
			batch := bt.new(lib, size)
			// Each run adds size records: one of them flushes.
			allocs := testing.AllocsPerRun(20, func() {
				for i := 0; i < size; i++ {
					if err := batch.Add(OperationGet, ResultHit, time.Microsecond, key); err != nil {
						t.Fatal(err)
					}
				}
			})
			if allocs != 0 {
				t.Errorf("%s.Add with key %q: %v allocations per %d records, want 0", bt.name, key, allocs, size)
			}
			if err := batch.Close(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := lib.Record(OperationGet, ResultHit, time.Microsecond, key); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Record with key %q: %v allocations, want 0", key, allocs)
		}
	}
}
