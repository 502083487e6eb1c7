//! Rolling windows (1 minute, 5 minutes, 1 hour, 24 hours) without touching the hot path's counters.
//!
//! # How
//!
//! The shards already hold cumulative counts. Once per second (the first record or render that sees a new
//! second of the monitor's [`Clock`](crate::clock::Clock) wins a compare-and-swap and *ticks*), the
//! cumulative counts per operation and outcome are summed and stored in rings of [`SeqSlot`]s keyed by
//! period: every second in a fine ring, every 10 seconds in a medium ring, every 5 minutes in a coarse
//! one; every 10 seconds the latency buckets go to a short latency ring too. A window's counts are then
//! `now - snapshot at the window's start`: truly rolling, at the ring's resolution (1 s for 1m and 5m,
//! 10 s for 1h, 5 min for 24h), with fixed memory and nothing added to a record but a clock read and a
//! compare.
//!
//! A period without a snapshot had no tick, hence no record (every record ticks first), so the counts at
//! its start equal those of the next snapshot. Ticking is allocation-free and lock-free: summing a few
//! shards' counters, about a microsecond, once per second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::latency::{LATENCY_BUCKETS, LatencyCounts};
use crate::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::seqlock::{EMPTY, SeqSlot};

/// Counts per operation code and outcome code.
pub type OutcomeCounts = [[u64; OUTCOMES]; MAX_OPERATIONS];

/// The rolling windows reported: label and length in seconds.
pub const WINDOWS: [(&str, u64); 4] = [("1m", 60), ("5m", 300), ("1h", 3600), ("24h", 86_400)];

/// Length of the window that latency statistics call "the last minute".
pub const RECENT_LATENCY_SECS: u64 = 60;

/// Resolution of the latency ring.
const LATENCY_RESOLUTION: u64 = 10;

/// Latency buckets are 32 to a row; a row mask says which rows hold anything.
pub(crate) const LATENCY_ROW: usize = 32;

/// A ring of count snapshots, one per period of `resolution` seconds.
struct CountRing {
    resolution: u64,
    slots: Box<[SeqSlot]>,
}

impl CountRing {
    /// A ring that can look back `span` seconds.
    fn new(resolution: u64, span: u64) -> Self {
        let len = (span / resolution + 2) as usize;
        Self {
            resolution,
            slots: (0..len).map(|_| SeqSlot::new(MAX_OPERATIONS * OUTCOMES)).collect(),
        }
    }

    fn period(&self, secs: u64) -> u64 {
        secs - secs % self.resolution
    }

    fn slot(&self, period: u64) -> &SeqSlot {
        &self.slots[((period / self.resolution) % self.slots.len() as u64) as usize]
    }

    /// Stores `counts` as the snapshot of the period containing `now`, unless one is there already.
    fn store(&self, now: u64, counts: &OutcomeCounts) {
        let period = self.period(now);
        let slot = self.slot(period);
        if slot.period_hint() != period {
            slot.try_write(period, |cells| {
                for (cell, count) in cells.iter().zip(counts.iter().flatten()) {
                    cell.store(*count, Relaxed);
                }
            });
        }
    }

    /// The snapshot of the earliest period in `[from, now]`, if any was stored.
    fn earliest_since(&self, from: u64, now: u64) -> Option<OutcomeCounts> {
        self.slots
            .iter()
            .filter_map(|slot| {
                slot.read(|period, cells| {
                    let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
                    for (count, cell) in counts.iter_mut().flatten().zip(cells) {
                        *count = cell.load(Relaxed);
                    }
                    (period, counts)
                })
            })
            .filter(|(period, _)| (from..=now).contains(period))
            .min_by_key(|(period, _)| *period)
            .map(|(_, counts)| counts)
    }
}

