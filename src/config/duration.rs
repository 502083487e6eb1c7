//! The longest duration a record keeps: one ceiling for every way in (the C ABI, `Monitor::record`, the
//! in-flight guard), so that a host whose clock went back, and whose "negative" duration wrapped to
//! nearly 2^64, cannot make a histogram's `_sum` fall.

/// Durations above this many nanoseconds (2^42 - 1, about 73 minutes: the last duration the latency
/// histogram resolves) are recorded as this many. A series' sum of nanoseconds then wraps only after
/// 2^22 (about 4 million) records at the ceiling.
pub const MAX_DURATION_NS: u64 = (1 << 42) - 1;

/// `duration_ns`, or [`MAX_DURATION_NS`] when it is longer.
#[inline(always)]
pub const fn clamp_duration(duration_ns: u64) -> u64 {
    if duration_ns > MAX_DURATION_NS {
        MAX_DURATION_NS
    } else {
        duration_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_above_the_ceiling_are_clamped() {
        for (given, kept) in [
            (0, 0),
            (1_000, 1_000),
            (MAX_DURATION_NS, MAX_DURATION_NS),
            (MAX_DURATION_NS + 1, MAX_DURATION_NS),
            (u64::MAX - 999, MAX_DURATION_NS),
            (u64::MAX, MAX_DURATION_NS),
        ] {
            assert_eq!(clamp_duration(given), kept, "{given}");
        }
        assert_eq!(MAX_DURATION_NS, 4_398_046_511_103);
    }
}
