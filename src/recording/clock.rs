//! The time rolling windows are kept in: whole seconds of a system clock, or a manual clock that tests
//! move by hand so windows roll exactly, without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Where a monitor reads the time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `CLOCK_MONOTONIC_COARSE`, read through the vDSO: a few nanoseconds, no system call.
    #[default]
    Monotonic,
    /// A clock that only moves when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The current time in whole seconds.
    #[inline(always)]
    pub fn now_secs(&self) -> u64 {
        match self {
            Self::Monotonic => coarse_secs(libc::CLOCK_MONOTONIC_COARSE),
            Self::Manual(clock) => clock.now_secs(),
        }
    }

    /// The time in whole seconds as every process sees it, across restarts: `CLOCK_REALTIME_COARSE`, for
    /// windows kept in a state file (a manual clock stays manual).
    #[inline(always)]
    pub(crate) fn shared_secs(&self) -> u64 {
        match self {
            Self::Monotonic => coarse_secs(libc::CLOCK_REALTIME_COARSE),
            Self::Manual(clock) => clock.now_secs(),
        }
    }

    /// Whether the clock only moves when a test moves it: then every record reads it.
    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Self::Manual(_))
    }
}

/// A shared, hand-driven clock for tests: clones see the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `secs`.
    pub fn starting_at(secs: u64) -> Self {
        Self(Arc::new(AtomicU64::new(secs)))
    }

    /// The time it shows.
    pub fn now_secs(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Moves the clock to `secs`.
    pub fn set(&self, secs: u64) {
        self.0.store(secs, Relaxed);
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Relaxed);
    }
}

#[inline(always)]
fn coarse_secs(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable `timespec`; the coarse clocks exist on every Linux since 2.6.32,
    // so the call cannot fail and leaves `now` initialised either way.
    unsafe { libc::clock_gettime(clock, &mut now) };
    now.tv_sec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::starting_at(100);
        let shared = Clock::Manual(clock.clone());
        assert_eq!(shared.now_secs(), 100);
        clock.advance(60);
        assert_eq!(shared.now_secs(), 160);
        clock.set(5);
        assert_eq!(shared.now_secs(), 5);
    }

    #[test]
    fn system_clocks_read_the_kernels_seconds() {
        let mut precise = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `precise` is a valid, writable `timespec`.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut precise) };
        let coarse = Clock::Monotonic.now_secs() as i64;
        assert!(
            (coarse - precise.tv_sec).abs() <= 1,
            "{coarse} against {}",
            precise.tv_sec
        );
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        let shared = Clock::Monotonic.shared_secs() as i64;
        assert!((shared - wall).abs() <= 1, "{shared} against {wall}");
        assert_eq!(Clock::Manual(ManualClock::starting_at(7)).shared_secs(), 7);
    }
}
