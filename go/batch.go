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

// DefaultBatchSize is the number of records a [Batch] or a [LocalBatch] buffers when its constructor
// is given 0.
const DefaultBatchSize = 256

// record is a CacheMonitorRecord as the package writes it: the same layout (checked below), with the
// key's address as an integer. The records and the keys' bytes are C memory, which the garbage collector
// neither scans nor moves, so the address needs no pointer type, and an integer store into it needs no
// write barrier.
type record struct {
	operation  uint32
	result     uint32
	durationNs uint64
	key        uintptr
	keyLen     uintptr
}

// record's layout is CacheMonitorRecord's: each difference below is a constant that must be 0 both
// ways, or the array length is negative and the package does not compile.
var (
	_ [unsafe.Sizeof(record{}) - C.sizeof_CacheMonitorRecord]struct{}
	_ [C.sizeof_CacheMonitorRecord - unsafe.Sizeof(record{})]struct{}
	_ [unsafe.Offsetof(record{}.durationNs) - unsafe.Offsetof(C.CacheMonitorRecord{}.duration_ns)]struct{}
	_ [unsafe.Offsetof(C.CacheMonitorRecord{}.duration_ns) - unsafe.Offsetof(record{}.durationNs)]struct{}
	_ [unsafe.Offsetof(record{}.key) - unsafe.Offsetof(C.CacheMonitorRecord{}.key)]struct{}
	_ [unsafe.Offsetof(C.CacheMonitorRecord{}.key) - unsafe.Offsetof(record{}.key)]struct{}
	_ [unsafe.Offsetof(record{}.keyLen) - unsafe.Offsetof(C.CacheMonitorRecord{}.key_len)]struct{}
	_ [unsafe.Offsetof(C.CacheMonitorRecord{}.key_len) - unsafe.Offsetof(record{}.keyLen)]struct{}
)

// Batch buffers records and hands them to the library in one call, cache_monitor_record_batch, when it
// is full, on Flush and on Close. A cgo call costs more than the library takes to record, so a batched
// record costs a fraction of [Library.Record] (BENCHMARKS.md, "Go"); the price is that records count
// only once flushed.
//
// A Batch may be shared by goroutines: a mutex guards it. One Batch per goroutine, or per worker, avoids
// contending for it; even uncontended, taking the mutex is a good part of what Add costs, and a goroutine
// that records alone can use a [LocalBatch], which has none. Close a Batch when done: records still
// buffered when a Batch is dropped unclosed are lost.
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
	mu  sync.Mutex
	buf buffer
}

// NewBatch returns a Batch that flushes every size records (size <= 0: [DefaultBatchSize]).
func (l *Library) NewBatch(size int) *Batch {
	b := &Batch{}
	b.buf.init(l, size)
	runtime.SetFinalizer(b, func(b *Batch) { b.buf.free() })
	return b
}

// Add buffers one record (the arguments of [Library.Record]) and flushes the batch when it becomes
// full. It returns [ErrClosed] after Close, and otherwise the error of the flush it triggered, if any:
// a [*BatchError] about records added earlier (or this one) that the library refused.
func (b *Batch) Add(op Operation, result Result, d time.Duration, key string) error {
	b.mu.Lock() // no defer in the hot path
	// buffer.add's common case, copied here: Go does not inline buffer.add, and calling it would cost
	// about what taking the mutex does. Keep the two in step.
	n, used, records := b.buf.n, b.buf.used, b.buf.records
	if uint(n) < uint(len(records)) && len(key) <= len(b.buf.arena)-used {
		r := &records[n]
		r.operation = uint32(op)
		r.result = uint32(result)
		r.durationNs = uint64(nanoseconds(d))
		r.keyLen = uintptr(len(key))
		if len(key) == 0 {
			r.key = 0
		} else {
			free := b.buf.arena[used:]
			copy(free, key)
			r.key = uintptr(unsafe.Pointer(&free[0]))
			b.buf.used = used + len(key)
		}
		b.buf.n = n + 1
		var err error
		if n+1 == len(records) {
			err = b.buf.flush()
		}
		b.mu.Unlock()
		return err
	}
	err := b.buf.addSlow(op, result, d, key)
	b.mu.Unlock()
	return err
}

// Len returns the number of records buffered, not yet flushed.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.n
}

// Flush hands the buffered records to the library. Records the library refuses (unknown codes) are
// dropped and reported in a [*BatchError]; every other record is recorded.
func (b *Batch) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.flush()
}

// Close flushes the batch (returning Flush's error) and frees its memory. Closing twice is fine.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	runtime.SetFinalizer(b, nil)
	return b.buf.close()
}

// LocalBatch is a [Batch] without the mutex: the same methods, buffering and flushing the same way, for
// a goroutine that records alone, such as a worker in its loop. Like a bufio.Writer, a LocalBatch is not
// safe for concurrent use: one goroutine at a time calls its methods (another may take it over when it
// is handed on, through a channel say, as for any Go value). Concurrent calls are a data race, which
// `go test -race` reports, and can corrupt the batch's C memory; where goroutines share a batch, use a
// Batch. Close a LocalBatch when done: records still buffered when it is dropped unclosed are lost.
type LocalBatch struct {
	buf buffer
}

