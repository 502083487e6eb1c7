//! [`SeqSnapshot`]: a sequence-locked snapshot, the period it describes and its atomic cells. One writer at a
//! time publishes a consistent set of cells, and readers detect and retry torn reads without ever blocking
//! the writer. The rolling windows' rings are arrays of them.
//!
//! # Protocol
//!
//! `seq` is even when the snapshot is stable and odd while a writer is inside. A writer enters only by
//! moving `seq` from even to odd with a compare-and-swap (so writers never wait: a busy snapshot is skipped),
//! writes the cells, and leaves by storing the next even value with `Release`. A reader loads `seq`
//! (`Acquire`), reads the cells, fences (`Acquire`) and loads `seq` again: equal and even means nothing
//! was written in between. Cells are atomics, so a torn read is a wrong value, never undefined behaviour.
//!
//! All-zero is a valid empty snapshot (the period is stored plus one), so snapshots can live in zeroed statics.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// How often a reader retries a snapshot that keeps changing before giving up on it.
const READ_ATTEMPTS: usize = 64;

/// One snapshot: the period it describes and its `N` cells, under the sequence lock `seq`.
pub(crate) struct SeqSnapshot<const N: usize> {
    seq: AtomicU64,
    /// The period plus one; zero while the snapshot was never written.
    period_plus_one: AtomicU64,
    cells: [AtomicU64; N],
}

impl<const N: usize> SeqSnapshot<N> {
    /// An empty snapshot.
    pub(crate) const fn new() -> Self {
        Self {
            seq: AtomicU64::new(0),
            period_plus_one: AtomicU64::new(0),
            cells: [const { AtomicU64::new(0) }; N],
        }
    }

    /// The period the snapshot holds, read without the protocol (a hint: [`SeqSnapshot::read`] confirms it).
    pub(crate) fn period(&self) -> Option<u64> {
        self.period_plus_one.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Whether the snapshot last held `period`, read without the protocol (a hint to skip rewriting it).
    pub(crate) fn holds_period(&self, period: u64) -> bool {
        self.period_plus_one.load(Ordering::Relaxed) == period.wrapping_add(1)
    }

    /// Writes `period` and lets `write` fill the cells, unless another writer is inside (then returns
    /// `false` at once).
    pub(crate) fn try_write(&self, period: u64, write: impl FnOnce(&[AtomicU64])) -> bool {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        self.period_plus_one.store(period.wrapping_add(1), Ordering::Relaxed);
        write(&self.cells);
        self.seq.store(seq + 2, Ordering::Release);
        true
    }

    /// Reads the snapshot consistently: `read` gets the period and cells and may run more than once.
    /// `None` if the snapshot is empty or writers kept it busy through every attempt.
    pub(crate) fn read<T>(&self, read: impl Fn(u64, &[AtomicU64]) -> T) -> Option<T> {
        for _ in 0..READ_ATTEMPTS {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let period_plus_one = self.period_plus_one.load(Ordering::Relaxed);
            let value = read(period_plus_one.wrapping_sub(1), &self.cells);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return (period_plus_one != 0).then_some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    #[test]
    fn reads_see_whole_writes_only() {
        let snapshot = SeqSnapshot::<8>::new();
        assert_eq!(snapshot.read(|_, _| ()), None, "empty snapshot");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for round in 1..=20_000u64 {
                    snapshot.try_write(round, |cells| cells.iter().for_each(|c| c.store(round, Relaxed)));
                }
            });
            for _ in 0..20_000 {
                if let Some((period, cells)) =
                    snapshot.read(|p, cells| (p, cells.iter().map(|c| c.load(Relaxed)).collect::<Vec<_>>()))
                {
                    assert!(
                        cells.iter().all(|c| *c == period),
                        "torn read: period {period}, cells {cells:?}"
                    );
                }
            }
        });
    }

    #[test]
    fn a_busy_snapshot_is_skipped_not_waited_for() {
        let snapshot = SeqSnapshot::<1>::new();
        let nested = snapshot.try_write(1, |_| {
            assert!(!snapshot.try_write(2, |_| {}), "second writer must not enter")
        });
        assert!(nested);
        assert_eq!(snapshot.read(|p, _| p), Some(1));
    }
}
