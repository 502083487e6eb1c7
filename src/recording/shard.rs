//! Per-thread shards of the hot-path counters.
//!
//! # Protocol
//!
//! Every thread that records **claims** a shard the first time it records: it takes the next number from
//! one process-wide counter and keeps the resulting [`ShardClaim`] in a plain (`const`-initialised,
//! destructor-free) thread-local, so it never blocks unloading the library. A claim names one [`Shard`]:
//!
//! - The first [`OWNED_SHARDS`] threads each **own** a shard: no other thread ever writes it, in any
//!   monitor, because claims are never reused. The owner updates its cells with a relaxed load and store, no
//!   locked instruction, which makes a record cheaper than a single `fetch_add`.
//! - Later threads share the remaining [`SHARED_SHARDS`] shards round-robin and update them with
//!   `fetch_add`, so no count is lost however many threads a host runs.
//!
//! Every cell only grows (wrapping at 2^64). Readers sum the shards with relaxed loads; a sum taken while
//! threads record lies between the sums before and after, and nothing ever writes a shard but its
//! writers: resets and imported state are kept beside the shards, not in them.
//!
//! Shards are [`CachePadded`], so two threads recording at the same time never write the same cache line
//! (up to [`OWNED_SHARDS`] threads; beyond that shared shards still keep lines apart for up to
//! [`SHARED_SHARDS`] concurrent latecomers).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::config::patterns::MAX_PATTERNS;
use crate::recording::backing::Zeroable;
use crate::recording::buckets::MAX_BUCKETS;
use crate::recording::latency::LATENCY_BUCKETS;
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};

/// Shards owned by one thread each.
pub(crate) const OWNED_SHARDS: usize = 48;
/// Shards shared, with atomic read-modify-writes, by the threads that come after the owners.
pub(crate) const SHARED_SHARDS: usize = 16;
/// All shards.
pub(crate) const SHARD_COUNT: usize = OWNED_SHARDS + SHARED_SHARDS;

/// Pattern ids a shard counts outcomes for: id 0 is `other` (keys whose pattern is not tracked), then one
/// per pattern, handed out by `analysis::patterns`.
pub(crate) const PATTERN_IDS: usize = MAX_PATTERNS + 1;

/// The pattern id of keys whose pattern is not tracked.
pub(crate) const OTHER_PATTERN_ID: usize = 0;

/// Claims handed out so far; never reset, so an owned shard is never claimed by a second thread.
static NEXT_CLAIM: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's shard index plus one; zero until the thread first records.
    static CLAIM: Cell<u16> = const { Cell::new(0) };
}

/// The shard the calling thread writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShardClaim(u16);

impl ShardClaim {
    /// The calling thread's claim, made on first use.
    #[inline(always)]
    pub(crate) fn current() -> Self {
        match CLAIM.get() {
            0 => Self::claim(),
            plus_one => Self(plus_one - 1),
        }
    }

    #[cold]
    fn claim() -> Self {
        let n = NEXT_CLAIM.fetch_add(1, Relaxed);
        let index = if n < OWNED_SHARDS as u64 {
            n as usize
        } else {
            OWNED_SHARDS + (n % SHARED_SHARDS as u64) as usize
        };
        CLAIM.set(index as u16 + 1);
        Self(index as u16)
    }

    /// Whether this thread is the only writer of its shard.
    #[inline(always)]
    pub(crate) fn is_owned(self) -> bool {
        usize::from(self.0) < OWNED_SHARDS
    }

    #[inline(always)]
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// How a cell is incremented: the two sides of the protocol above.
pub(crate) trait Writer {
    /// Adds `value` to `cell`.
    fn add(cell: &AtomicU64, value: u64);
    /// Sets `bits` in `cell`.
    fn set_bits(cell: &AtomicU64, bits: u64);
}

/// The single writer of an owned shard: a plain relaxed load and store.
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

/// The cells of one `(operation, outcome)` series.
///
/// There is no count cell: the count is the sum of the buckets, which keeps `_count`, `+Inf` and the
/// cumulative buckets consistent in every render and saves the hot path a write.
pub(crate) struct SeriesCells {
    pub(crate) sum_ns: AtomicU64,
    /// Non-cumulative: bucket `i` counts durations in `(bound[i-1], bound[i]]`; the one after the last
    /// configured bound counts those above every bound.
    pub(crate) buckets: [AtomicU64; MAX_BUCKETS + 1],
}

impl SeriesCells {
    const fn new() -> Self {
        Self {
            sum_ns: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; MAX_BUCKETS + 1],
        }
    }
}

