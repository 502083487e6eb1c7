//! The recording core: what a record touches (per-thread shards of cache-padded atomics, the bucket
//! layouts) and how the shards are summed. Everything on the hot path lives here.

pub(crate) mod backing;
pub mod buckets;
pub mod latency;
pub mod operation;
pub(crate) mod recorder;
pub(crate) mod shard;
pub mod totals;
