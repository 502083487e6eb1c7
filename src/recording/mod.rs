//! The recording core: what a record touches and where it lives. Records go to per-writer shards of
//! cache-padded atomics in a region (`region`), in this process's memory or in a state file shared by
//! every process attaching it (`state_file`, `attachment`); the writers themselves move their counts to
//! the rolling windows' rings once a second (`window_rings`). Everything on the hot path lives here, and
//! nothing here imports anything of the crate but `config` (and `sync`, the atomics facade of the
//! model checker).

pub(crate) mod attachment;
pub(crate) mod backing;
pub mod buckets;
pub mod clock;
pub(crate) mod delta_ring;
pub(crate) mod double_buffer;
pub mod exemplars;
pub(crate) mod journal;
pub mod latency;
pub mod native;
pub(crate) mod ofd_lock;
pub mod operation;
pub mod patterns;
pub(crate) mod recorder;
pub(crate) mod region;
pub(crate) mod route;
pub(crate) mod shard;
pub mod state_file;
pub(crate) mod thread_claim;
pub mod totals;
pub(crate) mod window_rings;

/// The total of `counts`, wrapping at 2^64 as the cells they come from do: a state file is input, and a
/// corrupted one can hold any value, which a plain sum would overflow on.
pub(crate) fn wrapping_total<'a>(counts: impl IntoIterator<Item = &'a u64>) -> u64 {
    counts.into_iter().fold(0, |total, count| total.wrapping_add(*count))
}
