//! A bounded, lock-free table of sampled stacks: stack -> (samples, total duration).
//!
//! # Protocol
//!
//! The table is two arrays fixed at construction: `entries`, room for `max_stacks` stacks, and `index`,
//! an open-addressing hash index of at least twice as many `u32` slots (0 = empty, `i + 1` = `entries[i]`).
//! A sampling thread, with key `k`, probes `index` linearly from `k.hash`:
//!
//! 1. A slot holding an entry whose key equals `k`: add the sample to that entry's counters
//!    (`fetch_add`). Done.
//! 2. A slot holding another key: probe the next slot.
//! 3. An empty slot: `k` is not in the table (see the invariant below). **Reserve** an entry with one
//!    `fetch_add` on `reserved` (if every entry is taken, count the sample as overflow: done), write `k`
//!    into it (the entry is this thread's alone: no other thread was handed that index), then
//!    **publish** it by compare-and-swapping the slot from empty to `i + 1` (`Release`). If the swap
//!    fails, another thread published first: examine what it published as in 1 and 2, keeping the
//!    reserved entry for the next empty slot.
//!
//! Readers load a slot with `Acquire` before reading the entry it names, so they see the key as it was
//! written; only counters change after publication. Slots go from empty to full once and never back, so
//! a published key always lies before the first empty slot of its probe sequence: step 3 is right to
//! conclude the key is absent, and two threads sampling the same new stack publish it once (the loser
//! finds it at the slot it lost). That loser's reserved entry stays unpublished, so a table may end up
//! holding slightly fewer than `max_stacks` stacks when threads race on new stacks; memory never grows.
//! At most `max_stacks` slots are ever full out of at least twice as many, so every probe meets an
//! empty slot and stops.
//!
//! Clearing takes `&mut self`: see `active_table` for how a table is taken away from sampling threads.
//!
//! `loom_tests` model-check the reservation and publication (`RUSTFLAGS="--cfg loom" cargo test --release
//! --lib loom`).

use crate::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
#[cfg(not(loom))]
use crate::sync::atomic::WithMut;
use crate::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

use super::capture::{HOST_WORDS, MAX_DEPTH, Shape, StackKey, host_frames_text, host_words};
use crate::config::profiler::MAX_STACKS_LIMIT;
use crate::recording::operation::{MAX_OPERATIONS, Operation};

/// Samples and their total duration.
#[derive(Default)]
struct Counters {
    samples: AtomicU64,
    total_ns: AtomicU64,
}

impl Counters {
    #[inline]
    fn add(&self, duration_ns: u64) {
        self.samples.fetch_add(1, Relaxed);
        self.total_ns.fetch_add(duration_ns, Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (self.samples.load(Relaxed), self.total_ns.load(Relaxed))
    }
}

/// One stack: its key, written once before publication, and its counters.
struct Entry {
    hash: AtomicU64,
    shape: AtomicU64,
    ips: [AtomicUsize; MAX_DEPTH],
    host: [AtomicU64; HOST_WORDS],
    counters: Counters,
}

impl Entry {
    fn new() -> Self {
        Self {
            hash: AtomicU64::new(0),
            shape: AtomicU64::new(0),
            ips: std::array::from_fn(|_| AtomicUsize::new(0)),
            host: std::array::from_fn(|_| AtomicU64::new(0)),
            counters: Counters::default(),
        }
    }

    /// Writes `key` and zero counters; only by the thread that reserved this entry, before publishing it.
    fn write(&self, key: &StackKey) {
        self.hash.store(key.hash, Relaxed);
        self.shape.store(key.shape.pack(), Relaxed);
        for (cell, &ip) in self.ips.iter().zip(&key.ips[..usize::from(key.shape.depth)]) {
            cell.store(ip, Relaxed);
        }
        for (cell, &word) in self.host.iter().zip(&key.host[..host_words(key.shape.host_len)]) {
            cell.store(word, Relaxed);
        }
        self.counters.samples.store(0, Relaxed);
        self.counters.total_ns.store(0, Relaxed);
    }

    /// Whether this published entry's key is `key`.
    fn holds(&self, key: &StackKey) -> bool {
        let depth = usize::from(key.shape.depth);
        self.hash.load(Relaxed) == key.hash
            && self.shape.load(Relaxed) == key.shape.pack()
            && self.ips[..depth]
                .iter()
                .zip(&key.ips[..depth])
                .all(|(cell, &ip)| cell.load(Relaxed) == ip)
            && self
                .host
                .iter()
                .zip(&key.host[..host_words(key.shape.host_len)])
                .all(|(cell, &word)| cell.load(Relaxed) == word)
    }

