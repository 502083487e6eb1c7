//! A record into a state file counts whole or not at all, even when its process is killed halfway.
//!
//! # Protocol
//!
//! A record adds to up to four cells of its writer's shard (sum, bucket, latency bucket, pattern). The
//! writer owns the shard, so it knows each cell's value before the record. It writes those values into
//! the shard's journal, then the record's description with the `OPEN` bit, then the cells, then the
//! description without the bit. Compiler fences keep that program order; the processor keeps it too, for
//! what matters here: a process dies at an instruction boundary, every store before that boundary has
//! retired and reaches memory (a killed process's stores are not discarded, only never followed), and
//! whoever looks at the shard afterwards has first taken its lock from the kernel, which orders it after
//! the death. So a dead writer left either a closed journal (its last record complete) or an open one
//! with the values from before that record, which [`Journal::roll_back`] restores.
//!
//! In process memory the journal is not used: a process that dies takes its counts with it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::recording::shard::{Placed, Shard};

// A latency bucket index fits the entry's 11 bits.
const _: () = assert!(crate::recording::latency::LATENCY_BUCKETS <= 1 << 11);

/// Set in the entry while the record's cells are being written.
const OPEN: u64 = 1 << 63;

/// The journal of one shard: the record in progress and its cells' values before it.
#[repr(C)]
pub(crate) struct Journal {
    /// A packed [`JournalEntry`], with [`OPEN`] while its cells are being written; 0 before any record.
    entry: AtomicU64,
    /// Sum, bucket, latency bucket and pattern cells before the record.
    before: [AtomicU64; 4],
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
    /// Writes down the cells' values before a record, then opens the entry.
    #[inline(always)]
    pub(crate) fn open(&self, entry: u64, before: [u64; 4]) {
        for (cell, value) in self.before.iter().zip(before) {
            cell.store(value, Relaxed);
        }
        self.entry.store(entry | OPEN, Relaxed);
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
            for (cell, before) in cells.iter().zip(&self.before) {
                if let Some(cell) = cell {
                    cell.store(before.load(Relaxed), Relaxed);
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
    use crate::recording::shard::{JournaledWriter, Writer};

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

    #[test]
    fn a_record_killed_halfway_is_rolled_back_whole() {
        // SAFETY: a shard is atomics only; all-zero is empty.
        let shard: Box<Shard> = unsafe { zeroed_box() };
        let record = placed(Some(7));
        JournaledWriter::record(&shard, &record);
        let complete = |shard: &Shard| {
            [
                shard.series[15][3].sum_ns.load(Relaxed),
                shard.series[15][3].buckets[32].load(Relaxed),
                shard.latency[15][3][LAST].load(Relaxed),
                shard.patterns[7][3].load(Relaxed),
            ]
        };
        assert_eq!(complete(&shard), [5, 1, 1, 1]);
        assert!(
            !shard.control.journal.roll_back(&shard),
            "nothing to undo after a whole record"
        );

        // The next record dies after its journal and two of its four cells.
        let cells = shard
            .journaled_cells(&JournalEntry::unpack(JournalEntry::of(&record)))
            .unwrap();
        shard.control.journal.open(JournalEntry::of(&record), [5, 1, 1, 1]);
        cells[0].unwrap().store(10, Relaxed);
        cells[1].unwrap().store(2, Relaxed);
        assert!(shard.control.journal.roll_back(&shard));
        assert_eq!(complete(&shard), [5, 1, 1, 1], "back to the last whole record");
        assert!(!shard.control.journal.is_open());
    }

    #[test]
    fn a_corrupt_entry_touches_nothing() {
        // SAFETY: a shard is atomics only; all-zero is empty.
        let shard: Box<Shard> = unsafe { zeroed_box() };
        shard.control.journal.before[0].store(99, Relaxed);
        shard.control.journal.entry.store(OPEN | 0x7ff << 12, Relaxed); // latency bucket 2047: no such cell
        assert!(shard.control.journal.roll_back(&shard));
        assert_eq!(shard.series[0][0].sum_ns.load(Relaxed), 0);
    }
}
