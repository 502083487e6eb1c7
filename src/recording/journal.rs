//! A record into a state file counts whole or not at all, even when its process is killed halfway.
//!
//! # Protocol
//!
//! A record adds to up to four cells of its writer's shard, in this order: the sum, by its duration `d`;
//! then by one each its *counting cells*: the classic bucket, the latency bucket and, when its key has a
//! pattern, the pattern's outcome. The writer owns the shard, so it knows each cell's value before the
//! record, and no one else writes them. Before the first cell it writes two words into the shard's
//! journal: the sum before the record, then the entry: the record's series and pattern, whether `d` is 0,
//! and the total of its counting cells before the record, modulo 4. No third store closes the entry: the
//! cells themselves say how far the record got.
//!
//! Compiler fences keep that program order; the processor keeps it too, for what matters here: a process
//! dies at an instruction boundary, every store before that boundary has retired and reaches memory (a
//! killed process's stores are not discarded, only never followed), and whoever looks at the shard
//! afterwards has first taken its lock from the kernel, which orders it after the death.
//!
//! Reading the journal of a dead writer ([`Journal::last_record`]):
//! - The sum now minus the sum before is `d`, unless the entry says `d` is 0. A difference of 0 from an
//!   entry that says otherwise means the sum, the first cell, was not written: nothing was.
//! - `d` gives the record's buckets, found by the same functions from the same bounds (a file's bounds
//!   are fixed when it is created), hence its counting cells. Their total now minus the total before,
//!   modulo 4, is how many of them were written (each adds one, in order: the first ones).
//! - All of them: the record is whole and stays. Fewer: [`Journal::roll_back`] undoes it, restoring the
//!   sum and taking one from each counting cell written.
//!
//! A kill between the journal's two stores leaves the previous record's entry beside the new sum before,
//! which is the sum now: that entry reads as "nothing written" (or, when its `d` was 0, as whole), and
//! nothing is undone, rightly, since the previous record was whole. A roll-back (or finding the record
//! whole) clears the entry's mark, so it happens once. Other writes a writer makes to its shard (untimed
//! counts, in-flight counters, latency row marks) touch no cell a record's journal covers.
//!
//! Per record, a file costs two stores and a handful of instructions more than memory: the total of two
//! or three values the record loads anyway, a shift, a test of the duration, and `or`s into an entry
//! whose other fields are known where the record is made (for a typed record without a key, constants).
//! In process memory the journal is not used: a process that dies takes its counts with it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::config::MAX_DURATION_NS;
use crate::recording::buckets::BucketIndex;
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::recording::shard::{PATTERN_IDS, Placed, Shard};

/// Set in every entry a record writes; cleared once the record was found whole or undone.
const MARK: u64 = 1;
/// Set in the entry of a record whose duration is 0 (its sum does not show whether it was written).
const ZERO_DURATION: u64 = 1 << 1;
/// Where the operation, the outcome and the pattern id plus one start in an entry.
const OPERATION_SHIFT: u32 = 2;
const OUTCOME_SHIFT: u32 = 6;
const PATTERN_SHIFT: u32 = 8;
/// Where the counting cells' total before the record, modulo 4, sits: the top two bits, so that a
/// shift alone keeps just those.
const COUNTED_SHIFT: u32 = 62;

// Every field fits its bits: 4 for the operation, 2 for the outcome, 11 for the pattern id plus one.
const _: () = assert!(MAX_OPERATIONS <= 1 << 4);
const _: () = assert!(OUTCOMES <= 1 << 2);
const _: () = assert!(PATTERN_IDS < 1 << 11);

/// The journal of one shard: the record written last, and what undoing it takes.
#[repr(C)]
pub(crate) struct Journal {
    /// A packed [`JournalEntry`] with [`MARK`] and the counting cells' total before the record; 0 before
    /// any record and after a roll-back.
    entry: AtomicU64,
    /// The sum cell before the record.
    sum_before: AtomicU64,
}

/// The cells a record writes, in the order it writes them: the sum, then the counting cells.
pub(crate) struct RecordCells<'a> {
    pub(crate) sum: &'a AtomicU64,
    /// The classic bucket, the latency bucket and the pattern's outcome (`None`: no pattern).
    pub(crate) counters: [Option<&'a AtomicU64>; 3],
}

impl RecordCells<'_> {
    /// The total of the counting cells now.
    fn counted(&self) -> u64 {
        self.counters
            .iter()
            .flatten()
            .fold(0u64, |total, cell| total.wrapping_add(cell.load(Relaxed)))
    }
}

/// What an entry says of its record, beside the cells' total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JournalEntry {
    pub(crate) operation: usize,
    pub(crate) outcome: usize,
    pub(crate) pattern: Option<usize>,
    pub(crate) zero_duration: bool,
}