    fn read(&self) -> StackCount {
        let shape = Shape::unpack(self.shape.load(Relaxed));
        let ips = self.ips[..usize::from(shape.depth)]
            .iter()
            .map(|cell| cell.load(Relaxed))
            .collect();
        let host: Vec<u64> = self.host[..host_words(shape.host_len)]
            .iter()
            .map(|cell| cell.load(Relaxed))
            .collect();
        let (samples, total_ns) = self.counters.read();
        StackCount {
            operation: Operation::from_code(shape.operation),
            ips,
            native_truncated: shape.native_truncated,
            host_frames: host_frames_text(&host, shape.host_len),
            host_truncated: shape.host_truncated,
            samples,
            total_ns,
        }
    }
}

/// One stack as read from a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StackCount {
    pub(crate) operation: Operation,
    /// Return addresses, innermost first.
    pub(crate) ips: Vec<usize>,
    /// The native stack was deeper than the addresses kept.
    pub(crate) native_truncated: bool,
    /// Host frames, outermost first, `;`-separated.
    pub(crate) host_frames: String,
    /// Outer host frames were dropped.
    pub(crate) host_truncated: bool,
    pub(crate) samples: u64,
    pub(crate) total_ns: u64,
}

/// Everything a table holds, read for rendering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableSnapshot {
    pub(crate) stacks: Vec<StackCount>,
    /// Per operation code: samples that found the table full, and their total duration.
    pub(crate) overflow: Vec<(Operation, u64, u64)>,
}

/// The table; see the module documentation for the protocol.
pub(crate) struct StackTable {
    /// Power of two, at least twice `entries.len()`.
    index: Box<[AtomicU32]>,
    entries: Box<[Entry]>,
    /// Entries handed out; may run past `entries.len()` once full.
    reserved: AtomicUsize,
    /// Samples that found no room, per operation code.
    overflow: [Counters; MAX_OPERATIONS],
}

impl StackTable {
    /// An empty table for up to `max_stacks` distinct stacks; all its memory is allocated here.
    pub(crate) fn new(max_stacks: usize) -> Self {
        let max_stacks = max_stacks.clamp(1, MAX_STACKS_LIMIT);
        let slots = (2 * max_stacks).next_power_of_two();
        Self {
            index: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            entries: (0..max_stacks).map(|_| Entry::new()).collect(),
            reserved: AtomicUsize::new(0),
            overflow: std::array::from_fn(|_| Counters::default()),
        }
    }

    /// How many distinct stacks the table can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Adds one sample of `key` taking `duration_ns`. Lock-free; no allocation.
    pub(crate) fn add(&self, key: &StackKey, duration_ns: u64) {
        let mask = self.index.len() - 1;
        let mut slot = key.hash as usize & mask;
        let mut reserved: Option<usize> = None;
        for _ in 0..self.index.len() {
            let mut seen = self.index[slot].load(Acquire);
            if seen == 0 {
                let entry = match reserved.or_else(|| self.reserve(key)) {
                    Some(entry) => entry,
                    None => return self.overflowed(key, duration_ns),
                };
                reserved = Some(entry);
                // `entry < entries.len() <= u32::MAX / 2` (see `MAX_STACKS_LIMIT`), so `+ 1` fits.
                match self.index[slot].compare_exchange(0, entry as u32 + 1, AcqRel, Acquire) {
                    Ok(_) => return self.entries[entry].counters.add(duration_ns),
                    Err(published) => seen = published,
                }
            }
            let entry = &self.entries[seen as usize - 1];
            if entry.holds(key) {
                return entry.counters.add(duration_ns);
            }
            slot = (slot + 1) & mask;
        }
        // Not reached: fewer than half the slots are ever full. Counted rather than lost if it were.
        self.overflowed(key, duration_ns);
    }

    /// Hands out an entry and writes `key` into it, or `None` when every entry is taken.
    fn reserve(&self, key: &StackKey) -> Option<usize> {
        if self.reserved.load(Relaxed) >= self.entries.len() {
            return None;
        }
        let entry = self.reserved.fetch_add(1, Relaxed);
        self.entries.get(entry)?.write(key);
        Some(entry)
    }

    #[cold]
    fn overflowed(&self, key: &StackKey, duration_ns: u64) {
        if let Some(counters) = self.overflow.get(key.shape.operation as usize) {
            counters.add(duration_ns);
        }
    }

