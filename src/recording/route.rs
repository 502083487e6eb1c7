//! Routes: which shard of a region, and which kind of writer, a thread's records go to.
//!
//! A thread's claim (`thread_claim`) names a shard index within this process. In process memory that
//! index is the region's shard; in a state file shared with other processes, the thread claims a shard
//! of the file on its first record there (`attachment`). A route remembers the answer per claim and per
//! region, so the hot path pays one relaxed load for it.

use std::sync::atomic::{AtomicU16, Ordering::Relaxed};

use crate::recording::thread_claim::{SHARD_COUNT, ShardClaim};

/// How a writer adds to its shard (see `shard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriterKind {
    /// The only writer, in process memory.
    Owner,
    /// The only writer, in a state file: journaled.
    Journaled,
    /// One of several writers.
    Shared,
}

/// A shard index and the kind of writer that writes it, in one word: 0 is "no route yet".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route(u16);

impl Route {
    /// The route to shard `index` (below [`SHARD_COUNT`]) for a writer of `kind`.
    pub(crate) fn new(index: usize, kind: WriterKind) -> Self {
        let kind = match kind {
            WriterKind::Owner => 1,
            WriterKind::Journaled => 2,
            WriterKind::Shared => 3,
        };
        Self(kind << 8 | (index.min(SHARD_COUNT - 1) as u16))
    }

    /// The shard's index in the region (below [`SHARD_COUNT`]: routes are made by [`Route::new`] only,
    /// in process memory).
    #[inline(always)]
    pub(crate) fn shard(self) -> usize {
        usize::from(self.0 & 0xff)
    }

    /// The writer's kind.
    #[inline(always)]
    pub(crate) fn kind(self) -> WriterKind {
        if self.0 < 0x200 {
            WriterKind::Owner
        } else if self.0 < 0x300 {
            WriterKind::Journaled
        } else {
            WriterKind::Shared
        }
    }
}

/// The routes of every claim into one region: one entry per possible claim byte, so the hot path indexes
/// it without a bounds check.
pub(crate) struct Routes([AtomicU16; 256]);

impl Routes {
    /// No routes yet.
    pub(crate) const fn new() -> Self {
        Self([const { AtomicU16::new(0) }; 256])
    }

    /// The route of `claim`, if it has one.
    #[inline(always)]
    pub(crate) fn get(&self, claim: ShardClaim) -> Option<Route> {
        match self.0[usize::from(claim.byte())].load(Relaxed) {
            0 => None,
            route => Some(Route(route)),
        }
    }

    /// Sets the route of `claim`.
    pub(crate) fn set(&self, claim: ShardClaim, route: Route) {
        self.0[usize::from(claim.byte())].store(route.0, Relaxed);
    }

    /// Forgets every route (async-signal-safe: atomic stores).
    pub(crate) fn clear(&self) {
        for route in &self.0 {
            route.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_pack_index_and_kind() {
        for kind in [WriterKind::Owner, WriterKind::Journaled, WriterKind::Shared] {
            let route = Route::new(SHARD_COUNT - 1, kind);
            assert_eq!((route.shard(), route.kind()), (SHARD_COUNT - 1, kind));
            assert_ne!(route.0, 0);
        }
        assert_eq!(
            Route::new(1_000, WriterKind::Owner).shard(),
            SHARD_COUNT - 1,
            "indexes are clamped"
        );
    }
}
