//! The region: every count a monitor keeps, as one `#[repr(C)]` block of atomics that is valid when
//! all-zero. It lives in a `static` (the process-wide monitor: `.bss`, untouched pages cost nothing, and
//! it goes with the library's mapping at `dlclose`), on the heap (other monitors), or in a state file that
//! every process attaching it maps (`state_file`): the same bytes in every case, so the file's layout is
//! this type's layout, checked by a hash of its sizes and offsets.
//!
//! Everything in it is a word or a byte of atomics: no value a file can hold is invalid for its type, and
//! every index read from it is range-checked where it is used.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::recording::buckets::{BucketIndex, MAX_BUCKETS};
use crate::recording::double_buffer::DoubleBuffer;
use crate::recording::latency::{FIRST_NATIVE_INDEX, LATENCY_BUCKETS};
use crate::recording::native::STORED_SCHEMA;
use crate::recording::operation::{Gauge, MAX_OPERATIONS, OUTCOMES};
use crate::recording::patterns::PatternTable;
use crate::recording::shard::{CachePadded, PATTERN_IDS, Shard};
use crate::recording::thread_claim::{OWNED_SHARDS, SHARD_COUNT};
use crate::recording::window_rings::WindowRings;

/// Words of the shaping configuration a state file records (its JSON text, length first).
pub(crate) const SHAPE_WORDS: usize = 512;

/// Cells of a reset baseline: per series the sum and every bucket cell, per series a row mask and the
/// latency buckets, the pattern counts.
pub(crate) const BASELINE_CELLS: usize = MAX_OPERATIONS * OUTCOMES * (MAX_BUCKETS + 3)
    + MAX_OPERATIONS * OUTCOMES * (1 + LATENCY_BUCKETS)
    + PATTERN_IDS * OUTCOMES;

/// What the hot path reads and nobody writes while recording: one read-mostly block.
#[repr(C)]
pub(crate) struct Hot {
    pub(crate) buckets: BucketIndex,
    pub(crate) patterns: PatternTable,
}

/// Which shards of a state file are claimed, and what the file's processes share besides counts.
#[repr(C)]
pub(crate) struct Claims {
    /// One past the highest owned shard ever claimed.
    pub(crate) owned_high: AtomicU64,
    /// Non-zero once any writer wrote a shared shard.
    pub(crate) sharing: AtomicU64,
}

/// Everything but the shards.
#[repr(C)]
pub(crate) struct Core {
    pub(crate) hot: CachePadded<Hot>,
    pub(crate) gauges: CachePadded<[AtomicU64; Gauge::ALL.len()]>,
    pub(crate) claims: CachePadded<Claims>,
    /// The shaping configuration, as JSON (state files only).
    pub(crate) shape: DoubleBuffer<SHAPE_WORDS>,
    /// Raw totals at the last reset (see `totals`).
    pub(crate) baseline: DoubleBuffer<BASELINE_CELLS>,
    pub(crate) windows: WindowRings,
}

/// A whole region.
#[repr(C)]
pub(crate) struct Region {
    pub(crate) core: Core,
    pub(crate) shards: [CachePadded<Shard>; SHARD_COUNT],
}

impl Region {
    /// The shards writers may have used: owned ones up to the highest claimed, and the shared ones if
    /// any writer shared.
    pub(crate) fn shards_in_use(&self) -> Vec<&Shard> {
        self.shards_in_use_indexed()
            .into_iter()
            .map(|(_, shard)| shard)
            .collect()
    }

    /// [`Region::shards_in_use`] with each shard's index.
    pub(crate) fn shards_in_use_indexed(&self) -> Vec<(usize, &Shard)> {
        let owned = (self.core.claims.owned_high.load(Relaxed) as usize).min(OWNED_SHARDS);
        let sharing = self.core.claims.sharing.load(Relaxed) != 0;
        let shared = if sharing { OWNED_SHARDS..SHARD_COUNT } else { 0..0 };
        (0..owned)
            .chain(shared)
            .map(|index| (index, &*self.shards[index]))
            .collect()
    }

    /// The index of `shard` if it is one of this region's.
    pub(crate) fn index_of_shard(&self, shard: &Shard) -> Option<usize> {
        self.shards.iter().position(|own| std::ptr::eq(&**own, shard))
    }

    /// Notes that shard `index` is written from now on.
    pub(crate) fn mark_in_use(&self, index: usize) {
        if index < OWNED_SHARDS {
            self.core.claims.owned_high.fetch_max(index as u64 + 1, Relaxed);
        } else {
            self.core.claims.sharing.store(1, Relaxed);
        }
    }

    /// A hash of every size and offset that defines the layout: two library builds whose hashes match
    /// read each other's files the same way.
    pub(crate) fn layout_hash() -> u64 {
        let facts = [
            size_of::<Region>(),
            size_of::<Core>(),
            size_of::<Shard>(),
            std::mem::offset_of!(Region, shards),
            std::mem::offset_of!(Core, shape),
            std::mem::offset_of!(Core, baseline),
            std::mem::offset_of!(Core, windows),
            std::mem::offset_of!(Shard, series),
            std::mem::offset_of!(Shard, latency),
            std::mem::offset_of!(Shard, patterns),
            std::mem::offset_of!(Shard, flushed),
            SHARD_COUNT,
            OWNED_SHARDS,
            MAX_OPERATIONS,
            OUTCOMES,
            MAX_BUCKETS,
            LATENCY_BUCKETS,
            // What a latency cell counts: the native bucket of 1 ns, and the schema.
            FIRST_NATIVE_INDEX as usize,
            STORED_SCHEMA as usize,
            PATTERN_IDS,
            SHAPE_WORDS,
            BASELINE_CELLS,
        ];
        // FNV-1a over the facts' bytes: stable across builds and platforms of one word size.
        facts
            .iter()
            .flat_map(|fact| (*fact as u64).to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            })
    }
}

/// The process-wide monitor's region, and the space a state file it attaches is mapped over (the file's
/// header page, then a region), both in `.bss`: they leave with the library's mapping at `dlclose` and
/// stay mapped through `exit`, whatever other threads still do.
#[repr(C, align(4096))]
pub(crate) struct GlobalSpace<T>(pub(crate) T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_hash_is_stable_and_the_region_page_aligned_in_a_file() {
        assert_eq!(Region::layout_hash(), Region::layout_hash());
        assert_eq!(size_of::<Shard>() % 64, 0);
        assert!(size_of::<Region>() < 128 << 20, "a region stays a few tens of MiB");
    }
}
