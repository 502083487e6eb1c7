//! Key patterns: reduces keys such as `user:42` to `user:*` and counts outcomes per pattern.

/// The most distinct patterns a monitor can be configured to keep.
pub const MAX_PATTERNS: usize = 1024;

/// Pattern counter slots in a shard: slot 0 is `other`, then one per pattern.
pub(crate) const PATTERN_SLOTS: usize = MAX_PATTERNS + 1;
