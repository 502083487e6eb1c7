//! Shards: the cells one writer (a thread, see `thread_claim`) adds its records to.
//!
//! # Protocol
//!
//! A shard is written by its writers only; readers sum shards with relaxed loads, and every cell only
//! grows (wrapping at 2^64), so a sum taken while threads record lies between the sums before and after.
//! Resets and imported state are kept beside the shards, never written into them. Three writers:
//!
//! - [`OwnerWriter`]: the one thread that owns the shard in process memory: a relaxed load and store per
//!   cell, no locked instruction (cheaper than a single `fetch_add`).
//! - [`JournaledWriter`]: the one thread that owns the shard in a state file. The same loads and stores,
//!   after two words into the shard's [`Journal`] (the sum before the record, and what the record is),
//!   so that whoever claims the shard after the process is killed mid-record rolls the half-written
//!   record back (a record counts once whole, or not at all).
//! - [`SharedWriter`]: one of several threads sharing a shard (threads beyond the owned shards, in memory
//!   or across the processes of a state file): `fetch_add` and `fetch_or`.
//!
//! Shards are [`CachePadded`], and the writer's own bookkeeping ([`Control`]) sits on lines of its own, so
//! two threads recording at the same time never write the same cache line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, compiler_fence};

use crate::config::patterns::MAX_PATTERNS;
use crate::recording::buckets::{BucketIndex, MAX_BUCKETS};
use crate::recording::journal::{Journal, JournalEntry, RecordCells};
use crate::recording::latency::{self, LATENCY_BUCKETS, LATENCY_ROW, row_bit};
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};

pub(crate) use crossbeam_utils::CachePadded;

/// Pattern ids a shard counts outcomes for: id 0 is `other` (keys whose pattern is not tracked), then one
/// per pattern, handed out by `recording::patterns`.
pub(crate) const PATTERN_IDS: usize = MAX_PATTERNS + 1;

/// The pattern id of keys whose pattern is not tracked.
pub(crate) const OTHER_PATTERN_ID: usize = 0;
// Regions, shards and the pattern table start as zeroed memory (a `static`, a fresh mapping, a zeroed
// allocation): an entry or cell nobody wrote yet reads as pattern id 0, which must mean `other`, never a
// learned pattern.
const _: () = assert!(OTHER_PATTERN_ID == 0, "zeroed memory must read as the `other` pattern");

/// The cells of one `(operation, outcome)` series.
///
/// There is no count cell: the count is the sum of the buckets, which keeps `_count`, `+Inf` and the
/// cumulative buckets consistent in every render and saves the hot path a write.
#[repr(C)]
pub(crate) struct SeriesCells {
    pub(crate) sum_ns: AtomicU64,
    /// Operations counted without a duration (in `operations_total`, not in the histogram).
    pub(crate) untimed: AtomicU64,
    /// Non-cumulative: bucket `i` counts durations in `(bound[i-1], bound[i]]`; the one after the last
    /// configured bound counts those above every bound. Cells past the configured bounds hold what an
    /// earlier, longer set of bounds counted there: every reader sums all of them.
    pub(crate) buckets: [AtomicU64; MAX_BUCKETS + 1],
}

impl SeriesCells {
    /// How many operations the series holds: every bucket cell, and those counted without a duration.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().fold(self.untimed.load(Relaxed), |count, cell| {
            count.wrapping_add(cell.load(Relaxed))
        })
    }
}

/// The writer's bookkeeping: one cache line (two on machines with 64-byte lines) that only the shard's
/// writer touches on the hot path.
#[repr(C)]
pub(crate) struct Control {
    /// Records left before the writer reads the clock again, read as signed: below zero, the clock is
    /// due (see `Recorder::count_down`).
    pub(crate) countdown: AtomicU64,
    /// What `countdown` restarts from: doubled while the second stays the same, halved when it changes.
    pub(crate) reload: AtomicU64,
    /// The second (plus one) of the records not yet moved to the window rings; 0 before the first.
    pub(crate) second: AtomicU64,
    /// Odd while the writer moves records to the window rings (see `flush`).
    pub(crate) flush_seq: AtomicU64,
    /// 1 while one of a shared shard's writers flushes it.
    pub(crate) flush_lock: AtomicU64,
    /// The record being written into a state file.
    pub(crate) journal: Journal,
    /// In a state file, the identity of the process that owns the shard (0: none yet).
    pub(crate) owner: AtomicU64,
}

