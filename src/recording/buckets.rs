//! The histogram bounds as the hot path reads them: the configured [`BucketBounds`] (the `"buckets"` key,
//! `config::buckets`) as atomics in the region, with a table that finds a duration's bucket in constant
//! time.
//!
//! # Constant-time bucket index
//!
//! Every record already computes its latency bucket (`latency::index_of`: its native-histogram bucket, from
//! the exponent and a table). The table here maps each latency bucket to the first configured bound at or
//! above the bucket's lowest duration; durations in that latency bucket land there unless a bound falls
//! inside the latency bucket, in which case one comparison (rarely two: bounds closer than 2.2% apart)
//! moves them on.
//! A sentinel bound of `u64::MAX` after the last one ends every scan, so the index is
//! `table[latency] + (duration > bound[table[latency]])`, exact for every duration (the tests compare it
//! with a binary search at every bound and its neighbours).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

pub use crate::config::buckets::{BucketBounds, DEFAULT_BUCKETS, MAX_BUCKETS};
use crate::recording::latency::{self, LATENCY_BUCKETS};

/// The bounds and the latency-bucket table, in the region (shared by every process of a state file).
/// All-zero is "no bounds yet": every duration lands in bucket 0 until [`BucketIndex::store`] runs.
#[repr(C)]
pub(crate) struct BucketIndex {
    /// How many bounds are configured.
    len: AtomicU64,
    /// The bounds in nanoseconds, then `u64::MAX` up to the end.
    nanos: [AtomicU64; MAX_BUCKETS + 1],
    /// Per latency bucket, the first bound at or above its lowest duration (a power of two of entries, so
    /// that a masked latency index needs no bounds check).
    first_candidate: [AtomicU8; CANDIDATES],
}

/// Entries of the latency-bucket table: the first power of two above the latency bucket count.
const CANDIDATES: usize = LATENCY_BUCKETS.next_power_of_two();

impl BucketIndex {
    /// Publishes `bounds`. Records running at the same time may bin by a mix of old and new bounds, which
    /// is why the configuration only allows a change while the histogram is empty.
    pub(crate) fn store(&self, bounds: &BucketBounds) {
        let nanos = bounds.nanos();
        for (index, cell) in self.nanos.iter().enumerate() {
            cell.store(nanos.get(index).copied().unwrap_or(u64::MAX), Relaxed);
        }
        for (index, cell) in self.first_candidate.iter().enumerate().take(LATENCY_BUCKETS) {
            let (lowest, _) = latency::bounds_of(index);
            cell.store(nanos.partition_point(|bound| *bound < lowest) as u8, Relaxed);
        }
        self.len.store(nanos.len() as u64, Relaxed);
    }

    /// The bucket of a duration whose latency bucket is `latency`: the first bound it does not exceed, or
    /// the bound count (the `+Inf`-only bucket) when it exceeds them all. Never above [`MAX_BUCKETS`],
    /// whatever the cells hold.
    ///
    /// The common case is a table load and one comparison: a bound inside the latency bucket moves
    /// durations above it on, and only bounds closer than the bucket's 2.2% take another step.
    #[inline(always)]
    pub(crate) fn index_of(&self, duration_ns: u64, latency: usize) -> usize {
        let first = self.first_candidate[latency & (CANDIDATES - 1)].load(Relaxed) as usize;
        // `min`: a table in a state file is input.
        let mut bucket = first.min(MAX_BUCKETS);
        if duration_ns <= self.nanos[bucket].load(Relaxed) {
            return bucket;
        }
        while bucket < MAX_BUCKETS {
            bucket += 1;
            if duration_ns <= self.nanos[bucket].load(Relaxed) {
                break;
            }
        }
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;

    fn index(bounds: &[f64]) -> Box<BucketIndex> {
        // SAFETY: atomics only; all-zero is valid.
        let index: Box<BucketIndex> = unsafe { zeroed_box() };
        index.store(&BucketBounds::new(bounds.to_vec()).unwrap());
        index
    }

    fn lookup(index: &BucketIndex, duration: u64) -> usize {
        index.index_of(duration, latency::index_of(duration))
    }

    #[test]
    fn index_uses_less_or_equal() {
        let atomic = index(&[1e-6, 1e-3]);
        assert_eq!(lookup(&atomic, 0), 0);
        assert_eq!(lookup(&atomic, 1_000), 0);
        assert_eq!(lookup(&atomic, 1_001), 1);
        assert_eq!(lookup(&atomic, 1_000_000), 1);
        assert_eq!(lookup(&atomic, 1_000_001), 2);
        assert_eq!(lookup(&atomic, u64::MAX), 2);
    }

    #[test]
    fn the_table_agrees_with_a_binary_search_at_every_bound() {
        let close = [
            1e-9, 2e-9, 3e-9, 1.000e-6, 1.001e-6, 1.002e-6, 5e-3, 5.0001e-3, 7.0, 1e9,
        ];
        for bounds in [&DEFAULT_BUCKETS[..], &close[..], &[0.25][..]] {
            let atomic = index(bounds);
            let nanos = BucketBounds::new(bounds.to_vec()).unwrap().nanos().to_vec();
            let mut probes = vec![0, 1, u64::MAX, latency::MAX_TRACKED_NS, latency::MAX_TRACKED_NS + 1];
            for bound in &nanos {
                probes.extend([bound - 1, *bound, bound + 1, bound + 17]);
            }
            for (low, high) in (0..LATENCY_BUCKETS).map(latency::bounds_of) {
                probes.extend([low, high - 1]);
            }
            for duration in probes {
                let expected = nanos.partition_point(|bound| *bound < duration);
                assert_eq!(
                    lookup(&atomic, duration),
                    expected,
                    "{duration} ns with bounds {bounds:?}"
                );
            }
        }
    }

    #[test]
    fn zeroed_or_hostile_cells_stay_in_range() {
        // SAFETY: atomics only; all-zero is valid.
        let atomic: Box<BucketIndex> = unsafe { zeroed_box() };
        assert!(lookup(&atomic, 5) <= MAX_BUCKETS, "no bounds yet");
        atomic.first_candidate[3].store(255, Relaxed);
        atomic.len.store(u64::MAX, Relaxed);
        assert_eq!(atomic.index_of(3, 3), MAX_BUCKETS);
    }
}
