//! The hot path: validates a record and adds it to the calling thread's shard.
//!
//! No lock, no allocation, no system call: a thread-local read, a binary search over at most
//! [`MAX_BUCKETS`](crate::recording::buckets::MAX_BUCKETS) bounds, and four cell updates, all in one shard.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::recording::backing::Backing;
use crate::recording::buckets::{AtomicBounds, BucketBounds};
use crate::recording::latency::{self, LATENCY_BUCKETS, rows_of};
use crate::recording::operation::{Gauge, MAX_OPERATIONS, OUTCOMES, Operation, Outcome};
use crate::recording::shard::{OwnerWriter, Shard, Shards, SharedWriter, Writer};
use crate::recording::totals::{OutcomeCounts, Totals};

/// One record, validated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub(crate) operation: Operation,
    pub(crate) outcome: Outcome,
    pub(crate) duration_ns: u64,
    /// The key's pattern id, when pattern analysis is on and a key was given.
    pub(crate) pattern_id: Option<usize>,
}

/// What a rolling-window tick (`analysis::windows`) reads: the shards' cumulative state, summed without
/// allocating (a tick runs inside a record). Implemented by [`Recorder`]; a trait so that the windows'
/// tests can tick from counts they set by hand.
pub(crate) trait TickSource {
    /// Cumulative counts per operation and outcome.
    fn outcome_counts(&self) -> OutcomeCounts;
    /// Writes the cumulative latency buckets of every operation below `operations` into `cells`
    /// (`MAX_OPERATIONS * LATENCY_BUCKETS` cells, then one row mask per operation), touching only rows that
    /// hold counts now or held them in `cells` before.
    fn write_latency(&self, operations: usize, cells: &[AtomicU64]);
}

/// Shards plus the little configuration the hot path reads.
pub(crate) struct Recorder {
    shards: Backing<Shards>,
    bounds: AtomicBounds,
    /// Operation codes below this are accepted.
    operations: AtomicUsize,
    gauges: [AtomicU64; Gauge::ALL.len()],
}

impl Recorder {
    /// A recorder writing `shards`.
    pub(crate) fn new(shards: Backing<Shards>, bounds: &BucketBounds) -> Self {
        Self {
            shards,
            bounds: AtomicBounds::new(bounds),
            operations: AtomicUsize::new(Operation::BUILTIN.len()),
            gauges: [const { AtomicU64::new(0) }; Gauge::ALL.len()],
        }
    }

    /// Whether `operation` is built in or registered.
    #[inline(always)]
    pub(crate) fn accepts(&self, operation: Operation) -> bool {
        operation.index() < self.operations.load(Relaxed)
    }

    /// Adds one record to the calling thread's shard.
    #[inline(always)]
    pub(crate) fn record(&self, record: Record) {
        let (shard, claim) = self.shards.current();
        let bucket = self.bounds.index_of(record.duration_ns);
        if claim.is_owned() {
            add::<OwnerWriter>(shard, &record, bucket);
        } else {
            add::<SharedWriter>(shard, &record, bucket);
        }
    }

    /// Counts the start of an operation.
    #[inline]
    pub(crate) fn begin(&self, operation: Operation) {
        self.bump(|shard| &shard.begun[operation.index()]);
    }

    /// Counts the end of an operation.
    #[inline]
    pub(crate) fn end(&self, operation: Operation) {
        self.bump(|shard| &shard.ended[operation.index()]);
    }

    #[inline(always)]
    fn bump(&self, cell: impl Fn(&Shard) -> &AtomicU64) {
        let (shard, claim) = self.shards.current();
        if claim.is_owned() {
            OwnerWriter::add(cell(shard), 1);
        } else {
            SharedWriter::add(cell(shard), 1);
        }
    }

    /// Sets a host gauge.
    pub(crate) fn set_gauge(&self, gauge: Gauge, value: u64) {
        self.gauges[gauge.index()].store(value, Relaxed);
    }

    /// The host gauges, indexed by [`Gauge`] code.
    pub(crate) fn gauges(&self) -> [u64; Gauge::ALL.len()] {
        std::array::from_fn(|i| self.gauges[i].load(Relaxed))
    }

    /// How many operation codes are accepted.
    pub(crate) fn operation_count(&self) -> usize {
        self.operations.load(Relaxed)
    }

    /// Accepts operation codes below `count` from now on.
    pub(crate) fn set_operation_count(&self, count: usize) {
        self.operations.store(count.min(MAX_OPERATIONS), Relaxed);
    }

