//! Routes: which shard of a region, and which kind of writer, a thread's records go to.
//!
//! A thread's claim (`thread_claim`) names a shard index within this process. In process memory that
//! index is the region's shard; in a state file shared with other processes, the thread claims a shard
//! of the file on its first record there (`attachment`). A route remembers the answer per claim and per
//! region as the shard's address with the writer's kind in its low bits, so that the hot path pays one
//! relaxed load for it and no arithmetic but a mask.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::recording::shard::Shard;
use crate::recording::thread_claim::{ClaimSlot, ShardClaim};

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

impl WriterKind {
    /// The kind's code in a route's low bits (never 0, which is "no route").
    const fn code(self) -> usize {
        match self {
            Self::Owner => 1,
            Self::Journaled => 2,
            Self::Shared => 3,
        }
    }
}

/// The low bits of a route that hold the kind: free in a shard's address, which is cache-line aligned.
const KIND_BITS: usize = 0b11;
const _: () = assert!(align_of::<crate::recording::shard::CachePadded<Shard>>() > KIND_BITS);

/// A shard of a region and the kind of writer that writes it, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route<'r> {
    word: usize,
    shard: PhantomData<&'r Shard>,
}

impl<'r> Route<'r> {
    /// The route to `shard` for a writer of `kind`.
    pub(crate) fn new(shard: &'r Shard, kind: WriterKind) -> Self {
        Self {
            // Exposed: `Route::at` makes the pointer back from the address.
            word: std::ptr::from_ref(shard).expose_provenance() | kind.code(),
            shard: PhantomData,
        }
    }

    /// The writer's kind.
    #[inline(always)]
    pub(crate) fn kind(self) -> WriterKind {
        match self.word & KIND_BITS {
            1 => WriterKind::Owner,
            2 => WriterKind::Journaled,
            _ => WriterKind::Shared,
        }
    }

    /// The shard, if its writer is of `kind`: one subtraction and one test (for a `kind` the caller
    /// names as a constant), the subtraction taking the kind bits off the address too.
    #[inline(always)]
    pub(crate) fn shard_if(self, kind: WriterKind) -> Option<&'r Shard> {
        let address = self.word.wrapping_sub(kind.code());
        // SAFETY: a route's word is 0 (no route, which leaves `address` with kind bits set) or a shard's
        // address, never 0, plus a code below the alignment: never exactly `kind`'s code. Telling the
        // compiler spares the `Option` a null test.
        unsafe { std::hint::assert_unchecked(address != 0) };
        // The kind bits are the code of `kind` exactly when subtracting it leaves none.
        (address & KIND_BITS == 0).then(|| self.at(address))
    }

    /// The shard.
    #[inline(always)]
    pub(crate) fn shard(self) -> &'r Shard {
        self.at(self.word & !KIND_BITS)
    }

    /// The shard at `address`: the word without its kind bits.
    #[inline(always)]
    fn at(self, address: usize) -> &'r Shard {
        debug_assert_eq!(address, self.word & !KIND_BITS);
        // SAFETY: the word is the address `Route::new` took from a `&'r Shard` (exposed there) plus its
        // kind's code, which the caller took off; a route read from `Routes` lives no longer than the
        // routes, whose shards outlive them (`Routes::set`'s contract).
        unsafe { &*std::ptr::with_exposed_provenance::<Shard>(address) }
    }
}

/// The routes of every claim into one region, indexed by [`ClaimSlot`]: one entry per possible slot byte,
/// so the hot path indexes it without a bounds check; slot 0 (no claim) never has a route.
pub(crate) struct Routes([AtomicUsize; 256]);

impl Routes {
    /// No routes yet.
    pub(crate) const fn new() -> Self {
        Self([const { AtomicUsize::new(0) }; 256])
    }

    /// The route of `claim`, if it has one.
    #[inline(always)]
    pub(crate) fn get(&self, claim: ShardClaim) -> Option<Route<'_>> {
        match self.0[claim.slot().index()].load(Relaxed) {
            0 => None,
            word => Some(Route {
                word,
                shard: PhantomData,
            }),
        }
    }

    /// The shard of the claim in `slot`, if the claim has a route there and its writer is of `kind`: one
    /// load, a subtraction and a test (no claim, in slot 0, has no route).
    #[inline(always)]
    pub(crate) fn shard_if(&self, slot: ClaimSlot, kind: WriterKind) -> Option<&Shard> {
        Route {
            word: self.0[slot.index()].load(Relaxed),
            shard: PhantomData,
        }
        .shard_if(kind)
    }

    /// Sets the route of `claim`.
    ///
    /// # Safety
    /// The route's shard lives as long as these routes (both belong to one region's owner, which never
    /// moves the region).
    pub(crate) unsafe fn set(&self, claim: ShardClaim, route: Route<'_>) {
        self.0[claim.slot().index()].store(route.word, Relaxed);
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
    use crate::recording::backing::zeroed_box;
    use crate::recording::shard::CachePadded;

    #[test]
    fn a_route_holds_its_shard_and_kind() {
        // SAFETY: atomics only; all-zero is valid.
        let shards: Box<[CachePadded<Shard>; 2]> = unsafe { zeroed_box() };
        let routes = Routes::new();
        let claim = ShardClaim::current();
        assert_eq!(routes.get(claim), None);
        for shard in shards.iter() {
            for kind in [WriterKind::Owner, WriterKind::Journaled, WriterKind::Shared] {
                // SAFETY: `shards` outlives `routes`.
                unsafe { routes.set(claim, Route::new(shard, kind)) };
                let route = routes.get(claim).expect("set");
                assert_eq!(route.kind(), kind);
                assert!(std::ptr::eq(route.shard(), &**shard));
                for other in [WriterKind::Owner, WriterKind::Journaled, WriterKind::Shared] {
                    let found = route.shard_if(other).map(std::ptr::from_ref);
                    assert_eq!(found, (other == kind).then_some(std::ptr::from_ref(&**shard)));
                }
            }
        }
        routes.clear();
        assert_eq!(routes.get(claim), None);
    }
}
