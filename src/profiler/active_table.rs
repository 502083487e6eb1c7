//! Which stack table sampling threads write, and how it is replaced (on reset or a new `max_stacks`)
//! without a lock on the sampling path.
//!
//! # Protocol
//!
//! Modelled on the hot/cold counts of Go `client_golang`'s histogram. Two table pointers, `tables[0]` and
//! `tables[1]`; bit 63 of `started_and_hot` says which one is hot, its low 63 bits count the samples
//! that ever started writing. A sampling thread:
//!
//! 1. `fetch_add(1)` on `started_and_hot` (`Acquire`): this both counts it in and tells it which table
//!    is hot, `h`;
//! 2. loads `tables[h]` and, unless it is null, adds its sample there;
//! 3. `fetch_add(1)` on `finished[h]` (`Release`) and never touches the table again.
//!
//! A replacement, serialised with every other control-side access by `control`:
//!
//! 1. stores the new table in the cold pointer (no thread uses it: its writers were drained by the
//!    previous replacement);
//! 2. flips bit 63 with `fetch_xor` (`AcqRel`): samples that start from now on go to the new table. The
//!    value it returns says how many samples started before the flip; those since the previous flip all
//!    went to the old table;
//! 3. waits (yielding) until `finished[old]` reaches that number: no thread can still hold the old table;
//! 4. zeroes `finished[old]`, takes the old table out of its pointer and hands it back, to be cleared
//!    and reinstalled or dropped.
//!
//! Renders read the hot table while holding `control`, so it cannot be replaced or freed under them;
//! sampling threads go on adding to it meanwhile (every counter is atomic).
//!
//! # `fork()`
//!
//! A sample in flight when a thread forks never finishes in the child (its thread is not copied), so a
//! replacement in the child would wait for it forever. Around `fork()` the library holds `control`
//! (no replacement is half done) and, in the child, [`ControlGuard::forget_samples_in_flight`] counts
//! every sample started so far as finished: the child has one thread, which is forking, not sampling. A
//! sample cut off that way may leave a reserved entry of the table unpublished (capacity lost, as when
//! two threads race for an entry) or one sample's duration without its count; nothing worse.
//! `lifecycle.rs` does this for the process-wide monitor's profiler.
//!
//! Bit 63 is also carried into by the start count after 2^63 samples: at a billion samples a second,
//! after 292 years. The protocol assumes it never happens.
//!
//! `loom_tests` model-check the swap (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).

use std::ptr;

use crate::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
#[cfg(not(loom))]
use crate::sync::atomic::WithMut;
use crate::sync::atomic::{AtomicPtr, AtomicU64};

use crossbeam_utils::CachePadded;
use std::sync::MutexGuard;

use crate::sync::Mutex;

use super::stack_table::StackTable;

const HOT_BIT: u64 = 1 << 63;

/// The table sampling threads write; see the module documentation for the protocol.
pub(crate) struct ActiveTable {
    /// Written by every sample: on a cache line of its own, so that samples do not keep evicting the
    /// line holding the fields every record reads (the monitor's `sample_every` and operation count).
    counts: CachePadded<SampleCounts>,
    /// Owned tables (from `Box::into_raw`), or null.
    tables: [AtomicPtr<StackTable>; 2],
    control: Mutex<Control>,
}

/// The counts of the protocol.
struct SampleCounts {
    /// Bit 63: index of the hot table. Bits 0..63: samples ever started.
    started_and_hot: AtomicU64,
    /// Samples finished with each table since it last became hot.
    finished: [AtomicU64; 2],
}

/// State of the control side.
struct Control {
    /// Samples started before the last flip.
    started_before_last_flip: u64,
}

impl ActiveTable {
    /// No table: samples are dropped until one is installed.
    pub(crate) fn new() -> Self {
        Self {
            counts: CachePadded::new(SampleCounts {
                started_and_hot: AtomicU64::new(0),
                finished: [AtomicU64::new(0), AtomicU64::new(0)],
            }),
            tables: [AtomicPtr::new(ptr::null_mut()), AtomicPtr::new(ptr::null_mut())],
            control: Mutex::new(Control {
                started_before_last_flip: 0,
            }),
        }
    }

