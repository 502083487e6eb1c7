package cachemonitor

/*
#include "trampolines.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// DefaultBatchSize is the number of records a [Batch] buffers when [Library.NewBatch] is given 0.
const DefaultBatchSize = 256

// recordSize is sizeof(CacheMonitorRecord): 32 bytes on 64-bit targets.
const recordSize = C.sizeof_CacheMonitorRecord

// Batch buffers records and hands them to the library in one call, cache_monitor_record_batch, when it
// is full, on Flush and on Close. A cgo call costs more than the library takes to record, so a batched
// record costs a fraction of [Library.Record] (BENCHMARKS.md, "Go"); the price is that records count
// only once flushed.
//
// A Batch may be shared by goroutines (a mutex guards it), but one Batch per goroutine, or per worker,
// avoids contending for it. Close it when done: records still buffered when a Batch is dropped
// unclosed are lost.
//
// # Memory and cgo's pointer rules
//
// Go memory passed to C must not contain Go pointers, and an array of CacheMonitorRecord holds a key
// pointer per record. So both the records and the bytes of their keys live in C memory (malloc), owned
// by the Batch: Add copies the key into a key arena and points the record at the copy. Nothing in Go
// memory is passed to C, nothing allocates per record, and C memory is freed by Close (or, for a Batch
// dropped unclosed, by a finalizer). A key longer than the arena's free space flushes first; one longer
// than the whole arena grows it.
type Batch struct {
	lib      *Library
	mu       sync.Mutex
	records  []C.CacheMonitorRecord // C memory
	arena    []byte                 // C memory: the bytes of the buffered records' keys
	recorded *C.size_t              // C memory: the count cache_monitor_record_batch reports
	n        int                    // records buffered
	used     int                    // arena bytes used
	closed   bool
}

// NewBatch returns a Batch that flushes every size records (size <= 0: [DefaultBatchSize]).
func (l *Library) NewBatch(size int) *Batch {
	if size <= 0 {
		size = DefaultBatchSize
	}
	b := &Batch{lib: l}
	b.records = unsafe.Slice((*C.CacheMonitorRecord)(C.malloc(C.size_t(size)*recordSize)), size)
	b.arena = cBytes(size * 32)
	b.recorded = (*C.size_t)(C.malloc(C.sizeof_size_t))
	runtime.SetFinalizer(b, (*Batch).free)
	return b
}

// cBytes allocates n bytes (at least 4 KiB) of C memory, as a Go slice over it.
func cBytes(n int) []byte {
	if n < 4096 {
		n = 4096
	}
	return unsafe.Slice((*byte)(C.malloc(C.size_t(n))), n)
}

// free releases the C memory; the Batch is unusable afterwards.
func (b *Batch) free() {
	C.free(unsafe.Pointer(&b.records[0]))
	C.free(unsafe.Pointer(&b.arena[0]))
	C.free(unsafe.Pointer(b.recorded))
	b.records, b.arena, b.recorded = nil, nil, nil
}

// Add buffers one record (the arguments of [Library.Record]) and flushes the batch when it becomes
// full. It returns [ErrClosed] after Close, and otherwise the error of the flush it triggered, if any:
// a [*BatchError] about records added earlier (or this one) that the library refused.
func (b *Batch) Add(op Operation, result Result, d time.Duration, key string) error {
	b.mu.Lock()
	// The common case, inline and without defer: room for the record and its key, and more after it.
	if n := b.n; n+1 < len(b.records) && len(key) <= len(b.arena)-b.used && !b.closed {
		b.put(n, op, result, d, key)
		b.n = n + 1
		b.mu.Unlock()
		return nil
	}
	err := b.addSlow(op, result, d, key)
	b.mu.Unlock()
	return err
}

// put writes record n, copying its key into the arena (which has room for it).
func (b *Batch) put(n int, op Operation, result Result, d time.Duration, key string) {
	r := &b.records[n]
	r.operation = C.uint32_t(op)
	r.result = C.uint32_t(result)
	r.duration_ns = nanoseconds(d)
	r.key_len = C.size_t(len(key))
	r.key = nil
	if len(key) > 0 {
		copy(b.arena[b.used:], key)
		r.key = (*C.uint8_t)(unsafe.Pointer(&b.arena[b.used]))
		b.used += len(key)
	}
}

// addSlow is Add when the batch is closed, its arena lacks room for key, or the record fills it.
func (b *Batch) addSlow(op Operation, result Result, d time.Duration, key string) error {
	if b.closed {
		return ErrClosed
	}
	var err error
	if len(key) > len(b.arena)-b.used {
		err = b.flushLocked()
		if len(key) > len(b.arena) {
			C.free(unsafe.Pointer(&b.arena[0]))
			b.arena = cBytes(2 * len(key))
		}
	}
	b.put(b.n, op, result, d, key)
	b.n++
	if b.n == len(b.records) {
		if flushErr := b.flushLocked(); err == nil {
			err = flushErr
		}
	}
	return err
}

// Len returns the number of records buffered, not yet flushed.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Flush hands the buffered records to the library. Records the library refuses (unknown codes) are
// dropped and reported in a [*BatchError]; every other record is recorded.
func (b *Batch) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	return b.flushLocked()
}

// Close flushes the batch (returning Flush's error) and frees its memory. Closing twice is fine.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	err := b.flushLocked()
	b.closed = true
	b.free()
	runtime.SetFinalizer(b, nil)
	return err
}

// flushLocked records b.records[:b.n], going past each refused record: cache_monitor_record_batch stops
// at a refused record and reports how many before it counted, so the next call starts after it.
func (b *Batch) flushLocked() error {
	var report *BatchError
	recorded := 0
	for start := 0; start < b.n; {
		r := C.cm_record_batch(b.lib.fn.recordBatch, b.lib.fn.lastError, &b.records[start], C.size_t(b.n-start),
			b.recorded)
		done := int(*b.recorded)
		recorded += done
		if r.status == 0 {
			break
		}
		refused := b.lib.fail("cache_monitor_record_batch", r) // also frees the message's C memory
		if report == nil {
			report = &BatchError{Index: start + done, First: refused}
		}
		report.Dropped++
		start += done + 1
	}
	b.n, b.used = 0, 0
	if report != nil {
		report.Recorded = recorded
		return report
	}
	return nil
}
