//! A record into a state file counts whole or not at all, even when its process is killed halfway.
//!
//! # Protocol
//!
//! A record adds to up to four cells of its writer's shard: the sum (by the duration), and by one each the
//! classic bucket, the latency bucket and the pattern's outcome. The writer owns the shard, so it knows
//! each cell's value before the record, and no one else writes them. It writes down the sum before the
//! record, then the record's description with the `OPEN` bit and the lowest bit (parity) of each of the
//! other three cells before the record, then the cells, then the description without the bit. Compiler
//! fences keep that program order; the processor keeps it too, for what matters here: a process dies at
//! an instruction boundary, every store before that boundary has retired and reaches memory (a killed
//! process's stores are not discarded, only never followed), and whoever looks at the shard afterwards
//! has first taken its lock from the kernel, which orders it after the death. So a dead writer left
//! either a closed journal (its last record complete) or an open one, which [`Journal::roll_back`]
//! undoes: it restores the sum, and takes one back from each counting cell whose parity differs from
//! the one written down (such a cell holds its value before the record plus one, or its value before).
//! Two words per record instead of one per cell: a record into a file stores 3 words more than one in
//! memory, not 6.
//!
//! In process memory the journal is not used: a process that dies takes its counts with it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::recording::shard::{Placed, Shard};

// A latency bucket index fits the entry's 11 bits.
const _: () = assert!(crate::recording::latency::LATENCY_BUCKETS <= 1 << 11);

/// Set in the entry while the record's cells are being written.
const OPEN: u64 = 1 << 63;

/// Where the entry keeps the parities of the bucket, latency bucket and pattern cells before the record
/// (bits 34, 35, 36: above the description, which takes 34 bits).
const PARITY_SHIFT: u32 = 34;

/// The journal of one shard: the record in progress and what undoing it takes.
#[repr(C)]
pub(crate) struct Journal {
    /// A packed [`JournalEntry`], with [`OPEN`] and the counting cells' parities while its cells are
    /// being written; 0 before any record.
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

/// What a record writes, packed into one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JournalEntry {
    pub(crate) operation: usize,
    pub(crate) outcome: usize,
    pub(crate) bucket: usize,
    pub(crate) latency: usize,
    pub(crate) pattern: Option<usize>,
}

impl JournalEntry {
    /// The entry of `record`.
    #[inline(always)]
    pub(crate) fn of(record: &Placed) -> u64 {
        (record.operation as u64 & 0xf)
            | (record.outcome as u64 & 0x3) << 4
            | (record.bucket as u64 & 0x3f) << 6
            | (record.latency as u64 & 0x7ff) << 12
            | (record.pattern.map_or(0, |id| id as u64 + 1) & 0x7ff) << 23
    }

    /// Unpacks an entry word (the caller checks indexes against the shard).
    fn unpack(word: u64) -> Self {
        let pattern = (word >> 23) & 0x7ff;
        Self {
            operation: (word & 0xf) as usize,
            outcome: ((word >> 4) & 0x3) as usize,
            bucket: ((word >> 6) & 0x3f) as usize,
            latency: ((word >> 12) & 0x7ff) as usize,
            pattern: pattern.checked_sub(1).map(|id| id as usize),
        }
    }
}

impl Journal {
    /// Writes down what undoing a record takes (the sum before it; the counting cells' parities before
    /// it, `parities` bit `i` for `counters[i]`), then opens the entry.
    #[inline(always)]
    pub(crate) fn open(&self, entry: u64, sum_before: u64, parities: u64) {
        self.sum_before.store(sum_before, Relaxed);
        self.entry
            .store(entry | (parities & 0b111) << PARITY_SHIFT | OPEN, Relaxed);
    }

    /// Closes the entry: the record is complete.
    #[inline(always)]
    pub(crate) fn close(&self, entry: u64) {
        self.entry.store(entry, Relaxed);
    }

