//! The `"buckets"` key: bounds of the Prometheus histogram `<ns>_operation_duration_seconds`.
//!
//! ```json
//! {"buckets": [0.0001, 0.001, 0.01, 0.1]}
//! ```
//!
//! The bounds are configured in seconds (as Prometheus writes them) and kept as whole nanoseconds too, the
//! unit durations are recorded in, so "duration <= bound" is an exact integer comparison on the hot path.
//! Changeable only before the first record or right after a reset (`Monitor::configure` checks).

/// The most finite bounds a histogram can have (the `+Inf` bucket comes on top).
pub const MAX_BUCKETS: usize = 32;

/// Log-spaced bounds from 1 us to 10 s: 1, 2.5 and 5 of every decade, where cache latencies live.
pub const DEFAULT_BUCKETS: [f64; 22] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Validated histogram bounds, in seconds and in nanoseconds.
///
/// Held inline (at most [`MAX_BUCKETS`] of each, unused ones zero), not on the heap: a configuration
/// whose heap is given back as the library is unloaded keeps its buckets (see
/// `Config::release_heap`).
#[derive(Clone, Copy, PartialEq)]
pub struct BucketBounds {
    len: usize,
    seconds: [f64; MAX_BUCKETS],
    nanos: [u64; MAX_BUCKETS],
}

impl std::fmt::Debug for BucketBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketBounds")
            .field("seconds", &self.seconds())
            .field("nanos", &self.nanos())
            .finish()
    }
}

impl Default for BucketBounds {
    fn default() -> Self {
        match Self::new(DEFAULT_BUCKETS.to_vec()) {
            Ok(bounds) => bounds,
            Err(reason) => unreachable!("default buckets are valid: {reason}"),
        }
    }
}

impl BucketBounds {
    /// Checks `seconds`: 1 to [`MAX_BUCKETS`] finite, positive bounds, strictly increasing even once
    /// rounded to whole nanoseconds.
    pub fn new(seconds: Vec<f64>) -> Result<Self, String> {
        if seconds.is_empty() || seconds.len() > MAX_BUCKETS {
            return Err(format!(
                "buckets: expected 1 to {MAX_BUCKETS} bounds, got {}",
                seconds.len()
            ));
        }
        let mut bounds = Self {
            len: seconds.len(),
            seconds: [0.0; MAX_BUCKETS],
            nanos: [0; MAX_BUCKETS],
        };
        for (i, &bound) in seconds.iter().enumerate() {
            if !bound.is_finite() || bound <= 0.0 || bound > 1e9 {
                return Err(format!("buckets: {bound} is not a positive number of seconds"));
            }
            let ns = whole_nanos(bound);
            if i > 0 && bounds.nanos[i - 1] >= ns {
                return Err(format!("buckets: {bound} does not increase on the previous bound"));
            }
            bounds.seconds[i] = bound;
            bounds.nanos[i] = ns;
        }
        Ok(bounds)
    }

    /// The bounds in seconds, as configured: the `le` label values.
    pub fn seconds(&self) -> &[f64] {
        &self.seconds[..self.len]
    }

    /// The bounds in nanoseconds.
    pub(crate) fn nanos(&self) -> &[u64] {
        &self.nanos[..self.len]
    }
}

/// The largest whole number of nanoseconds not above `seconds`, forgiving float noise such as
/// `0.3e-6 * 1e9 == 299.99999999999994`.
fn whole_nanos(seconds: f64) -> u64 {
    let exact = seconds * 1e9;
    let nearest = exact.round();
    if (exact - nearest).abs() <= 1e-6 * nearest.max(1.0) {
        nearest as u64
    } else {
        exact.floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_are_exact_nanoseconds() {
        let bounds = BucketBounds::default();
        assert_eq!(bounds.nanos()[0], 1_000);
        assert_eq!(bounds.nanos()[1], 2_500);
        assert_eq!(*bounds.nanos().last().unwrap(), 10_000_000_000);
    }

    #[test]
    fn rejects_bad_bounds() {
        for bad in [
            vec![],
            vec![0.0],
            vec![-1.0],
            vec![f64::NAN],
            vec![1.0, 1.0],
            vec![2.0, 1.0],
            vec![0.1; 33],
        ] {
            assert!(BucketBounds::new(bad.clone()).is_err(), "{bad:?} accepted");
        }
        assert!(BucketBounds::new(vec![1e-9, 2e-9]).is_ok());
        assert!(BucketBounds::new(vec![1e-10, 2e-10]).is_err(), "both round to 0 ns");
    }

    #[test]
    fn float_noise_is_forgiven() {
        assert_eq!(whole_nanos(0.3e-6), 300);
        assert_eq!(whole_nanos(1.5e-9), 1);
    }
}
