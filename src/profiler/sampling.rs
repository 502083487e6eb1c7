//! Which records are sampled: a per-thread countdown.
//!
//! Each thread keeps the number of records left until its next sample in a `const`-initialised
//! thread-local `Cell<u32>`: no destructor (which would keep `dlclose` from unloading the library, see
//! `shard`), no lazy initialisation, no shared atomic. With `sample_every = N`, the N-th, 2N-th, ...
//! record of every thread is sampled, exactly.
//!
//! The countdown belongs to the thread, not to a monitor: a thread recording into two sampling monitors
//! takes 1 in N of its records in total. When N changes, a thread finishes its current countdown before
//! the new rate applies. The profiler reads the countdown only while sampling is on, so with sampling off
//! a record never touches it.

use std::cell::Cell;

thread_local! {
    /// Records this thread has left until its next sample, counting the next one; 0 before its first
    /// sampled-mode record.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

/// Counts one record of the calling thread with sampling on (`every >= 1`); true when it is sampled.
#[inline(always)]
pub(crate) fn tick(every: u32) -> bool {
    let left = COUNTDOWN.get();
    if left > 1 {
        COUNTDOWN.set(left - 1);
        false
    } else {
        restart(left, every)
    }
}

/// The end of a countdown (`left == 1`: this record is sampled) or a thread's first record (`left == 0`,
/// counted as the first of `every`).
#[inline]
fn restart(left: u32, every: u32) -> bool {
    let sampled = left == 1 || every == 1;
    COUNTDOWN.set(if sampled { every } else { every.saturating_sub(1) });
    sampled
}

/// The calling thread's countdown, for tests.
#[cfg(test)]
pub(crate) fn countdown() -> u32 {
    COUNTDOWN.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `records` ticks at `every` on a fresh thread; the indexes (1-based) of the sampled ones.
    fn sampled_on_fresh_thread(every: u32, records: u32) -> Vec<u32> {
        std::thread::spawn(move || (1..=records).filter(|_| tick(every)).collect())
            .join()
            .expect("thread ran")
    }

    #[test]
    fn exactly_the_nth_records_of_each_thread_are_sampled() {
        for every in [1, 2, 3, 7, 100, 1_000] {
            let sampled = sampled_on_fresh_thread(every, 10_000);
            let expected: Vec<u32> = (1..=10_000).filter(|i| i % every == 0).collect();
            assert_eq!(sampled, expected, "every {every}");
        }
    }

    #[test]
    fn threads_count_independently() {
        let per_thread: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..100_003).filter(|_| tick(100)).count()))
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread ran")).collect()
        });
        assert_eq!(per_thread, [1_000; 4]);
    }

    #[test]
    fn a_new_rate_applies_after_the_current_countdown() {
        std::thread::spawn(|| {
            assert!((0..9).all(|_| !tick(10)));
            assert_eq!(countdown(), 1);
            assert!(tick(3), "the 10th record ends the old countdown");
            assert_eq!(countdown(), 3);
            assert_eq!((0..9).filter(|_| tick(3)).count(), 3);
        })
        .join()
        .expect("thread ran");
    }
}
