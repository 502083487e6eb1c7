//! The histogram bounds as the hot path reads them: the configured [`BucketBounds`] (defined with the
//! `"buckets"` key in `config::buckets`) in atomics, searched by every record.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

pub use crate::config::buckets::{BucketBounds, DEFAULT_BUCKETS, MAX_BUCKETS};

/// The bounds as the hot path reads them: one relaxed load per probe of a binary search.
pub(crate) struct AtomicBounds {
    len: AtomicUsize,
    nanos: [AtomicU64; MAX_BUCKETS],
}

impl AtomicBounds {
    pub(crate) fn new(bounds: &BucketBounds) -> Self {
        let this = Self {
            len: AtomicUsize::new(0),
            nanos: [const { AtomicU64::new(0) }; MAX_BUCKETS],
        };
        this.store(bounds);
        this
    }

    /// Replaces the bounds. Records running at the same time may bin by a mix of old and new bounds, which
    /// is why the configuration only allows a change while the histogram is empty.
    pub(crate) fn store(&self, bounds: &BucketBounds) {
        for (cell, ns) in self.nanos.iter().zip(bounds.nanos()) {
            cell.store(*ns, Relaxed);
        }
        self.len.store(bounds.nanos().len(), Relaxed);
    }

    /// How many bounds are in force.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed).min(MAX_BUCKETS)
    }

    /// The bucket of a duration: the first bound it does not exceed, or the bound count (the `+Inf`-only
    /// bucket) when it exceeds them all.
    #[inline(always)]
    pub(crate) fn index_of(&self, duration_ns: u64) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            if self.nanos[mid].load(Relaxed) < duration_ns {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_uses_less_or_equal() {
        let atomic = AtomicBounds::new(&BucketBounds::new(vec![1e-6, 1e-3]).unwrap());
        assert_eq!(atomic.index_of(0), 0);
        assert_eq!(atomic.index_of(1_000), 0);
        assert_eq!(atomic.index_of(1_001), 1);
        assert_eq!(atomic.index_of(1_000_000), 1);
        assert_eq!(atomic.index_of(1_000_001), 2);
        assert_eq!(atomic.index_of(u64::MAX), 2);
    }
}