/// What the writer has already moved to the window rings (see `flush`).
#[repr(C)]
pub(crate) struct Flushed {
    /// Counts per operation and outcome.
    pub(crate) counts: [[AtomicU64; OUTCOMES]; MAX_OPERATIONS],
    /// Latency buckets per operation, summed over outcomes.
    pub(crate) latency: [[AtomicU64; LATENCY_BUCKETS]; MAX_OPERATIONS],
}

/// In a state file, the shard's `begun` and `ended` when its current owner claimed it: operations in
/// flight are counted from there, so those a dead owner left begun are not in flight forever.
#[repr(C)]
pub(crate) struct ClaimBase {
    pub(crate) begun: [AtomicU64; MAX_OPERATIONS],
    pub(crate) ended: [AtomicU64; MAX_OPERATIONS],
}

/// Everything one writer writes.
#[repr(C)]
pub(crate) struct Shard {
    pub(crate) control: CachePadded<Control>,
    pub(crate) series: [[SeriesCells; OUTCOMES]; MAX_OPERATIONS],
    /// Latency buckets (the native histogram at schema 5, see `latency`) per operation and outcome: the
    /// native histogram of each series, and summed over outcomes the latency of each operation.
    pub(crate) latency: [[[AtomicU64; LATENCY_BUCKETS]; OUTCOMES]; MAX_OPERATIONS],
    /// Per operation and outcome, bit `r` set when latency row `r` (buckets `32r..32r+32`) has ever
    /// counted anything, so readers skip the empty rows.
    pub(crate) latency_rows: [[AtomicU64; OUTCOMES]; MAX_OPERATIONS],
    pub(crate) begun: [AtomicU64; MAX_OPERATIONS],
    pub(crate) ended: [AtomicU64; MAX_OPERATIONS],
    /// Outcomes per key pattern, indexed by pattern id.
    pub(crate) patterns: [[AtomicU64; OUTCOMES]; PATTERN_IDS],
    pub(crate) flushed: Flushed,
    pub(crate) claim_base: ClaimBase,
}

/// One record, placed: every index it writes at, each in range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed {
    pub(crate) operation: usize,
    pub(crate) outcome: usize,
    pub(crate) duration_ns: u64,
    /// Its bucket of the classic histogram (at most [`MAX_BUCKETS`]).
    pub(crate) bucket: usize,
    /// Its latency bucket (native histogram, schema 5).
    pub(crate) latency: usize,
    /// Its key's pattern id, if it counts under a pattern.
    pub(crate) pattern: Option<usize>,
}

impl Placed {
    /// Where a record of `duration_ns` goes with `buckets`: its latency bucket, and its classic bucket
    /// from that. The one place that decides it, for records and for undoing them (`journal`).
    #[inline(always)]
    pub(crate) fn new(
        operation: usize,
        outcome: usize,
        duration_ns: u64,
        pattern: Option<usize>,
        buckets: &BucketIndex,
    ) -> Self {
        let latency = latency::index_of(duration_ns);
        Self {
            operation,
            outcome,
            duration_ns,
            bucket: buckets.index_of(duration_ns, latency),
            latency,
            pattern,
        }
    }

    /// The same record with every index clamped into its array, which a valid placement already is: for
    /// a caller that must not panic, so that the compiler sees each index in range and leaves out the
    /// bounds checks' panics.
    #[inline(always)]
    pub(crate) fn clamped(self) -> Self {
        Self {
            operation: self.operation & (MAX_OPERATIONS - 1),
            outcome: self.outcome & (OUTCOMES - 1),
            bucket: self.bucket.min(MAX_BUCKETS),
            latency: self.latency.min(LATENCY_BUCKETS - 1),
            pattern: self.pattern.map(|id| id.min(PATTERN_IDS - 1)),
            ..self
        }
    }
}