// NewLocalBatch returns a LocalBatch that flushes every size records (size <= 0: [DefaultBatchSize]).
func (l *Library) NewLocalBatch(size int) *LocalBatch {
	b := &LocalBatch{}
	b.buf.init(l, size)
	runtime.SetFinalizer(b, func(b *LocalBatch) { b.buf.free() })
	return b
}

// Add buffers one record as [Batch.Add] does.
func (b *LocalBatch) Add(op Operation, result Result, d time.Duration, key string) error {
	return b.buf.add(op, result, d, key)
}

// Len returns the number of records buffered, not yet flushed.
func (b *LocalBatch) Len() int { return b.buf.n }

// Flush hands the buffered records to the library as [Batch.Flush] does.
func (b *LocalBatch) Flush() error { return b.buf.flush() }

// Close flushes the batch (returning Flush's error) and frees its memory. Closing twice is fine.
func (b *LocalBatch) Close() error {
	runtime.SetFinalizer(b, nil)
	return b.buf.close()
}

// buffer is a Batch's or a LocalBatch's records and the C memory they live in (see [Batch]); it is
// not synchronized.
type buffer struct {
	// What add reads and writes, first. add's common case is one comparison each for room for the
	// record and for its key: records and arena are empty once closed, so that the first comparison
	// also sends add to addSlow, which returns ErrClosed.
	n       int      // records buffered: records[:n]
	used    int      // arena bytes used by their keys: arena[:used]
	records []record // C memory
	arena   []byte   // C memory: the bytes of the buffered records' keys
	lib     *Library
	closed  bool
}

// init allocates the C memory of a buffer of size records (size <= 0: DefaultBatchSize).
func (b *buffer) init(l *Library, size int) {
	if size <= 0 {
		size = DefaultBatchSize
	}
	b.lib = l
	b.records = unsafe.Slice((*record)(C.malloc(C.size_t(size)*C.sizeof_CacheMonitorRecord)), size)
	b.arena = cBytes(size * 32)
}

// cBytes allocates n bytes (at least 4 KiB) of C memory, as a Go slice over it.
func cBytes(n int) []byte {
	if n < 4096 {
		n = 4096
	}
	return unsafe.Slice((*byte)(C.malloc(C.size_t(n))), n)
}

// free releases the C memory, once: records and arena are empty afterwards.
func (b *buffer) free() {
	if b.records != nil {
		C.free(unsafe.Pointer(&b.records[0]))
		C.free(unsafe.Pointer(&b.arena[0]))
		b.records, b.arena = nil, nil
	}
}

// add is Add: it buffers one record and flushes when the buffer becomes full.
func (b *buffer) add(op Operation, result Result, d time.Duration, key string) error {
	n, used, records := b.n, b.used, b.records
	// The common case: room for the record (uint: n >= 0 too, so records[n] needs no bounds check) and
	// for its key.
	if uint(n) < uint(len(records)) && len(key) <= len(b.arena)-used {
		r := &records[n]
		r.operation = uint32(op)
		r.result = uint32(result)
		r.durationNs = uint64(nanoseconds(d))
		r.keyLen = uintptr(len(key))
		if len(key) == 0 {
			r.key = 0
		} else {
			free := b.arena[used:]
			copy(free, key)
			r.key = uintptr(unsafe.Pointer(&free[0]))
			b.used = used + len(key)
		}
		b.n = n + 1
		if n+1 == len(records) {
			return b.flush()
		}
		return nil
	}
	return b.addSlow(op, result, d, key)
}

// addSlow is add when the buffer is closed or its arena lacks room for key.
func (b *buffer) addSlow(op Operation, result Result, d time.Duration, key string) error {
	if b.closed {
		return ErrClosed
	}
	// Flush to empty the arena, and grow it for a key longer than it: then there is room.
	err := b.flush()
	if len(key) > len(b.arena) {
		C.free(unsafe.Pointer(&b.arena[0]))
		b.arena = cBytes(2 * len(key))
	}
	if addErr := b.add(op, result, d, key); err == nil {
		err = addErr
	}
	return err
}

// close flushes and frees the C memory; closing twice is fine.
func (b *buffer) close() error {
	if b.closed {
		return nil
	}
	err := b.flush()
	b.closed = true
	b.free() // records and arena empty: every add takes addSlow
	return err
}

// flush records records[:n], going past each refused record: cache_monitor_record_batch stops at a
// refused record and reports how many before it counted, so the next call starts after it. Nothing to do
// once closed (n is 0).
func (b *buffer) flush() error {
	var report *BatchError
	recorded := 0
	for start := 0; start < b.n; {
		r := C.cm_record_batch(b.lib.fn.recordBatch, b.lib.fn.lastError,
			C.uintptr_t(uintptr(unsafe.Pointer(&b.records[start]))), C.size_t(b.n-start))
		done := int(r.recorded)
		recorded += done
		if r.status.status == 0 {
			break
		}
		refused := b.lib.fail("cache_monitor_record_batch", r.status) // also frees the message's C memory
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
