//! Which shard the calling thread writes, found from its thread pointer instead of a thread-local.
//!
//! A thread-local in a shared library costs a call to `__tls_get_addr` on every access (the
//! global-dynamic TLS model), about a third of a record. The thread pointer (`fs:0` on x86-64, `tpidr_el0`
//! on aarch64: the address of the thread's control block) is one instruction away and unique among
//! living threads. A process-wide open-addressing table maps it to a shard index.
//!
//! # Protocol
//!
//! An entry is a thread pointer (0 when free) and, beside it, a shard index. A thread looks at the entry
//! its pointer hashes to; if it holds its pointer, the shard index beside it is the thread's (two loads,
//! no write). Otherwise it probes on and, at the first free entry, claims it with a compare-and-swap of
//! the pointer, takes the next shard index from one counter (owned shards first, then the shared ones
//! round-robin) and stores it; until then the index reads as "none" and the thread keeps probing. Only the
//! claiming thread, or a later thread given the same pointer, ever reads an entry's shard index, so
//! `Relaxed` suffices: a pointer is reused only after its thread has exited, which orders the exit before
//! the new thread's start.
//!
//! A reused pointer belongs to a thread that has exited, so its successor simply continues the dead
//! thread's shard: owned shards keep one writer at a time, and claims are never lost. Entries are never
//! freed (no thread-exit hook may run in a library that can be unloaded); a process whose threads all
//! have distinct pointers fills the owned shards after [`OWNED_SHARDS`] of them and then shares.
//!
//! Other architectures keep the destructor-free thread-local.
//!
//! The protocol lives in [`ClaimTable`], generic over its size, so that `loom_tests` can check it on
//! small heap tables (with `RUSTFLAGS="--cfg loom"`); the process uses one static table.

use crate::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// Shards owned by one thread each.
pub(crate) const OWNED_SHARDS: usize = 64;
/// Shards shared, with atomic read-modify-writes, by the threads that come after the owners.
pub(crate) const SHARED_SHARDS: usize = 16;
/// All shards.
pub(crate) const SHARD_COUNT: usize = OWNED_SHARDS + SHARED_SHARDS;

const _: () = assert!(SHARD_COUNT < 255, "a shard index plus one fits in an entry's low byte");

/// Entries of the table: four per owned shard keeps probes short.
const ENTRIES: usize = 256;

/// The table mapping thread pointers to shards (see the module docs for the protocol).
pub(crate) struct ClaimTable<const ENTRIES: usize> {
    /// Thread pointers (0: free).
    pointers: [AtomicU64; ENTRIES],
    /// Beside each pointer, its shard index plus one (0 while being claimed).
    shards: [AtomicU8; ENTRIES],
    /// Shard indexes handed out so far; never reset.
    next_shard: AtomicU64,
}

/// The process-wide table (shared by every monitor: a shard index names the same writer in each of them).
#[cfg(not(loom))]
static TABLE: ClaimTable<ENTRIES> = ClaimTable {
    pointers: [const { AtomicU64::new(0) }; ENTRIES],
    shards: [const { AtomicU8::new(0) }; ENTRIES],
    next_shard: AtomicU64::new(0),
};

// loom's atomics are built at run time, inside a model: a loom build makes the table there, lazily
// (only the models run in a loom build, and they use tables of their own).
#[cfg(loom)]
loom::lazy_static! {
    static ref TABLE: ClaimTable<ENTRIES> = ClaimTable::new();
}

/// The shard the calling thread writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShardClaim(u8);

/// A claim as the table holds it, for tables indexed by claim (`route::Routes`): the shard index plus
/// one, or 0 for no claim, so that the hot path indexes such a table with the byte it loaded, and finds
/// nothing at 0, with no test of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClaimSlot(u8);

impl ClaimSlot {
    /// The slot of no claim.
    pub(crate) const NONE: Self = Self(0);

    /// The index into a table of 256 entries.
    #[inline(always)]
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The claim in this slot, if any.
    #[inline(always)]
    fn claim(self) -> Option<ShardClaim> {
        self.0.checked_sub(1).map(ShardClaim)
    }
}

