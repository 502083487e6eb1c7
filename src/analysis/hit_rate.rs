//! The hit rate: hits over hits plus misses. Every hit rate the monitor reports (the view, the JSON
//! reports, the alert rules) comes from [`hit_rate`].

/// Hits over hits plus misses; `None` without lookups.
pub(crate) fn hit_rate(hits: u64, misses: u64) -> Option<f64> {
    let lookups = hits + misses;
    (lookups > 0).then(|| hits as f64 / lookups as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_over_lookups_and_none_without_lookups() {
        assert_eq!(hit_rate(3, 1), Some(0.75));
        assert_eq!(hit_rate(0, 5), Some(0.0));
        assert_eq!(hit_rate(0, 0), None);
    }
}