    /// The published entries (`Acquire`: their keys are complete).
    fn published(&self) -> impl Iterator<Item = &Entry> {
        self.index.iter().filter_map(|slot| match slot.load(Acquire) {
            0 => None,
            i => self.entries.get(i as usize - 1),
        })
    }

    /// Published stacks.
    pub(crate) fn len(&self) -> usize {
        self.published().count()
    }

    /// Samples that found the table full.
    pub(crate) fn overflow_samples(&self) -> u64 {
        self.overflow.iter().map(|c| c.samples.load(Relaxed)).sum()
    }

    /// Samples taken into this table, overflow included.
    pub(crate) fn samples(&self) -> u64 {
        let kept: u64 = self.published().map(|e| e.counters.samples.load(Relaxed)).sum();
        kept + self.overflow_samples()
    }

    /// Every published stack and the overflow counts; taken while threads may be sampling.
    pub(crate) fn snapshot(&self) -> TableSnapshot {
        let stacks = self.published().map(Entry::read).collect();
        let overflow = self
            .overflow
            .iter()
            .enumerate()
            .filter_map(|(code, counters)| {
                let (samples, total_ns) = counters.read();
                (samples > 0).then(|| (Operation::from_code(code as u32), samples, total_ns))
            })
            .collect();
        TableSnapshot { stacks, overflow }
    }

    /// Forgets every stack; needs the table to itself (no sampling thread can reach it).
    pub(crate) fn clear(&mut self) {
        for slot in self.index.iter_mut() {
            slot.with_mut(|slot| *slot = 0);
        }
        self.reserved.with_mut(|reserved| *reserved = 0);
        for counters in &mut self.overflow {
            counters.samples.with_mut(|samples| *samples = 0);
            counters.total_ns.with_mut(|total| *total = 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key with the given host frames and no native frames, so tests control identity exactly.
    fn key(operation: Operation, frames: &str) -> StackKey {
        let key = StackKey::capture(operation, frames.as_bytes(), usize::MAX);
        assert_eq!(key.shape.depth, 0, "every native frame lies below usize::MAX");
        key
    }

    #[test]
    fn one_stack_is_counted_in_one_entry() {
        let table = StackTable::new(8);
        let k = key(Operation::GET, "a;b");
        for d in 1..=10 {
            table.add(&k, d);
        }
        let snapshot = table.snapshot();
        assert_eq!(snapshot.stacks.len(), 1);
        let stack = &snapshot.stacks[0];
        assert_eq!((stack.samples, stack.total_ns), (10, 55));
        assert_eq!(stack.host_frames, "a;b");
        assert_eq!(stack.operation, Operation::GET);
        assert!(snapshot.overflow.is_empty());
    }

    #[test]
    fn a_full_table_counts_overflow_per_operation_and_keeps_counting_known_stacks() {
        let table = StackTable::new(4);
        for i in 0..10 {
            table.add(&key(Operation::GET, &format!("site{i}")), 100);
        }
        assert_eq!(table.len(), 4);
        assert_eq!(table.overflow_samples(), 6);
        table.add(&key(Operation::GET, "site0"), 100);
        table.add(&key(Operation::PUT, "site0"), 7);
        let snapshot = table.snapshot();
        let site0 = snapshot
            .stacks
            .iter()
            .find(|s| s.host_frames == "site0")
            .expect("first stack kept");
        assert_eq!(site0.samples, 2);
        assert_eq!(
            snapshot.overflow,
            vec![(Operation::GET, 6, 600), (Operation::PUT, 1, 7)]
        );
        assert_eq!(table.samples(), 12);
    }

    #[test]
    fn concurrent_samples_are_all_counted_and_the_table_never_grows() {
        let table = StackTable::new(64);
        let keys: Vec<StackKey> = (0..200).map(|i| key(Operation::GET, &format!("k{i}"))).collect();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (table, keys) = (&table, &keys);
                scope.spawn(move || {
                    for round in 0..50 {
                        for (i, k) in keys.iter().enumerate() {
                            if (i + round + t) % 3 != 0 {
                                table.add(k, 1);
                            }
                        }
                    }
                });
            }
        });
        let expected: u64 = (0..4)
            .map(|t| {
                (0..50)
                    .map(|round| (0..200).filter(|i| (i + round + t) % 3 != 0).count() as u64)
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(table.samples(), expected, "no sample lost or counted twice");
        let snapshot = table.snapshot();
        assert!(snapshot.stacks.len() <= 64);
        let mut names: Vec<&str> = snapshot.stacks.iter().map(|s| s.host_frames.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), snapshot.stacks.len(), "each stack published once");
    }

    #[test]
    fn clear_empties_the_table_for_reuse() {
        let mut table = StackTable::new(2);
        for i in 0..5 {
            table.add(&key(Operation::GET, &format!("s{i}")), 1);
        }
        table.clear();
        assert_eq!((table.len(), table.samples()), (0, 0));
        table.add(&key(Operation::GET, "fresh"), 3);
        table.add(&key(Operation::GET, "other"), 4);
        table.add(&key(Operation::GET, "third"), 5);
        let snapshot = table.snapshot();
        let mut stacks: Vec<(String, u64, u64)> = snapshot
            .stacks
            .into_iter()
            .map(|s| (s.host_frames, s.samples, s.total_ns))
            .collect();
        stacks.sort();
        assert_eq!(stacks, [("fresh".to_owned(), 1, 3), ("other".to_owned(), 1, 4)]);
        assert_eq!(snapshot.overflow, vec![(Operation::GET, 1, 5)]);
    }
}

/// Model checks of the reservation and publication (`RUSTFLAGS="--cfg loom" cargo test --release --lib
/// loom`): a stack is published once however many threads meet it together, every sample is counted
/// once (in a stack or as overflow), and a reader never takes a half-written key for a whole one.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    /// A key with the host frames `frames` and no native frames (built outside the models: capturing walks
    /// the real stack).
    fn key(frames: &str) -> std::sync::Arc<StackKey> {
        let key = StackKey::capture(Operation::GET, frames.as_bytes(), usize::MAX);
        assert_eq!(key.shape.depth, 0, "every native frame lies below usize::MAX");
        std::sync::Arc::new(key)
    }