    /// Whether a record was left half-written.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.entry.load(Relaxed) & OPEN != 0
    }

    /// The record in progress or left half-written, if the entry is open (for `check`: the caller checks
    /// its indexes against the shard, as [`Journal::roll_back`] does).
    pub(crate) fn open_entry(&self) -> Option<JournalEntry> {
        let word = self.entry.load(Relaxed);
        (word & OPEN != 0).then(|| JournalEntry::unpack(word & !OPEN))
    }

    /// Undoes a record its writer left half-written (the writer is gone: the caller holds the shard's
    /// lock). Returns whether there was one. An entry naming cells the shard does not have (a corrupted
    /// file) is closed without touching anything.
    pub(crate) fn roll_back(&self, shard: &Shard) -> bool {
        let word = self.entry.load(Relaxed);
        if word & OPEN == 0 {
            return false;
        }
        let entry = JournalEntry::unpack(word & !OPEN);
        if let Some(cells) = shard.journaled_cells(&entry) {
            cells.sum.store(self.sum_before.load(Relaxed), Relaxed);
            for (index, cell) in cells.counters.iter().enumerate() {
                if let Some(cell) = cell {
                    let value = cell.load(Relaxed);
                    if value & 1 != (word >> (PARITY_SHIFT + index as u32)) & 1 {
                        cell.store(value.wrapping_sub(1), Relaxed);
                    }
                }
            }
        }
        self.entry.store(word & !OPEN, Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;
    use crate::recording::latency::LATENCY_BUCKETS;
    use crate::recording::shard::{JournaledWriter, RECORD_CELLS, Writer};

    const LAST: usize = LATENCY_BUCKETS - 1;

    fn placed(pattern: Option<usize>) -> Placed {
        Placed {
            operation: 15,
            outcome: 3,
            duration_ns: 5,
            bucket: 32,
            latency: LAST,
            pattern,
        }
    }

    #[test]
    fn entries_round_trip_at_their_largest() {
        for pattern in [None, Some(0), Some(1024)] {
            let record = placed(pattern);
            let entry = JournalEntry::unpack(JournalEntry::of(&record));
            assert_eq!(
                (
                    entry.operation,
                    entry.outcome,
                    entry.bucket,
                    entry.latency,
                    entry.pattern
                ),
                (15, 3, 32, LAST, pattern)
            );
        }
    }

    fn complete(shard: &Shard) -> [u64; 4] {
        [
            shard.series[15][3].sum_ns.load(Relaxed),
            shard.series[15][3].buckets[32].load(Relaxed),
            shard.latency[15][3][LAST].load(Relaxed),
            shard.patterns[7][3].load(Relaxed),
        ]
    }

    /// A writer killed after its journal and any number of its cells, with the cells before the record
    /// holding any mix of odd and even counts: the rollback restores every cell, and nothing is left
    /// to undo after a whole record.
    #[test]
    fn a_record_killed_after_any_cell_is_rolled_back_whole() {
        for starts in 0..8u64 {
            for written in 0..=RECORD_CELLS {
                // SAFETY: a shard is atomics only; all-zero is empty.
                let shard: Box<Shard> = unsafe { zeroed_box() };
                let record = placed(Some(7));
                // Whole records first, a different number per counting cell, so that their parities
                // differ.
                JournaledWriter::record(&shard, &record);
                let [_, bucket, latency, pattern] = shard
                    .journaled_cells(&JournalEntry::unpack(JournalEntry::of(&record)))
                    .map(|cells| [Some(cells.sum), cells.counters[0], cells.counters[1], cells.counters[2]])
                    .unwrap();
                for (bit, cell) in [bucket, latency, pattern].into_iter().enumerate() {
                    if starts >> bit & 1 == 1 {
                        cell.unwrap().fetch_add(1, Relaxed);
                    }
                }
                assert!(
                    !shard.control.journal.roll_back(&shard),
                    "nothing to undo after a whole record"
                );
                let whole = complete(&shard);

                JournaledWriter::open_and_write(&shard, &record, written);
                assert!(shard.control.journal.is_open());
                assert!(shard.control.journal.roll_back(&shard));
                assert_eq!(
                    complete(&shard),
                    whole,
                    "killed after {written} cells, parities {starts:03b}"
                );
                assert!(!shard.control.journal.is_open());
            }
        }
    }

    #[test]
    fn a_corrupt_entry_touches_nothing() {
        // SAFETY: a shard is atomics only; all-zero is empty.
        let shard: Box<Shard> = unsafe { zeroed_box() };
        shard.control.journal.sum_before.store(99, Relaxed);
        shard.control.journal.entry.store(OPEN | 0x7ff << 12, Relaxed); // latency bucket 2047: no such cell
        assert!(shard.control.journal.roll_back(&shard));
        assert_eq!(shard.series[0][0].sum_ns.load(Relaxed), 0);
    }
}