    /// Runs `add` on the hot table, if there is one. Lock-free: three atomic operations around `add`.
    #[inline]
    pub(crate) fn with_hot(&self, add: impl FnOnce(&StackTable)) {
        let hot = (self.counts.started_and_hot.fetch_add(1, Acquire) >> 63) as usize;
        let table = self.tables[hot].load(Acquire);
        // SAFETY: a non-null pointer in `tables` comes from `Box::into_raw`, and the table it points to is
        // only taken back (and so possibly freed) by `ControlGuard::replace` once `finished[hot]` counts every
        // sample that started while `hot` was hot, this one included: this one has not finished yet.
        if let Some(table) = unsafe { table.as_ref() } {
            add(table);
        }
        self.counts.finished[hot].fetch_add(1, Release);
    }

    /// Exclusive access to the control side: reading and replacing the table.
    pub(crate) fn control(&self) -> ControlGuard<'_> {
        ControlGuard {
            active: self,
            control: self.control.lock(),
        }
    }
}

impl Drop for ActiveTable {
    fn drop(&mut self) {
        for table in &mut self.tables {
            let table = table.with_mut(|table| std::mem::replace(table, ptr::null_mut()));
            if !table.is_null() {
                // SAFETY: the pointer came from `Box::into_raw` and, with `&mut self`, no thread samples.
                drop(unsafe { Box::from_raw(table) });
            }
        }
    }
}

/// The control side, held: no replacement can run concurrently.
pub(crate) struct ControlGuard<'a> {
    active: &'a ActiveTable,
    control: MutexGuard<'a, Control>,
}

impl ControlGuard<'_> {
    fn hot(&self) -> usize {
        // Bit 63 only changes under `control`, which this guard holds.
        (self.active.counts.started_and_hot.load(Relaxed) >> 63) as usize
    }

    /// The table samples go to, if any, for reading.
    pub(crate) fn table(&self) -> Option<&StackTable> {
        let table = self.active.tables[self.hot()].load(Acquire);
        // SAFETY: tables are only freed after `replace` took them out, and `replace` needs this guard
        // borrowed mutably: the table outlives this shared borrow of the guard.
        unsafe { table.as_ref() }
    }

    /// In a child process just forked while this guard was held: counts every sample that started
    /// (in the parent) as finished, so that a later [`ControlGuard::replace`] does not wait for threads
    /// that do not exist here. Only for that moment: the child then has one thread, and it is not
    /// sampling.
    pub(crate) fn forget_samples_in_flight(&mut self) {
        let counts = &self.active.counts;
        let started = counts.started_and_hot.load(Relaxed) & !HOT_BIT;
        let on_hot = started.wrapping_sub(self.control.started_before_last_flip);
        counts.finished[self.hot()].store(on_hot, Release);
    }

    /// Makes `next` the table samples go to, waits until no thread can still be writing the previous
    /// one, and returns it.
    pub(crate) fn replace(&mut self, next: Option<Box<StackTable>>) -> Option<Box<StackTable>> {
        let active = self.active;
        let old = self.hot();
        let new = old ^ 1;
        let next = next.map_or(ptr::null_mut(), Box::into_raw);
        let stale = active.tables[new].swap(next, Release);
        debug_assert!(stale.is_null(), "the cold table was taken out at the previous flip");
        let started = active.counts.started_and_hot.fetch_xor(HOT_BIT, AcqRel) & !HOT_BIT;
        let started_on_old = started.wrapping_sub(self.control.started_before_last_flip);
        self.control.started_before_last_flip = started;
        while active.counts.finished[old].load(Acquire) != started_on_old {
            crate::sync::thread::yield_now();
        }
        active.counts.finished[old].store(0, Relaxed);
        let previous = active.tables[old].swap(ptr::null_mut(), Acquire);
        // SAFETY: non-null pointers in `tables` come from `Box::into_raw`; every sample that could reach
        // this table has finished (`finished[old]`, `Acquire`, synchronises with their `Release`), and new
        // samples go to `tables[new]`, so this is now the only reference.
        (!previous.is_null()).then(|| unsafe { Box::from_raw(previous) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::profiler::capture::StackKey;
    use crate::recording::operation::Operation;

    #[test]
    fn a_replaced_table_receives_no_sample_after_it_is_handed_back() {
        let active = ActiveTable::new();
        let key = StackKey::capture(Operation::GET, b"k", usize::MAX);
        active.control().replace(Some(Box::new(StackTable::new(4))));
        let stop = AtomicBool::new(false);
        let mut handed_back = Vec::new();
        let added = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let mut added = 0u64;
                        while !stop.load(Relaxed) {
                            active.with_hot(|table| table.add(&key, 1));
                            added += 1;
                        }
                        added
                    })
                })
                .collect();
            // Wait for samples to flow rather than for time to pass.
            while active.control().table().is_none_or(|t| t.samples() < 1_000) {
                std::thread::yield_now();
            }
            for _ in 0..50 {
                let old = active.control().replace(Some(Box::new(StackTable::new(4))));
                let old = old.expect("a table was installed");
                let at_return = old.samples();
                handed_back.push((old, at_return));
            }
            stop.store(true, Relaxed);
            writers.into_iter().map(|w| w.join().expect("writer ran")).sum::<u64>()
        });
        for (table, at_return) in &handed_back {
            assert_eq!(table.samples(), *at_return, "written after it was handed back");
        }
        let last = active.control().table().map_or(0, StackTable::samples);
        let in_old: u64 = handed_back.iter().map(|(_, n)| n).sum();
        assert_eq!(in_old + last, added, "every sample landed in exactly one table");
    }

    #[test]
    fn samples_cut_off_by_a_fork_are_forgotten_in_the_child() {
        let active = ActiveTable::new();
        active.control().replace(Some(Box::new(StackTable::new(4))));
        let key = StackKey::capture(Operation::GET, b"k", usize::MAX);
        active.with_hot(|table| table.add(&key, 1));
        // What a fork leaves of a sample in flight: started, never finished (its thread is gone).
        active.counts.started_and_hot.fetch_add(2, Acquire);
        let mut control = active.control();
        control.forget_samples_in_flight();
        // A replacement returns instead of waiting for those two forever.
        let old = control.replace(Some(Box::new(StackTable::new(4)))).expect("the table");
        assert_eq!(old.samples(), 1);
        drop(control);
        // And the protocol goes on exactly: a sample now, then another replacement.
        active.with_hot(|table| table.add(&key, 1));
        let newer = active.control().replace(None).expect("the second table");
        assert_eq!(newer.samples(), 1);
    }

    #[test]
    fn without_a_table_samples_are_dropped() {
        let active = ActiveTable::new();
        let mut ran = false;
        active.with_hot(|_| ran = true);
        assert!(!ran);
        assert!(active.control().table().is_none());
        assert!(active.control().replace(None).is_none());
    }
}