    /// A thread that samples `key` once, taking `duration_ns`.
    fn sampler(table: &Arc<StackTable>, key: &std::sync::Arc<StackKey>, duration_ns: u64) -> ModelThread<()> {
        let (table, key) = (Arc::clone(table), std::sync::Arc::clone(key));
        Box::new(move || table.add(&key, duration_ns))
    }

    /// Two threads sample the same new stack together while a third reads the table: the stack is
    /// published once with both samples; the reader sees it whole or not at all.
    #[test]
    fn loom_a_stack_sampled_together_is_published_once() {
        let k = key("a");
        model(2, move || {
            let table = Arc::new(StackTable::new(2));
            let reader: ModelThread<()> = {
                let table = Arc::clone(&table);
                Box::new(move || {
                    for stack in table.snapshot().stacks {
                        assert_eq!(stack.host_frames, "a", "a half-written key read");
                        assert!(stack.samples <= 2 && stack.total_ns <= 5);
                    }
                })
            };
            run_threads(vec![sampler(&table, &k, 2), sampler(&table, &k, 3), reader]);
            let snapshot = table.snapshot();
            assert_eq!(snapshot.stacks.len(), 1, "published once");
            let stack = &snapshot.stacks[0];
            assert_eq!((stack.host_frames.as_str(), stack.samples, stack.total_ns), ("a", 2, 5));
            assert!(snapshot.overflow.is_empty());
        });
    }

    /// Two new stacks whose home is the same index slot, sampled together into a table with room for one:
    /// one is published, the other counted as overflow; every sample is counted once.
    #[test]
    fn loom_colliding_stacks_fill_the_table_and_overflow() {
        // A table for one stack has two index slots.
        let home = |key: &StackKey| key.hash as usize % 2;
        let a = key("a");
        let b = (0..)
            .map(|i| key(&format!("b{i}")))
            .find(|b| home(b) == home(&a))
            .expect("a key with the same home slot");
        let b_frames = String::from_utf8_lossy(&b.host[0].to_le_bytes()[..usize::from(b.shape.host_len)]).into_owned();
        model(2, move || {
            let table = Arc::new(StackTable::new(1));
            run_threads(vec![sampler(&table, &a, 2), sampler(&table, &b, 3)]);
            let snapshot = table.snapshot();
            assert_eq!(snapshot.stacks.len(), 1, "room for one");
            let stack = &snapshot.stacks[0];
            assert!(["a", b_frames.as_str()].contains(&stack.host_frames.as_str()));
            let expected_overflow = if stack.host_frames == "a" { 3 } else { 2 };
            assert_eq!(stack.samples, 1);
            assert_eq!(snapshot.overflow, vec![(Operation::GET, 1, expected_overflow)]);
            assert_eq!(table.samples(), 2, "every sample counted once");
        });
    }
}