impl JournalEntry {
    /// The entry of `record`, marked, without the cells' total (see [`Journal::open_entry`]). Its fields are
    /// in range (`Placed` says so), so no mask is needed; where they are constants, so is the entry.
    #[inline(always)]
    pub(crate) fn of(record: &Placed) -> u64 {
        debug_assert!(
            record.operation < MAX_OPERATIONS
                && record.outcome < OUTCOMES
                && record.pattern.is_none_or(|id| id < PATTERN_IDS)
        );
        // Latency bucket 0 holds exactly the durations of 0 (`latency::index_of`), and the record has
        // just found it: the test the bucket's branch already made.
        MARK | u64::from(record.latency == 0) << 1
            | (record.operation as u64) << OPERATION_SHIFT
            | (record.outcome as u64) << OUTCOME_SHIFT
            | record.pattern.map_or(0, |id| id as u64 + 1) << PATTERN_SHIFT
    }

    /// Unpacks a marked entry word (the caller checks indexes against the shard); `None` without the mark.
    fn unpack(word: u64) -> Option<Self> {
        if word & MARK == 0 {
            return None;
        }
        Some(Self {
            operation: ((word >> OPERATION_SHIFT) & 0xf) as usize,
            outcome: ((word >> OUTCOME_SHIFT) & 0x3) as usize,
            pattern: (((word >> PATTERN_SHIFT) & 0x7ff) as usize).checked_sub(1),
            zero_duration: word & ZERO_DURATION != 0,
        })
    }
}

/// What a shard's journal says of the record its writer made last.
pub(crate) enum LastRecord<'a> {
    /// No record since the journal was last cleared.
    None,
    /// The record is whole.
    Whole,
    /// The record was cut short before its first cell: nothing to undo.
    NotBegun,
    /// The record was cut short after its sum and the first `written` of its counting cells.
    Half { cells: RecordCells<'a>, written: usize },
    /// The entry names cells the shard does not have, or a duration no record has (a corrupted file):
    /// nothing can be undone.
    Corrupt(JournalEntry),
}

impl Journal {
    /// Writes down what undoing a record takes, before the record's first cell, in two stores: first the
    /// sum before it (here), then its entry ([`Journal::open_entry`]).
    #[inline(always)]
    pub(crate) fn open_sum(&self, sum_before: u64) {
        self.sum_before.store(sum_before, Relaxed);
    }

    /// The second store of a record's journal, after [`Journal::open_sum`]: its `entry`
    /// ([`JournalEntry::of`]) with `counted`, the total of its counting cells before it (only the lowest
    /// two bits count).
    #[inline(always)]
    pub(crate) fn open_entry(&self, entry: u64, counted: u64) {
        self.entry.store(entry | counted << COUNTED_SHIFT, Relaxed);
    }

    /// The entry of the last record, if it is marked.
    pub(crate) fn entry(&self) -> Option<JournalEntry> {
        JournalEntry::unpack(self.entry.load(Relaxed))
    }

