//! Where counts are stored: a region of atomics in this process's memory, or in a state file that
//! every process attaching it shares.

pub(crate) mod delta_ring;
pub(crate) mod double_buffer;
pub(crate) mod file;
pub(crate) mod ofd_lock;
pub(crate) mod thread_claim;
