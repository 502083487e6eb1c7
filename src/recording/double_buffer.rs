//! A value published whole, in two banks: the writer fills the bank readers are not using, then flips
//! the `active` generation to it. Readers check a bank's sequence number around their read and retry if a
//! writer touched it. Unlike a single seqlock, a writer that dies mid-write (its process killed) leaves
//! the published bank intact: readers never see its half-written one, and the next writer overwrites it.
//!
//! # Protocol
//!
//! Writers are serialised by the caller (a lock). A writer takes the bank `(active + 1) % 2`, makes its
//! `seq` odd (`seq | 1`, then one more if it was already odd from a dead writer), fences (`Release`),
//! writes the cells (`Relaxed`), stores the next even `seq` (`Release`), then `active + 1` (`Release`).
//! A reader loads `active` (`Acquire`), then its bank's `seq` (`Acquire`); if odd it retries; it reads the
//! cells (`Relaxed`), fences (`Acquire`), and accepts the read if `seq` and `active` are unchanged.
//!
//! All-zero is a valid value: generation 0, both banks zero.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Reads retried this many times before giving up (a writer per microsecond would be needed to starve a
/// reader that long).
const READ_ATTEMPTS: usize = 1 << 10;

/// One bank: a sequence number and `N` cells.
#[repr(C)]
struct Bank<const N: usize> {
    seq: AtomicU64,
    cells: [AtomicU64; N],
}

/// A double-buffered value of `N` cells.
#[repr(C)]
pub(crate) struct DoubleBuffer<const N: usize> {
    /// Writes published so far; the readable bank is `active % 2`.
    active: AtomicU64,
    banks: [Bank<N>; 2],
}

impl<const N: usize> DoubleBuffer<N> {
    /// Publishes a new value: `write` fills the cells of the spare bank (which hold an older value).
    /// The caller must keep other writers out.
    pub(crate) fn write(&self, write: impl FnOnce(&[AtomicU64; N])) {
        let generation = self.active.load(Ordering::Relaxed);
        let bank = &self.banks[((generation + 1) % 2) as usize];
        let seq = bank.seq.load(Ordering::Relaxed);
        let odd = seq | 1;
        let odd = if odd == seq { odd + 2 } else { odd };
        bank.seq.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        write(&bank.cells);
        bank.seq.store(odd + 1, Ordering::Release);
        self.active.store(generation.wrapping_add(1), Ordering::Release);
    }

    /// Reads the published value consistently: `read` may run more than once. `None` if writers kept
    /// changing it through every attempt.
    pub(crate) fn read<T>(&self, read: impl Fn(u64, &[AtomicU64; N]) -> T) -> Option<T> {
        for _ in 0..READ_ATTEMPTS {
            let generation = self.active.load(Ordering::Acquire);
            let bank = &self.banks[(generation % 2) as usize];
            let seq = bank.seq.load(Ordering::Acquire);
            if seq & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let value = read(generation, &bank.cells);
            fence(Ordering::Acquire);
            if bank.seq.load(Ordering::Relaxed) == seq && self.active.load(Ordering::Relaxed) == generation {
                return Some(value);
            }
        }
        None
    }

    /// How many values were published: a cheap way to notice a change.
    pub(crate) fn generation(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    fn zeroed<const N: usize>() -> Box<DoubleBuffer<N>> {
        // SAFETY: atomics only; all-zero is generation 0 with empty banks.
        unsafe { crate::recording::backing::zeroed_box() }
    }

    fn contents(buffer: &DoubleBuffer<4>) -> (u64, Vec<u64>) {
        buffer
            .read(|generation, cells| (generation, cells.iter().map(|c| c.load(Relaxed)).collect()))
            .expect("no writer is running")
    }

    #[test]
    fn starts_at_zero_and_publishes_whole_values() {
        let buffer = zeroed::<4>();
        assert_eq!(contents(&buffer), (0, vec![0; 4]));
        buffer.write(|cells| cells.iter().for_each(|c| c.store(7, Relaxed)));
        assert_eq!(contents(&buffer), (1, vec![7; 4]));
        buffer.write(|cells| cells[0].store(1, Relaxed));
        assert_eq!(
            contents(&buffer).1,
            vec![1, 0, 0, 0],
            "the spare bank held generation 0"
        );
    }

    #[test]
    fn a_writer_that_dies_mid_write_leaves_the_published_value() {
        let buffer = zeroed::<4>();
        buffer.write(|cells| cells.iter().for_each(|c| c.store(5, Relaxed)));
        // A writer killed halfway through the spare bank: odd sequence, half the cells written.
        let spare = &buffer.banks[0];
        spare.seq.store(spare.seq.load(Relaxed) | 1, Relaxed);
        spare.cells[0].store(99, Relaxed);
        assert_eq!(contents(&buffer), (1, vec![5; 4]));
        buffer.write(|cells| cells.iter().for_each(|c| c.store(6, Relaxed)));
        assert_eq!(
            contents(&buffer),
            (2, vec![6; 4]),
            "the next writer takes over the bank"
        );
        assert_eq!(buffer.banks[0].seq.load(Relaxed) % 2, 0);
    }

    #[test]
    fn readers_never_see_a_mix() {
        let buffer = zeroed::<16>();
        let mut seen = 0u32;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for round in 1..=20_000u64 {
                    buffer.write(|cells| cells.iter().for_each(|c| c.store(round, Relaxed)));
                }
            });
            for _ in 0..20_000 {
                if let Some(cells) = buffer.read(|_, cells| cells.iter().map(|c| c.load(Relaxed)).collect::<Vec<_>>()) {
                    assert!(cells.iter().all(|c| *c == cells[0]), "torn read: {cells:?}");
                    seen += 1;
                }
            }
        });
        assert!(seen > 0, "some reads succeeded");
    }
}