    /// Replaces the histogram bounds (see [`AtomicBounds::store`]).
    pub(crate) fn set_bounds(&self, bounds: &BucketBounds) {
        self.bounds.store(bounds);
    }

    /// Everything recorded so far, for operation codes below `operations`.
    pub(crate) fn totals(&self, operations: usize, buckets: usize, pattern_ids: usize) -> Totals {
        Totals::sum(self.shards.in_use(), operations, buckets, pattern_ids)
    }
}

/// What a window tick reads: sums over the shards in use, allocation-free (it runs inside a record).
impl TickSource for Recorder {
    fn outcome_counts(&self) -> OutcomeCounts {
        let buckets = self.bounds.len() + 1;
        let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
        for shard in self.shards.in_use() {
            for (op, row) in counts.iter_mut().enumerate().take(self.operation_count()) {
                for (count, cells) in row.iter_mut().zip(&shard.series[op]) {
                    *count += cells.buckets[..buckets].iter().map(|c| c.load(Relaxed)).sum::<u64>();
                }
            }
        }
        counts
    }

    fn write_latency(&self, operations: usize, cells: &[AtomicU64]) {
        let masks = &cells[MAX_OPERATIONS * LATENCY_BUCKETS..];
        for op in 0..operations.min(MAX_OPERATIONS) {
            let rows = self
                .shards
                .in_use()
                .fold(0, |rows, shard| rows | shard.latency_rows[op].load(Relaxed));
            let stale = masks[op].load(Relaxed);
            for index in rows_of(rows | stale) {
                let sum = self
                    .shards
                    .in_use()
                    .map(|shard| shard.latency[op][index].load(Relaxed))
                    .sum();
                cells[op * LATENCY_BUCKETS + index].store(sum, Relaxed);
            }
            masks[op].store(rows, Relaxed);
        }
    }
}

#[inline(always)]
fn add<W: Writer>(shard: &Shard, record: &Record, bucket: usize) {
    let op = record.operation.index();
    let cells = &shard.series[op][record.outcome.index()];
    W::add(&cells.sum_ns, record.duration_ns);
    W::add(&cells.buckets[bucket], 1);
    let latency = latency::index_of(record.duration_ns);
    W::add(&shard.latency[op][latency], 1);
    let row = latency::row_bit(latency);
    if shard.latency_rows[op].load(Relaxed) & row == 0 {
        W::set_bits(&shard.latency_rows[op], row);
    }
    if let Some(id) = record.pattern_id {
        W::add(&shard.patterns[id][record.outcome.index()], 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::shard::PATTERN_IDS;

    fn record(operation: Operation, outcome: Outcome, duration_ns: u64) -> Record {
        Record {
            operation,
            outcome,
            duration_ns,
            pattern_id: None,
        }
    }

    #[test]
    fn counts_from_many_threads_are_exact() {
        let recorder = Recorder::new(Backing::heap(), &BucketBounds::default());
        std::thread::scope(|scope| {
            for t in 0..6u64 {
                let recorder = &recorder;
                scope.spawn(move || {
                    for i in 0..10_000u64 {
                        let outcome = if (i + t) % 3 == 0 { Outcome::Hit } else { Outcome::Miss };
                        recorder.record(record(Operation::GET, outcome, 1_000));
                    }
                });
            }
        });
        let totals = recorder.totals(7, BucketBounds::default().nanos().len(), PATTERN_IDS);
        let get = &totals.series[0];
        assert_eq!(get[0].count + get[1].count, 60_000);
        assert_eq!(get[0].count, 20_000);
        assert_eq!(get[0].sum_ns, 20_000 * 1_000);
        assert_eq!(get[0].buckets[0], 20_000, "1 us lands in the le=1e-06 bucket");
        assert_eq!(totals.latency[0].total(), 60_000);
    }

    #[test]
    fn unregistered_operations_are_refused() {
        let recorder = Recorder::new(Backing::heap(), &BucketBounds::default());
        assert!(recorder.accepts(Operation::LOAD));
        assert!(!recorder.accepts(Operation::from_code(7)));
        recorder.set_operation_count(8);
        assert!(recorder.accepts(Operation::from_code(7)));
    }

    #[test]
    fn in_flight_counts_begin_and_end_on_any_thread() {
        let recorder = Recorder::new(Backing::heap(), &BucketBounds::default());
        recorder.begin(Operation::GET);
        recorder.begin(Operation::PUT);
        std::thread::scope(|scope| {
            scope.spawn(|| recorder.end(Operation::GET));
        });
        assert_eq!(recorder.totals(7, 22, PATTERN_IDS).in_flight(), 1);
    }
}
