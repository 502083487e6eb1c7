//! The stopwatch [`Monitor::start`](super::Monitor::start) times operations with: the CPU's time-stamp
//! counter through `quanta` (calibrated once per process against the monotonic clock), read raw when an
//! operation starts and scaled to nanoseconds once, when it finishes. `quanta::Instant` would scale at
//! both ends and go through a `Duration` (a division by 10^9 and a product back) for every operation.

use std::sync::OnceLock;

/// The process's one clock: calibrating takes milliseconds, so it is made once, by [`calibrate`] or the
/// first operation timed.
static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock now, so that no operation pays for it.
pub(crate) fn calibrate() {
    clock();
}

/// When an operation started, in the clock's raw ticks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    clock: &'static quanta::Clock,
    ticks: u64,
}

impl Started {
    /// Now.
    #[inline]
    pub(crate) fn now() -> Self {
        let clock = clock();
        Self {
            clock,
            ticks: clock.raw(),
        }
    }

    /// Nanoseconds since `self` (0 if the clock reads earlier, as a counter read on another core may).
    #[inline]
    pub(crate) fn elapsed_ns(self) -> u64 {
        self.clock.delta_as_nanos(self.ticks, self.clock.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_time_is_in_nanoseconds() {
        let started = Started::now();
        let wall = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (elapsed, wall) = (started.elapsed_ns(), wall.elapsed().as_nanos() as u64);
        // Calibration is good to well under a percent; the two clocks are read a few instructions apart.
        assert!(elapsed >= 20_000_000, "{elapsed} ns for a 20 ms sleep");
        assert!(
            elapsed.abs_diff(wall) < wall / 20,
            "{elapsed} ns by the stopwatch, {wall} ns by std"
        );
    }
}