/// Model checks of the swap (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`): a table handed back
/// by a replacement receives no sample afterwards, and every sample lands in exactly one table.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::profiler::capture::StackKey;
    use crate::recording::operation::Operation;
    use crate::sync::{ModelThread, model, run_threads};

    /// What a thread of the model returns: a replacement's handed-back table and its samples when handed
    /// back, or nothing (a sampler).
    type HandedBack = Option<(Box<StackTable>, u64)>;

    /// One sampler takes two samples while a replacement swaps the table: samples in the handed-back table
    /// (counted when it was handed back, and still after every thread is done) plus samples in the new
    /// one are the two taken.
    #[test]
    fn loom_no_sample_lands_after_hand_back_and_each_counts_once() {
        let key = std::sync::Arc::new(StackKey::capture(Operation::GET, b"k", usize::MAX));
        model(2, move || {
            let active = Arc::new(ActiveTable::new());
            assert!(active.control().replace(Some(Box::new(StackTable::new(1)))).is_none());
            let sampler: ModelThread<HandedBack> = {
                let (active, key) = (Arc::clone(&active), std::sync::Arc::clone(&key));
                Box::new(move || {
                    for duration_ns in [1, 2] {
                        active.with_hot(|table| table.add(&key, duration_ns));
                    }
                    None
                })
            };
            let replacer: ModelThread<HandedBack> = {
                let active = Arc::clone(&active);
                Box::new(move || {
                    let old = active.control().replace(Some(Box::new(StackTable::new(1))));
                    let old = old.expect("a table was installed");
                    let at_return = old.samples();
                    Some((old, at_return))
                })
            };
            let (old, at_return) = run_threads(vec![sampler, replacer])
                .into_iter()
                .flatten()
                .next()
                .expect("the replacement handed a table back");
            assert_eq!(old.samples(), at_return, "a sample landed after the hand-back");
            let hot = active.control().table().map_or(0, StackTable::samples);
            assert_eq!(at_return + hot, 2, "every sample counted once");
        });
    }
}
