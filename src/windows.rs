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

use crate::history::{History, OutcomeCounts};
use crate::latency::{LATENCY_BUCKETS, LatencyCounts};
use crate::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::seqlock::{EMPTY, SeqSlot};

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

    /// Every stored snapshot.
    fn snapshots(&self) -> Vec<(u64, OutcomeCounts)> {
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
            .collect()
    }
}

/// The three count rings, by resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Resolution {
    /// 1 s periods, 5 minutes back: the 1m and 5m windows.
    Fine,
    /// 10 s periods, an hour back: the 1h window.
    Medium,
    /// 5 min periods, a day back: the 24h window.
    Coarse,
}

impl Resolution {
    /// Every resolution, finest first.
    pub(crate) const ALL: [Self; 3] = [Self::Fine, Self::Medium, Self::Coarse];

    fn seconds(self) -> u64 {
        match self {
            Self::Fine => 1,
            Self::Medium => 10,
            Self::Coarse => 300,
        }
    }

    fn span(self) -> u64 {
        match self {
            Self::Fine => 300,
            Self::Medium => 3_600,
            Self::Coarse => 86_400,
        }
    }

    /// The ring a window of `window` seconds reads, and the first period the window covers at `now`.
    pub(crate) fn for_window(window: u64, now: u64) -> (Self, u64) {
        let resolution = Self::ALL
            .into_iter()
            .find(|r| window <= r.span())
            .unwrap_or(Self::Coarse);
        let res = resolution.seconds();
        (resolution, (now - now % res).saturating_sub(window.saturating_sub(res)))
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
    /// Rings in [`Resolution::ALL`] order.
    rings: [CountRing; 3],
    latency: Box<[SeqSlot]>,
}

impl Windows {
    pub(crate) fn new() -> Self {
        let latency_slots = (RECENT_LATENCY_SECS / LATENCY_RESOLUTION + 2) as usize;
        Self {
            last_tick: AtomicU64::new(EMPTY),
            first_tick: AtomicU64::new(EMPTY),
            rings: Resolution::ALL.map(|r| CountRing::new(r.seconds(), r.span())),
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
        for ring in &self.rings {
            ring.store(now, &counts);
        }
        let period = now - now % LATENCY_RESOLUTION;
        let slot = &self.latency[((period / LATENCY_RESOLUTION) % self.latency.len() as u64) as usize];
        if slot.period_hint() != period {
            slot.try_write(period, |cells| source.write_latency(operations, cells));
        }
    }

    /// The second of the first tick, if there was one.
    pub(crate) fn first_tick(&self) -> Option<u64> {
        match self.first_tick.load(Relaxed) {
            EMPTY => None,
            first => Some(first),
        }
    }

    /// The cumulative counts' history in the ring of `resolution`, ending at `current`.
    pub(crate) fn history(&self, resolution: Resolution, current: &OutcomeCounts) -> History<OutcomeCounts> {
        let ring = &self.rings[Resolution::ALL.iter().position(|r| *r == resolution).unwrap_or(0)];
        History::new(ring.snapshots(), *current)
    }

    /// Where "the last minute" of latency starts: [`RECENT_LATENCY_SECS`] before the start of the current
    /// 10-second period, so it covers 60 to 70 seconds.
    pub(crate) fn recent_latency_start(now: u64) -> u64 {
        (now - now % LATENCY_RESOLUTION).saturating_sub(RECENT_LATENCY_SECS)
    }

    /// The latency buckets' history in the latency ring, ending at `current`.
    pub(crate) fn latency_history(&self, operations: usize, current: &[LatencyCounts]) -> History<Vec<LatencyCounts>> {
        let snapshots = self
            .latency
            .iter()
            .filter_map(|slot| {
                slot.read(|period, cells| {
                    let counts = (0..operations.min(MAX_OPERATIONS))
                        .map(|op| {
                            let mut counts = LatencyCounts::default();
                            let row = &cells[op * LATENCY_BUCKETS..(op + 1) * LATENCY_BUCKETS];
                            for (index, cell) in row.iter().enumerate() {
                                counts.add(index, cell.load(Relaxed));
                            }
                            counts
                        })
                        .collect::<Vec<_>>();
                    (period, counts)
                })
            })
            .collect();
        History::new(snapshots, current.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A source whose cumulative counts the test sets directly.
    struct Fake {
        counts: Cell<OutcomeCounts>,
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

    fn in_window(windows: &Windows, window: u64, now: u64, current: u64) -> u64 {
        let (resolution, from) = Resolution::for_window(window, now);
        windows.history(resolution, &hits(current)).since(from)[0][0]
    }

    #[test]
    fn windows_roll_second_by_second() {
        let windows = Windows::new();
        let source = Fake {
            counts: Cell::new(hits(0)),
        };
        // One hit per second for 100 seconds, ticking before each record as the hot path does.
        for second in 1000..1100 {
            windows.tick(second, 1, &source);
            source.counts.set(hits(second - 999));
        }
        assert_eq!(in_window(&windows, 60, 1099, 100), 60);
        assert_eq!(in_window(&windows, 300, 1099, 100), 100, "only 100 s of history");
        // Ten quiet seconds later the 1m window has lost ten of them.
        windows.tick(1109, 1, &source);
        assert_eq!(in_window(&windows, 60, 1109, 100), 50);
        assert_eq!(in_window(&windows, 3_600, 1109, 100), 100);
    }

    #[test]
    fn no_snapshot_in_range_means_nothing_recorded_there() {
        let windows = Windows::new();
        let source = Fake {
            counts: Cell::new(hits(0)),
        };
        windows.tick(10, 1, &source);
        assert_eq!(in_window(&windows, 60, 40, 7), 7);
        assert_eq!(in_window(&windows, 60, 100, 7), 0, "all 7 are older than a minute");
        assert_eq!(windows.first_tick(), Some(10));
    }

    #[test]
    fn ticks_never_go_back_in_time() {
        let windows = Windows::new();
        let source = Fake {
            counts: Cell::new(hits(0)),
        };
        windows.tick(50, 1, &source);
        assert!(!windows.needs_tick(50));
        windows.tick(40, 1, &source);
        assert!(!windows.needs_tick(50), "a tick for an earlier second is ignored");
    }

    #[test]
    fn each_window_reads_its_own_ring() {
        assert_eq!(Resolution::for_window(60, 1_000), (Resolution::Fine, 941));
        assert_eq!(Resolution::for_window(300, 1_000), (Resolution::Fine, 701));
        assert_eq!(
            Resolution::for_window(3_600, 10_005),
            (Resolution::Medium, 10_000 - 3_590)
        );
        assert_eq!(
            Resolution::for_window(86_400, 90_000),
            (Resolution::Coarse, 90_000 - 86_100)
        );
    }
}