impl<const ENTRIES: usize> ClaimTable<ENTRIES> {
    /// An empty table (the process's is a static; loom models make small ones on the heap).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            pointers: std::array::from_fn(|_| AtomicU64::new(0)),
            shards: std::array::from_fn(|_| AtomicU8::new(0)),
            next_shard: AtomicU64::new(0),
        }
    }

    /// The claim of the thread whose thread pointer is `pointer`, made on first use.
    #[inline(always)]
    fn claim(&self, pointer: u64) -> ShardClaim {
        match self.claimed_at_home(pointer) {
            Some(claim) => claim,
            None => self.probe(pointer, home_of::<ENTRIES>(pointer)),
        }
    }

    /// The claim of `pointer` if its home entry holds it.
    #[inline(always)]
    fn claimed_at_home(&self, pointer: u64) -> Option<ShardClaim> {
        self.slot_at_home(pointer).claim()
    }

    /// The slot of `pointer`'s claim if its home entry holds it, else [`ClaimSlot::NONE`] (as is the slot
    /// of an entry still being claimed).
    #[inline(always)]
    fn slot_at_home(&self, pointer: u64) -> ClaimSlot {
        let home = home_of::<ENTRIES>(pointer);
        if self.pointers[home].load(Relaxed) == pointer {
            return ClaimSlot(self.shards[home].load(Relaxed));
        }
        ClaimSlot::NONE
    }

    #[cold]
    #[inline(never)]
    fn probe(&self, pointer: u64, home: usize) -> ShardClaim {
        if pointer == 0 {
            return ShardClaim::unlisted(pointer);
        }
        for step in 0..ENTRIES {
            let at = (home + step) % ENTRIES;
            let mut seen = self.pointers[at].load(Relaxed);
            if seen == 0 {
                match self.pointers[at].compare_exchange(0, pointer, Relaxed, Relaxed) {
                    Ok(_) => {
                        let claim = self.next();
                        self.shards[at].store(claim.0 + 1, Relaxed);
                        return claim;
                    }
                    Err(now) => seen = now,
                }
            }
            if seen == pointer {
                // Ours (from an earlier claim of this thread, or of a dead thread with this pointer); a claim
                // killed between its two stores leaves no index: the shared shards take this thread.
                return match self.shards[at].load(Relaxed).checked_sub(1) {
                    Some(index) => ShardClaim(index),
                    None => ShardClaim::unlisted(pointer),
                };
            }
        }
        ShardClaim::unlisted(pointer)
    }

    fn next(&self) -> ShardClaim {
        let n = self.next_shard.fetch_add(1, Relaxed);
        if n < OWNED_SHARDS as u64 {
            return ShardClaim(n as u8);
        }
        ShardClaim((OWNED_SHARDS + (n % SHARED_SHARDS as u64) as usize) as u8)
    }
}

impl ShardClaim {
    /// The calling thread's claim, made on first use.
    #[inline(always)]
    pub(crate) fn current() -> Self {
        TABLE.claim(thread_pointer())
    }

    /// The slot of the calling thread's claim if its home entry holds it (where a thread's first claim
    /// usually puts it), with no call; [`ClaimSlot::NONE`] otherwise, when [`ShardClaim::current`] will
    /// find or make it.
    #[inline(always)]
    pub(crate) fn current_slot_if_claimed() -> ClaimSlot {
        TABLE.slot_at_home(thread_pointer())
    }

    /// This claim's slot.
    #[inline(always)]
    pub(crate) fn slot(self) -> ClaimSlot {
        ClaimSlot(self.0 + 1)
    }

    /// A claim for a thread the table cannot hold (it is full): a shared shard chosen by its pointer.
    fn unlisted(pointer: u64) -> Self {
        Self((OWNED_SHARDS + (pointer as usize >> 4) % SHARED_SHARDS) as u8)
    }

    /// Whether this thread is the only writer of its shard.
    #[inline(always)]
    pub(crate) fn is_owned(self) -> bool {
        usize::from(self.0) < OWNED_SHARDS
    }