/// How a writer adds to its shard: the three sides of the protocol above.
pub(crate) trait Writer {
    /// Adds `value` to `cell`.
    fn add(cell: &AtomicU64, value: u64);
    /// Sets `bits` in `cell`.
    fn set_bits(cell: &AtomicU64, bits: u64);
    /// Sets `bits` in `cell` if any of them is clear: most calls find them set and write nothing, so
    /// that a line every record reads is not made dirty by every record.
    #[inline(always)]
    fn mark(cell: &AtomicU64, bits: u64) {
        if cell.load(Relaxed) & bits != bits {
            Self::set_bits(cell, bits);
        }
    }
    /// Adds a whole record.
    #[inline(always)]
    fn record(shard: &Shard, record: &Placed) {
        let series = shard.series_of(record);
        Self::add(&series.cells.sum_ns, record.duration_ns);
        Self::add(&series.cells.buckets[record.bucket], 1);
        Self::add(&series.latency[record.latency], 1);
        if let Some(id) = record.pattern {
            Self::add(&shard.patterns[id][record.outcome], 1);
        }
        mark_latency_row::<Self>(&series, record);
    }
}

#[inline(always)]
fn mark_latency_row<W: Writer + ?Sized>(series: &SeriesOf<'_>, record: &Placed) {
    W::mark(series.rows, row_bit(record.latency));
}

/// Series (operation and outcome pairs) a shard counts: a power of two, so that a masked index needs no
/// bounds check.
const SERIES: usize = MAX_OPERATIONS * OUTCOMES;
const _: () = assert!(SERIES.is_power_of_two());

/// What a record writes of its series: found once, from one index (fewer multiplications than the
/// nested arrays' per-dimension indexing).
pub(crate) struct SeriesOf<'a> {
    pub(crate) cells: &'a SeriesCells,
    pub(crate) latency: &'a [AtomicU64; LATENCY_BUCKETS],
    pub(crate) rows: &'a AtomicU64,
}

/// The single writer of an owned shard in process memory: a plain relaxed load and store.
pub(crate) enum OwnerWriter {}

impl Writer for OwnerWriter {
    #[inline(always)]
    fn add(cell: &AtomicU64, value: u64) {
        cell.store(cell.load(Relaxed).wrapping_add(value), Relaxed);
    }

    #[inline(always)]
    fn set_bits(cell: &AtomicU64, bits: u64) {
        cell.store(cell.load(Relaxed) | bits, Relaxed);
    }

    /// One load: the bits are set in the value loaded (a `bts`, with no mask to build) and stored only
    /// if that changed it.
    #[inline(always)]
    fn mark(cell: &AtomicU64, bits: u64) {
        let old = cell.load(Relaxed);
        let new = old | bits;
        if new != old {
            cell.store(new, Relaxed);
        }
    }
}

/// The single writer of an owned shard in a state file: [`OwnerWriter`]'s stores inside the journal.
pub(crate) enum JournaledWriter {}

impl Writer for JournaledWriter {
    #[inline(always)]
    fn add(cell: &AtomicU64, value: u64) {
        OwnerWriter::add(cell, value);
    }

    #[inline(always)]
    fn set_bits(cell: &AtomicU64, bits: u64) {
        OwnerWriter::set_bits(cell, bits);
    }

    #[inline(always)]
    fn mark(cell: &AtomicU64, bits: u64) {
        OwnerWriter::mark(cell, bits);
    }

    /// The row mark first: it is no cell the journal covers (a mark without counts is harmless, see
    /// `latency_rows`), and done before the journal its registers are free again for the journal's.
    #[inline(always)]
    fn record(shard: &Shard, record: &Placed) {
        mark_latency_row::<Self>(&shard.series_of(record), record);
        Self::open_and_write(shard, record, RECORD_CELLS);
    }
}

/// The cells a record adds to: the sum, the classic bucket, the latency bucket and the pattern's outcome.
pub(crate) const RECORD_CELLS: usize = 4;

