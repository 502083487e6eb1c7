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
//!
//! `loom_tests` model-check the protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).

use crate::sync::atomic::{AtomicU64, Ordering, fence};

/// Reads retried this many times before giving up (a writer per microsecond would be needed to starve a
/// reader that long).
#[cfg(not(loom))]
const READ_ATTEMPTS: usize = 1 << 10;
/// A few attempts in a model: each is another branch for loom to explore.
#[cfg(loom)]
const READ_ATTEMPTS: usize = 3;

/// One bank: a sequence number and `N` cells.
#[repr(C)]
struct Bank<const N: usize, A> {
    seq: AtomicU64,
    cells: [A; N],
}

/// A double-buffered value of `N` cells of type `A`.
///
/// The cells are `std`'s `AtomicU64` (the callers fill and read them with the crate's other atomics), and
/// the protocol's own words come from the `sync` facade; the loom models make the cells loom's too, so
/// that the model sees every cell a torn read could mix.
#[repr(C)]
pub(crate) struct DoubleBuffer<const N: usize, A = std::sync::atomic::AtomicU64> {
    /// Writes published so far; the readable bank is `active % 2`.
    active: AtomicU64,
    banks: [Bank<N, A>; 2],
}

impl<const N: usize, A> DoubleBuffer<N, A> {
    /// Generation 0 with banks of `empty()` cells, on the heap (the crate's live in zeroed region memory;
    /// loom's atomics cannot be zeroed).
    #[cfg(all(test, loom))]
    pub(crate) fn new(empty: impl Fn() -> A) -> Self {
        let bank = || Bank {
            seq: AtomicU64::new(0),
            cells: std::array::from_fn(|_| empty()),
        };
        Self {
            active: AtomicU64::new(0),
            banks: [bank(), bank()],
        }
    }

    /// Publishes a new value: `write` fills the cells of the spare bank (which hold an older value).
    /// The caller must keep other writers out.
    pub(crate) fn write(&self, write: impl FnOnce(&[A; N])) {
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
    pub(crate) fn read<T>(&self, read: impl Fn(u64, &[A; N]) -> T) -> Option<T> {
        for _ in 0..READ_ATTEMPTS {
            let generation = self.active.load(Ordering::Acquire);
            let bank = &self.banks[(generation % 2) as usize];
            let seq = bank.seq.load(Ordering::Acquire);
            if seq & 1 == 1 {
                crate::sync::hint::spin_loop();
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

/// Model checks of the protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`): every read a
/// reader accepts is one whole published value, under every interleaving and every value the memory
/// model lets a `Relaxed` load return.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::atomic::Ordering::Relaxed;
    use crate::sync::{ModelThread, model, run_threads};

    /// Cells loom sees, as the protocol's own words.
    type Buffer = DoubleBuffer<2, AtomicU64>;

    fn buffer() -> Arc<Buffer> {
        Arc::new(DoubleBuffer::new(|| AtomicU64::new(0)))
    }

    /// Generation `g` holds `g` in every cell: a read is whole when its cells all equal its generation.
    fn publish(buffer: &Buffer, generation: u64) {
        buffer.write(|cells| cells.iter().for_each(|cell| cell.store(generation, Relaxed)));
    }

    /// A thread that publishes `generations`, one after the other.
    fn writer(buffer: &Arc<Buffer>, generations: std::ops::RangeInclusive<u64>) -> ModelThread<()> {
        let buffer = Arc::clone(buffer);
        Box::new(move || generations.for_each(|generation| publish(&buffer, generation)))
    }

    /// A thread that reads twice, checking what it accepts.
    fn reader(buffer: &Arc<Buffer>) -> ModelThread<()> {
        let buffer = Arc::clone(buffer);
        Box::new(move || {
            let mut last = 0;
            for _ in 0..2 {
                if let Some((generation, cells)) =
                    buffer.read(|generation, cells| (generation, [cells[0].load(Relaxed), cells[1].load(Relaxed)]))
                {
                    assert_eq!(cells, [generation; 2], "torn read accepted");
                    assert!(generation >= last, "generations never go back");
                    last = generation;
                }
            }
        })
    }

    /// A writer publishes generations 1 and 2 (the second into the bank generation 0 was read from)
    /// while a reader reads twice.
    #[test]
    fn loom_readers_accept_only_whole_values() {
        model(2, || {
            let buffer = buffer();
            run_threads(vec![writer(&buffer, 1..=2), reader(&buffer)]);
            assert_eq!(
                buffer.read(|generation, cells| (generation, cells[0].load(Relaxed), cells[1].load(Relaxed))),
                Some((2, 2, 2)),
                "at rest, the last value reads"
            );
        });
    }

    /// A writer died halfway through the spare bank (odd sequence, one cell written); the next writer
    /// takes the bank over (generation 2), then writes the other one (generation 3) while a reader reads
    /// twice: the reader sees whole generations 1, 2 or 3, never the dead write.
    #[test]
    fn loom_a_dead_writers_half_write_is_never_read() {
        model(2, || {
            let buffer = buffer();
            publish(&buffer, 1);
            let spare = &buffer.banks[0];
            spare.seq.store(spare.seq.load(Relaxed) | 1, Relaxed);
            spare.cells[0].store(99, Relaxed);
            run_threads(vec![writer(&buffer, 2..=3), reader(&buffer)]);
        });
    }
}