/// The shards' state a tick reads: implemented by the recorder.
pub(crate) trait TickSource {
    /// Cumulative counts per operation and outcome.
    fn outcome_counts(&self) -> OutcomeCounts;
    /// Writes the cumulative latency buckets of every operation below `operations` into `cells`
    /// (`MAX_OPERATIONS * LATENCY_BUCKETS` cells, then one row mask per operation), touching only rows that
    /// hold counts now or held them in `cells` before.
    fn write_latency(&self, operations: usize, cells: &[AtomicU64]);
}

/// Count and latency rings with the tick that fills them.
pub(crate) struct Windows {
    /// The second of the latest tick; [`EMPTY`] before the first.
    last_tick: AtomicU64,
    /// The second of the first tick, to know how much history exists.
    first_tick: AtomicU64,
    fine: CountRing,
    medium: CountRing,
    coarse: CountRing,
    latency: Box<[SeqSlot]>,
}

impl Windows {
    pub(crate) fn new() -> Self {
        let latency_slots = (RECENT_LATENCY_SECS / LATENCY_RESOLUTION + 2) as usize;
        Self {
            last_tick: AtomicU64::new(EMPTY),
            first_tick: AtomicU64::new(EMPTY),
            fine: CountRing::new(1, 300),
            medium: CountRing::new(10, 3_600),
            coarse: CountRing::new(300, 86_400),
            latency: (0..latency_slots)
                .map(|_| SeqSlot::new(MAX_OPERATIONS * LATENCY_BUCKETS + MAX_OPERATIONS))
                .collect(),
        }
    }

    /// Whether `now` starts a second no tick has covered yet: the hot path's only question.
    #[inline(always)]
    pub(crate) fn needs_tick(&self, now: u64) -> bool {
        self.last_tick.load(Relaxed) != now
    }

    /// Snapshots `source` for second `now`, unless another thread is ticking this second or the clock
    /// went backwards.
    #[cold]
    pub(crate) fn tick(&self, now: u64, operations: usize, source: &impl TickSource) {
        let last = self.last_tick.load(Relaxed);
        if (last != EMPTY && now <= last) || self.last_tick.compare_exchange(last, now, Relaxed, Relaxed).is_err() {
            return;
        }
        if last == EMPTY {
            self.first_tick.store(now, Relaxed);
        }
        let counts = source.outcome_counts();
        for ring in [&self.fine, &self.medium, &self.coarse] {
            ring.store(now, &counts);
        }
        let period = now - now % LATENCY_RESOLUTION;
        let slot = &self.latency[((period / LATENCY_RESOLUTION) % self.latency.len() as u64) as usize];
        if slot.period_hint() != period {
            slot.try_write(period, |cells| source.write_latency(operations, cells));
        }
    }

    /// Seconds of history: from the first tick to `now`, inclusive.
    pub(crate) fn history_secs(&self, now: u64) -> u64 {
        match self.first_tick.load(Relaxed) {
            EMPTY => 0,
            first => now.saturating_sub(first) + 1,
        }
    }

    /// Counts recorded in the `window` seconds up to `now`, given the cumulative counts `current` and
    /// the counts at the last reset, `floor` (nothing before it counts).
    pub(crate) fn counts_in(
        &self,
        window: u64,
        now: u64,
        current: &OutcomeCounts,
        floor: &OutcomeCounts,
    ) -> OutcomeCounts {
        let ring = if window <= 300 {
            &self.fine
        } else if window <= 3_600 {
            &self.medium
        } else {
            &self.coarse
        };
        let from = ring.period(now).saturating_sub(window.saturating_sub(ring.resolution));
        let base = ring.earliest_since(from, now).unwrap_or(*current);
        let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
        for (op, row) in counts.iter_mut().enumerate() {
            for (outcome, count) in row.iter_mut().enumerate() {
                let start = base[op][outcome].max(floor[op][outcome]);
                *count = current[op][outcome].saturating_sub(start);
            }
        }
        counts
    }

    /// Where "the last minute" of latency starts: [`RECENT_LATENCY_SECS`] before the start of the current
    /// 10-second period, so it covers 60 to 70 seconds.
    fn recent_latency_start(now: u64) -> u64 {
        (now - now % LATENCY_RESOLUTION).saturating_sub(RECENT_LATENCY_SECS)
    }