/// Everything one thread writes while recording.
pub(crate) struct Shard {
    pub(crate) series: [[SeriesCells; OUTCOMES]; MAX_OPERATIONS],
    /// Log-linear latency buckets per operation (see `latency`).
    pub(crate) latency: [[AtomicU64; LATENCY_BUCKETS]; MAX_OPERATIONS],
    /// Per operation, bit `r` set when latency row `r` (buckets `32r..32r+32`) has ever counted anything,
    /// so readers skip the empty rows.
    pub(crate) latency_rows: [AtomicU64; MAX_OPERATIONS],
    pub(crate) begun: [AtomicU64; MAX_OPERATIONS],
    pub(crate) ended: [AtomicU64; MAX_OPERATIONS],
    /// Outcomes per key pattern, indexed by pattern id (see `analysis::patterns`).
    pub(crate) patterns: [[AtomicU64; OUTCOMES]; PATTERN_IDS],
}

impl Shard {
    const fn new() -> Self {
        Self {
            series: [const { [const { SeriesCells::new() }; OUTCOMES] }; MAX_OPERATIONS],
            latency: [const { [const { AtomicU64::new(0) }; LATENCY_BUCKETS] }; MAX_OPERATIONS],
            latency_rows: [const { AtomicU64::new(0) }; MAX_OPERATIONS],
            begun: [const { AtomicU64::new(0) }; MAX_OPERATIONS],
            ended: [const { AtomicU64::new(0) }; MAX_OPERATIONS],
            patterns: [const { [const { AtomicU64::new(0) }; OUTCOMES] }; PATTERN_IDS],
        }
    }
}

/// All shards of one monitor.
pub(crate) struct Shards([CachePadded<Shard>; SHARD_COUNT]);

// SAFETY: `Shards` is nothing but `AtomicU64`s (nested in arrays and `CachePadded`, which only adds
// alignment and padding), and a zero count is an empty count.
unsafe impl Zeroable for Shards {}

impl Shards {
    /// Zeroed shards for a `static`: they live in `.bss` and cost memory only for pages threads touch.
    pub(crate) const fn new() -> Self {
        Self([const { CachePadded::new(Shard::new()) }; SHARD_COUNT])
    }

    /// The calling thread's shard and its claim.
    #[inline(always)]
    pub(crate) fn current(&self) -> (&Shard, ShardClaim) {
        let claim = ShardClaim::current();
        (&self.0[claim.index()], claim)
    }

    /// The shards any thread has written so far; the others are all zero.
    pub(crate) fn in_use(&self) -> impl Iterator<Item = &Shard> {
        let handed_out = NEXT_CLAIM.load(Relaxed);
        let owned = handed_out.min(OWNED_SHARDS as u64) as usize;
        let shared = if handed_out > OWNED_SHARDS as u64 {
            SHARED_SHARDS
        } else {
            0
        };
        self.0[..owned]
            .iter()
            .chain(&self.0[OWNED_SHARDS..OWNED_SHARDS + shared])
            .map(|padded| &**padded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_claim_and_owners_are_unique() {
        let here = ShardClaim::current().index();
        assert_eq!(ShardClaim::current().index(), here);
        let others: Vec<ShardClaim> = (0..4)
            .map(|_| std::thread::spawn(ShardClaim::current).join().expect("thread ran"))
            .collect();
        for claim in others.iter().filter(|c| c.is_owned()) {
            assert_ne!(claim.index(), here);
            assert_eq!(others.iter().filter(|o| o.index() == claim.index()).count(), 1);
        }
    }

    #[test]
    fn boxed_shards_start_at_zero_and_in_use_covers_the_current_thread() {
        let shards = crate::recording::backing::Backing::<Shards>::heap();
        let (shard, _) = shards.current();
        OwnerWriter::add(&shard.begun[0], 2);
        SharedWriter::add(&shard.begun[0], 3);
        let total: u64 = shards.in_use().map(|s| s.begun[0].load(Relaxed)).sum();
        assert_eq!(total, 5);
        assert_eq!(shards.in_use().map(|s| s.ended[0].load(Relaxed)).sum::<u64>(), 0);
    }
}