    /// What the journal says of the last record (see the module docs). Meaningful once the writer is
    /// gone; of a live writer's shard, it may name a record in progress as cut short.
    pub(crate) fn last_record<'s>(&self, shard: &'s Shard, buckets: &BucketIndex) -> LastRecord<'s> {
        let word = self.entry.load(Relaxed);
        let Some(entry) = JournalEntry::unpack(word) else {
            return LastRecord::None;
        };
        let sum_before = self.sum_before.load(Relaxed);
        let Some(sum) = shard.series_sum(entry.operation, entry.outcome) else {
            return LastRecord::Corrupt(entry);
        };
        let duration_ns = if entry.zero_duration {
            0
        } else {
            match sum.load(Relaxed).wrapping_sub(sum_before) {
                0 => return LastRecord::NotBegun,
                duration_ns if duration_ns > MAX_DURATION_NS => return LastRecord::Corrupt(entry),
                duration_ns => duration_ns,
            }
        };
        let Some(cells) = shard.journaled_cells(&entry, duration_ns, buckets) else {
            return LastRecord::Corrupt(entry);
        };
        let present = cells.counters.iter().flatten().count();
        let written = (cells.counted().wrapping_sub(word >> COUNTED_SHIFT) & 0b11) as usize;
        let holds_one = |cell: &AtomicU64| cell.load(Relaxed) > 0;
        match written {
            written if written == present => LastRecord::Whole,
            // A cell a record added one to holds at least one; undoing must not wrap it.
            written
                if written < present
                    && cells
                        .counters
                        .iter()
                        .flatten()
                        .take(written)
                        .all(|cell| holds_one(cell)) =>
            {
                LastRecord::Half { cells, written }
            }
            // More than the record has, or a written cell at 0: the cells were changed by something else
            // (a corrupted file).
            _ => LastRecord::Corrupt(entry),
        }
    }

    /// Undoes the record a writer left cut short (the writer is gone: the caller holds the shard's lock),
    /// and clears the entry. Returns whether the last record was cut short (or unreadable: then nothing
    /// is touched).
    pub(crate) fn roll_back(&self, shard: &Shard, buckets: &BucketIndex) -> bool {
        let cut_short = match self.last_record(shard, buckets) {
            LastRecord::None => return false,
            LastRecord::Whole => false,
            LastRecord::NotBegun | LastRecord::Corrupt(_) => true,
            LastRecord::Half { cells, written } => {
                cells.sum.store(self.sum_before.load(Relaxed), Relaxed);
                for cell in cells.counters.iter().flatten().take(written) {
                    cell.store(cell.load(Relaxed).wrapping_sub(1), Relaxed);
                }
                true
            }
        };
        self.entry.store(0, Relaxed);
        cut_short
    }

    /// Whether the last record needs [`Journal::roll_back`] (its writer gone): it was cut short, or its
    /// entry cannot be read.
    pub(crate) fn needs_roll_back(&self, shard: &Shard, buckets: &BucketIndex) -> bool {
        !matches!(self.last_record(shard, buckets), LastRecord::None | LastRecord::Whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::buckets::{BucketBounds, DEFAULT_BUCKETS};
    use crate::recording::backing::zeroed_box;
    use crate::recording::shard::{JournaledWriter, RECORD_CELLS, Writer};

    /// Durations at the edges: 0 (the sum does not move), 1 ns, exactly a default bound (5 ms), the
    /// longest a record has.
    const DURATIONS: [u64; 4] = [0, 1, 5_000_000, MAX_DURATION_NS];

    fn buckets() -> Box<BucketIndex> {
        // SAFETY: atomics only; all-zero is valid.
        let buckets: Box<BucketIndex> = unsafe { zeroed_box() };
        buckets.store(&BucketBounds::new(DEFAULT_BUCKETS.to_vec()).unwrap());
        buckets
    }

    fn shard() -> Box<Shard> {
        // SAFETY: a shard is atomics only; all-zero is empty.
        unsafe { zeroed_box() }
    }

    fn cells(shard: &Shard, record: &Placed) -> [u64; 4] {
        let series = shard.series_of(record);
        [
            series.cells.sum_ns.load(Relaxed),
            series.cells.buckets[record.bucket].load(Relaxed),
            series.latency[record.latency].load(Relaxed),
            record
                .pattern
                .map_or(0, |id| shard.patterns[id][record.outcome].load(Relaxed)),
        ]
    }

    #[test]
    fn entries_round_trip_at_their_largest() {
        let buckets = buckets();
        for pattern in [None, Some(0), Some(PATTERN_IDS - 1)] {
            for duration in [0, 7] {
                let word = JournalEntry::of(&Placed::new(15, 3, duration, pattern, &buckets));
                assert_eq!(word >> COUNTED_SHIFT, 0, "the top bits are the total's");
                assert_eq!(
                    JournalEntry::unpack(word | 3 << COUNTED_SHIFT),
                    Some(JournalEntry {
                        operation: 15,
                        outcome: 3,
                        pattern,
                        zero_duration: duration == 0
                    })
                );
            }
        }
        assert_eq!(JournalEntry::unpack(0), None, "a journal nobody wrote holds no record");
    }

    /// A writer killed after its journal and any number of its cells, for durations at the edges, with and
    /// without a pattern, the counting cells before the record holding every mix of totals modulo 4:
    /// the roll-back restores every cell, and a whole record stays whole.
    #[test]
    fn a_record_killed_after_any_cell_is_rolled_back_whole() {
        let buckets = buckets();
        for duration in DURATIONS {
            for pattern in [None, Some(7)] {
                let record = Placed::new(15, 3, duration, pattern, &buckets);
                let present = 2 + usize::from(pattern.is_some());
                for starts in 0..64u64 {
                    for written in 0..=RECORD_CELLS {
                        let shard = shard();
                        // A whole record first, then counts that vary the cells' totals.
                        JournaledWriter::record(&shard, &record);
                        let series = shard.series_of(&record);
                        let counters = [
                            Some(&series.cells.buckets[record.bucket]),
                            Some(&series.latency[record.latency]),
                            pattern.map(|id| &shard.patterns[id][record.outcome]),
                        ];
                        for (index, cell) in counters.iter().enumerate() {
                            if let Some(cell) = cell {
                                cell.fetch_add(starts >> (2 * index) & 3, Relaxed);
                            }
                        }
                        let before = cells(&shard, &record);

                        JournaledWriter::open_and_write(&shard, &record, written);
                        let whole = written > present;
                        let case = format!("{duration} ns, pattern {pattern:?}, starts {starts:06b}, {written} cells");
                        assert_eq!(
                            matches!(shard.control.journal.last_record(&shard, &buckets), LastRecord::Whole),
                            whole,
                            "{case}"
                        );
                        let after = cells(&shard, &record);
                        assert_eq!(shard.control.journal.roll_back(&shard, &buckets), !whole, "{case}");
                        assert_eq!(cells(&shard, &record), if whole { after } else { before }, "{case}");
                        assert!(
                            !shard.control.journal.roll_back(&shard, &buckets),
                            "{case}: nothing is left to undo"
                        );
                        assert_eq!(cells(&shard, &record), if whole { after } else { before }, "{case}");
                    }
                }
            }
        }
    }

    /// Killed between the journal's two stores (the sum before written, the entry not): the previous
    /// record, whole, is left alone.
    #[test]
    fn a_kill_between_the_journals_two_stores_undoes_nothing() {
        let buckets = buckets();
        for previous in DURATIONS {
            for next in DURATIONS {
                let shard = shard();
                let record = Placed::new(4, 1, previous, Some(3), &buckets);
                JournaledWriter::record(&shard, &record);
                JournaledWriter::record(&shard, &record);
                let whole = cells(&shard, &record);
                // The next record's first store.
                let next = Placed::new(4, 1, next, Some(3), &buckets);
                shard
                    .control
                    .journal
                    .sum_before
                    .store(shard.series_of(&next).cells.sum_ns.load(Relaxed), Relaxed);
                assert!(!matches!(
                    shard.control.journal.last_record(&shard, &buckets),
                    LastRecord::Half { .. } | LastRecord::Corrupt(_)
                ));
                shard.control.journal.roll_back(&shard, &buckets);
                assert_eq!(cells(&shard, &record), whole, "{previous} ns then {next:?}");
            }
        }
    }

    /// A journal saying a cell was written that holds 0 (a corrupted file): undoing would wrap it.
    #[test]
    fn a_written_cell_at_zero_is_never_wrapped() {
        let buckets = buckets();
        let shard = shard();
        let record = Placed::new(2, 1, 800, None, &buckets);
        // The journal of a record whose sum and first counting cell were written; the one moved to the
        // second cell, so the total says one was written but the first holds 0.
        JournaledWriter::open_and_write(&shard, &record, 2);
        let series = shard.series_of(&record);
        series.cells.buckets[record.bucket].store(0, Relaxed);
        series.latency[record.latency].store(1, Relaxed);
        let damaged = cells(&shard, &record);
        assert!(matches!(
            shard.control.journal.last_record(&shard, &buckets),
            LastRecord::Corrupt(_)
        ));
        shard.control.journal.roll_back(&shard, &buckets);
        assert_eq!(cells(&shard, &record), damaged, "nothing touched");
    }

    #[test]
    fn a_corrupt_journal_touches_nothing() {
        let buckets = buckets();
        let record = Placed::new(0, 0, 1_000, Some(1), &buckets);
        // Two counting cells, one each: a total before of 3 (mod 4) says three were written.
        let unkeyed = Placed::new(0, 0, 1_000, None, &buckets);
        let corruptions: [(&str, &Placed, u64, u64); 3] = [
            (
                "a pattern the shard does not have",
                &record,
                MARK | 0x7ff << PATTERN_SHIFT,
                0,
            ),
            (
                "a duration no record has",
                &record,
                JournalEntry::of(&record),
                1_000u64.wrapping_sub(MAX_DURATION_NS + 1),
            ),
            (
                "more cells written than the record has",
                &unkeyed,
                JournalEntry::of(&unkeyed) | 3 << COUNTED_SHIFT,
                0,
            ),
        ];
        for (name, record, entry, sum_before) in corruptions {
            let shard = shard();
            JournaledWriter::record(&shard, record);
            let counted = cells(&shard, record);
            shard.control.journal.sum_before.store(sum_before, Relaxed);
            shard.control.journal.entry.store(entry, Relaxed);
            assert!(
                matches!(
                    shard.control.journal.last_record(&shard, &buckets),
                    LastRecord::Corrupt(_)
                ),
                "{name}"
            );
            assert!(shard.control.journal.roll_back(&shard, &buckets), "{name}");
            assert_eq!(cells(&shard, record), counted, "{name}: nothing touched");
            assert_eq!(shard.control.journal.entry(), None, "{name}: cleared");
        }
    }
}