    /// How many seconds "the last minute" covers at `now`: 60 to 70, fewer while history is shorter.
    pub(crate) fn recent_latency_secs(&self, now: u64) -> u64 {
        (now - Self::recent_latency_start(now)).min(self.history_secs(now))
    }

    /// The cumulative latency buckets at the start of the last minute, per operation; `None` when no
    /// snapshot lies in the last minute, which means nothing was recorded in it.
    pub(crate) fn recent_latency_base(&self, now: u64, operations: usize) -> Option<Vec<LatencyCounts>> {
        let from = Self::recent_latency_start(now);
        self.latency
            .iter()
            .filter_map(|slot| {
                slot.read(|period, cells| {
                    if !(from..=now).contains(&period) {
                        return None;
                    }
                    let counts = (0..operations)
                        .map(|op| {
                            let mut counts = LatencyCounts::default();
                            let row = &cells[op * LATENCY_BUCKETS..(op + 1) * LATENCY_BUCKETS];
                            for (index, cell) in row.iter().enumerate() {
                                counts.add(index, cell.load(Relaxed));
                            }
                            counts
                        })
                        .collect::<Vec<_>>();
                    Some((period, counts))
                })
                .flatten()
            })
            .min_by_key(|(period, _)| *period)
            .map(|(_, counts)| counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose cumulative counts the test sets directly.
    struct Fake {
        counts: std::cell::Cell<OutcomeCounts>,
    }

    impl TickSource for Fake {
        fn outcome_counts(&self) -> OutcomeCounts {
            self.counts.get()
        }
        fn write_latency(&self, _: usize, _: &[AtomicU64]) {}
    }

    fn hits(n: u64) -> OutcomeCounts {
        let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
        counts[0][0] = n;
        counts
    }

    #[test]
    fn windows_roll_second_by_second() {
        let windows = Windows::new();
        let source = Fake {
            counts: std::cell::Cell::new(hits(0)),
        };
        let zero = hits(0);
        // One hit per second for 100 seconds, ticking before each record as the hot path does.
        for second in 1000..1100 {
            windows.tick(second, 1, &source);
            source.counts.set(hits(second - 999));
        }
        let now = 1099;
        let current = hits(100);
        assert_eq!(windows.counts_in(60, now, &current, &zero)[0][0], 60);
        assert_eq!(
            windows.counts_in(300, now, &current, &zero)[0][0],
            100,
            "only 100 s of history"
        );
        // Ten quiet seconds later the 1m window has lost ten of them.
        windows.tick(1109, 1, &source);
        assert_eq!(windows.counts_in(60, 1109, &current, &zero)[0][0], 50);
        // A reset at 95 hits hides everything before it.
        assert_eq!(windows.counts_in(300, 1109, &current, &hits(95))[0][0], 5);
    }

    #[test]
    fn no_snapshot_in_range_means_nothing_recorded_there() {
        let windows = Windows::new();
        let source = Fake {
            counts: std::cell::Cell::new(hits(0)),
        };
        windows.tick(10, 1, &source);
        source.counts.set(hits(7));
        let current = hits(7);
        assert_eq!(windows.counts_in(60, 40, &current, &hits(0))[0][0], 7);
        assert_eq!(
            windows.counts_in(60, 100, &current, &hits(0))[0][0],
            0,
            "all 7 are older than a minute"
        );
        assert_eq!(windows.history_secs(100), 91);
    }

    #[test]
    fn ticks_never_go_back_in_time() {
        let windows = Windows::new();
        let source = Fake {
            counts: std::cell::Cell::new(hits(0)),
        };
        windows.tick(50, 1, &source);
        assert!(!windows.needs_tick(50));
        windows.tick(40, 1, &source);
        assert!(!windows.needs_tick(50), "a tick for an earlier second is ignored");
    }
}
