//! The recording core: what a record touches (per-thread shards of cache-padded atomics, the bucket
//! layouts) and how the shards are summed. Everything on the hot path lives here, and it uses nothing of
//! the crate but `config`: `backing` says where the large parts live (a static, the heap), `shard` the
//! cells and the shard claim, `recorder` the record itself and what a window tick reads.

pub(crate) mod backing;
pub mod buckets;
pub mod latency;
pub mod operation;
pub(crate) mod recorder;
pub(crate) mod shard;
pub mod totals;