impl JournaledWriter {
    /// Writes `record`'s journal and the first `written` of its cells, in the journal's order (sum,
    /// bucket, latency bucket, pattern): with [`RECORD_CELLS`], the whole record; with fewer, what a
    /// writer killed inside the record leaves (for tests).
    #[inline(always)]
    pub(crate) fn open_and_write(shard: &Shard, record: &Placed, written: usize) {
        // Every record is clamped where it is made (`Record::new`); a roll-back reads a longer one from the
        // sum as a corrupted journal.
        debug_assert!(record.duration_ns <= crate::config::MAX_DURATION_NS);
        let series = shard.series_of(record);
        let sum = &series.cells.sum_ns;
        let counters = [
            Some(&series.cells.buckets[record.bucket]),
            Some(&series.latency[record.latency]),
            record.pattern.map(|id| &shard.patterns[id][record.outcome]),
        ];
        let journal = &shard.control.journal;
        journal.open_sum(sum.load(Relaxed));
        // The sum before is written before the counting cells are read, so that no register holds it
        // meanwhile (the order of the journal's two stores is the protocol's either way).
        compiler_fence(std::sync::atomic::Ordering::SeqCst);
        let counted = counters.iter().fold(0u64, |counted, cell| {
            counted.wrapping_add(cell.map_or(0, |cell| cell.load(Relaxed)))
        });
        journal.open_entry(JournalEntry::of(record), counted);
        // The journal's stores come first in program order, so a process killed at any instruction leaves
        // the journal of the record it was in, or of the one before (`Journal` explains why program order
        // is what survives a kill, and why no store closes the entry).
        compiler_fence(std::sync::atomic::Ordering::SeqCst);
        // Each cell is read again rather than kept from before the journal: no one else writes it, so the
        // value is the same, and an add to memory needs no register to hold it meanwhile.
        if written > 0 {
            OwnerWriter::add(sum, record.duration_ns);
        }
        for (index, cell) in counters.iter().enumerate() {
            if let Some(cell) = cell
                && index + 1 < written
            {
                OwnerWriter::add(cell, 1);
            }
        }
    }
}

/// One of several writers of a shared shard: an atomic read-modify-write.
pub(crate) enum SharedWriter {}

impl Writer for SharedWriter {
    #[inline(always)]
    fn add(cell: &AtomicU64, value: u64) {
        cell.fetch_add(value, Relaxed);
    }

    #[inline(always)]
    fn set_bits(cell: &AtomicU64, bits: u64) {
        cell.fetch_or(bits, Relaxed);
    }
}

impl Shard {
    /// The cells of `record`'s series.
    #[inline(always)]
    pub(crate) fn series_of(&self, record: &Placed) -> SeriesOf<'_> {
        // The same element as `[record.operation][record.outcome]` of each array (row-major).
        let index = (record.operation * OUTCOMES + record.outcome) & (SERIES - 1);
        SeriesOf {
            cells: &self.series.as_flattened()[index],
            latency: &self.latency.as_flattened()[index],
            rows: &self.latency_rows.as_flattened()[index],
        }
    }

    /// The sum cell of a series, if the shard has it (indexes read from a file are input).
    pub(crate) fn series_sum(&self, operation: usize, outcome: usize) -> Option<&AtomicU64> {
        Some(&self.series.get(operation)?.get(outcome)?.sum_ns)
    }

    /// The cells the record described by `entry` with `duration_ns` writes, in the journal's order, found
    /// as the record found them ([`Placed::new`]); `None` for an index out of range (a journal is read
    /// from a file: input).
    pub(crate) fn journaled_cells(
        &self,
        entry: &JournalEntry,
        duration_ns: u64,
        buckets: &BucketIndex,
    ) -> Option<RecordCells<'_>> {
        let placed = Placed::new(entry.operation, entry.outcome, duration_ns, entry.pattern, buckets);
        let series = self.series.get(placed.operation)?.get(placed.outcome)?;
        let pattern = match placed.pattern {
            Some(id) => Some(self.patterns.get(id)?.get(placed.outcome)?),
            None => None,
        };
        Some(RecordCells {
            sum: &series.sum_ns,
            counters: [
                Some(series.buckets.get(placed.bucket)?),
                Some(
                    self.latency
                        .get(placed.operation)?
                        .get(placed.outcome)?
                        .get(placed.latency)?,
                ),
                pattern,
            ],
        })
    }

    /// The latency rows any outcome of `operation` counted in.
    pub(crate) fn operation_rows(&self, operation: usize) -> u64 {
        self.latency_rows[operation]
            .iter()
            .fold(0, |rows, cell| rows | cell.load(Relaxed))
    }

    /// Row `row` of `operation`'s latency buckets, summed over outcomes; `None` past the last row (a
    /// row mask is read from memory a state file may have written).
    pub(crate) fn operation_latency_row(&self, operation: usize, row: usize) -> Option<[u64; LATENCY_ROW]> {
        let range = crate::recording::latency::row_range(row);
        let mut sums = [0u64; LATENCY_ROW];
        for outcome in self.latency.get(operation)? {
            for (sum, cell) in sums.iter_mut().zip(outcome.get(range.clone())?) {
                *sum = sum.wrapping_add(cell.load(Relaxed));
            }
        }
        Some(sums)
    }

    /// The latency buckets of `operation` in the rows set in `rows`, summed over outcomes, with their
    /// indexes.
    pub(crate) fn operation_latency(&self, operation: usize, rows: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        crate::recording::latency::set_bits(rows)
            .filter_map(move |row| {
                let sums = self.operation_latency_row(operation, row)?;
                Some(crate::recording::latency::row_range(row).zip(sums))
            })
            .flatten()
    }
}