    /// The shard's index, below [`SHARD_COUNT`].
    #[inline(always)]
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

#[inline(always)]
fn home_of<const ENTRIES: usize>(pointer: u64) -> usize {
    (pointer.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % ENTRIES
}

/// The calling thread's thread pointer: the address of its control block, unique among living threads.
#[inline(always)]
fn thread_pointer() -> u64 {
    #[cfg(all(target_arch = "x86_64", any(target_os = "linux", target_os = "android")))]
    {
        let pointer: u64;
        // SAFETY: on x86-64 Linux the TLS ABI puts the thread control block's own address at `fs:0`, in
        // every thread a C runtime started; reading it has no side effect.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) pointer, options(nostack, readonly, preserves_flags));
        }
        pointer
    }
    #[cfg(all(target_arch = "aarch64", any(target_os = "linux", target_os = "android")))]
    {
        let pointer: u64;
        // SAFETY: `tpidr_el0` holds the thread pointer on aarch64; reading it has no side effect.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) pointer, options(nostack, nomem, preserves_flags));
        }
        pointer
    }
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        any(target_os = "linux", target_os = "android")
    )))]
    {
        thread_local! {
            /// A destructor-free stand-in: the address of this thread's own copy.
            static MARK: u8 = const { 0 };
        }
        MARK.with(|mark| mark as *const u8 as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_claim_and_owners_are_unique() {
        let here = ShardClaim::current();
        assert_eq!(ShardClaim::current(), here);
        let others: Vec<ShardClaim> = (0..4)
            .map(|_| std::thread::spawn(ShardClaim::current).join().expect("thread ran"))
            .collect();
        let live: Vec<ShardClaim> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let claim = ShardClaim::current();
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        assert_eq!(ShardClaim::current(), claim);
                        claim
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread ran")).collect()
        });
        for claim in live.iter().filter(|c| c.is_owned()) {
            assert_ne!(*claim, here);
            assert_eq!(
                live.iter().filter(|c| *c == claim).count(),
                1,
                "live threads never share an owned shard"
            );
        }
        assert!(others.iter().all(|c| c.index() < SHARD_COUNT));
    }

    #[test]
    fn thread_pointers_differ_between_live_threads() {
        let here = thread_pointer();
        let there = std::thread::scope(|scope| scope.spawn(thread_pointer).join().expect("thread ran"));
        assert_ne!(here, there);
        assert_eq!(thread_pointer(), here);
    }
}

/// Model checks of the claim protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`). loom
/// runs its threads on one OS thread, so the models pass distinct thread pointers explicitly.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    /// Thread pointers (16-byte aligned, as real ones are) whose home in an `ENTRIES`-entry table is
    /// entry 0: their claims race for one entry, then probe on.
    fn colliding<const ENTRIES: usize>(count: usize) -> Vec<u64> {
        (1u64..)
            .map(|n| n << 4)
            .filter(|pointer| home_of::<ENTRIES>(*pointer) == 0)
            .take(count)
            .collect()
    }

    /// A thread that claims for `pointer`, twice.
    fn claimer(table: &Arc<ClaimTable<2>>, pointer: u64) -> ModelThread<ShardClaim> {
        let table = Arc::clone(table);
        Box::new(move || {
            let claim = table.claim(pointer);
            assert_eq!(table.claim(pointer), claim, "a thread keeps its claim");
            claim
        })
    }

    /// Three threads whose pointers share a home race for a table of two entries: two of them own a
    /// shard each (never the same one), the third finds the table full and shares; each keeps its claim.
    #[test]
    fn loom_racing_claims_own_distinct_shards() {
        let pointers = colliding::<2>(3);
        model(2, move || {
            let table = Arc::new(ClaimTable::<2>::new());
            let claims = run_threads(pointers.iter().map(|pointer| claimer(&table, *pointer)).collect());
            let mut owned: Vec<usize> = claims.iter().filter(|c| c.is_owned()).map(|c| c.index()).collect();
            owned.sort_unstable();
            assert_eq!(owned, [0, 1], "two owners, each with a shard of its own: {claims:?}");
            assert!(claims.iter().all(|c| c.index() < SHARD_COUNT));
        });
    }

    /// A thread exits and its pointer comes back in a new thread while another thread claims: the new
    /// thread continues the dead one's shard (its `Relaxed` loads see the claim through the exit and the
    /// start), and the other thread's shard is another.
    #[test]
    fn loom_a_reused_pointer_continues_the_dead_threads_shard() {
        let pointers = colliding::<2>(2);
        model(3, move || {
            let table = Arc::new(ClaimTable::<2>::new());
            let (dead, reused) = (claimer(&table, pointers[0]), claimer(&table, pointers[0]));
            let claims = run_threads(vec![
                claimer(&table, pointers[1]),
                Box::new(move || {
                    let dead = dead();
                    let successor = loom::thread::spawn(reused).join().expect("claimed");
                    assert_eq!(successor, dead, "the successor continues the dead thread's shard");
                    dead
                }),
            ]);
            assert_ne!(claims[0], claims[1]);
        });
    }
}