const _: () = assert!(LATENCY_BUCKETS.is_multiple_of(LATENCY_ROW));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;

    fn shard() -> Box<Shard> {
        // SAFETY: a shard is atomics only; all-zero is empty.
        unsafe { zeroed_box() }
    }

    fn placed(pattern: Option<usize>) -> Placed {
        Placed {
            operation: 2,
            outcome: 1,
            duration_ns: 700,
            bucket: 3,
            latency: 40,
            pattern,
        }
    }

    fn cells(shard: &Shard) -> [u64; 5] {
        [
            shard.series[2][1].sum_ns.load(Relaxed),
            shard.series[2][1].buckets[3].load(Relaxed),
            shard.latency[2][1][40].load(Relaxed),
            shard.patterns[9][1].load(Relaxed),
            shard.latency_rows[2][1].load(Relaxed),
        ]
    }

    #[test]
    fn every_writer_adds_the_same_record() {
        let expected = [1400, 2, 2, 2, row_bit(40)];
        let owned = shard();
        OwnerWriter::record(&owned, &placed(Some(9)));
        OwnerWriter::record(&owned, &placed(Some(9)));
        assert_eq!(cells(&owned), expected);
        let journaled = shard();
        JournaledWriter::record(&journaled, &placed(Some(9)));
        JournaledWriter::record(&journaled, &placed(Some(9)));
        assert_eq!(cells(&journaled), expected);
        // SAFETY: atomics only; all-zero is valid (no bounds: every duration in bucket 0, as placed).
        let buckets: Box<BucketIndex> = unsafe { zeroed_box() };
        assert!(
            matches!(
                journaled.control.journal.last_record(&journaled, &buckets),
                crate::recording::journal::LastRecord::Whole
            ),
            "the journal says the last record is whole"
        );
        let shared = shard();
        std::thread::scope(|scope| {
            scope.spawn(|| SharedWriter::record(&shared, &placed(Some(9))));
            scope.spawn(|| SharedWriter::record(&shared, &placed(Some(9))));
        });
        assert_eq!(cells(&shared), expected);
        assert_eq!(shared.series[2][1].count(), 2);
    }

    #[test]
    fn journaled_cells_refuse_indexes_out_of_range() {
        let shard = shard();
        // SAFETY: atomics only; all-zero is valid.
        let buckets: Box<BucketIndex> = unsafe { zeroed_box() };
        let mut entry = JournalEntry {
            operation: 2,
            outcome: 1,
            pattern: Some(PATTERN_IDS - 1),
            zero_duration: false,
        };
        assert!(shard.journaled_cells(&entry, 700, &buckets).is_some());
        entry.pattern = Some(PATTERN_IDS);
        assert!(shard.journaled_cells(&entry, 700, &buckets).is_none());
        entry.pattern = None;
        entry.operation = MAX_OPERATIONS;
        assert!(shard.journaled_cells(&entry, 700, &buckets).is_none());
    }
}
