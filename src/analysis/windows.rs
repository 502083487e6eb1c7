//! Rolling windows (1 minute, 5 minutes, 1 hour, 24 hours) without touching the hot path's counters.
//!
//! # How
//!
//! The shards already hold cumulative counts. Once per second (the first record or render that sees a new
//! second of the monitor's [`Clock`](crate::analysis::clock::Clock) wins a compare-and-swap and *ticks*), the
//! cumulative counts per operation and outcome are summed and stored as a *snapshot* in rings of
//! sequence-locked snapshots (`seqlock::SeqSnapshot`) keyed by period:
//! every second in a fine ring, every 10 seconds in a medium ring, every 5 minutes in a coarse
//! one; every 10 seconds the latency buckets go to a short latency ring too. A window's counts are then
//! `now - snapshot at the window's start`: truly rolling, at the ring's resolution (1 s for 1m and 5m,
//! 10 s for 1h, 5 min for 24h), with fixed memory and nothing added to a record but a clock read and a
//! compare.
//!
//! A period without a snapshot had no tick, hence no record (every record ticks first), so the counts at
//! its start equal those of the next snapshot. Ticking is allocation-free and lock-free: summing a few
//! shards' counters, about a microsecond, once per second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::analysis::history::History;
use crate::analysis::seqlock::SeqSnapshot;
use crate::recording::backing::Zeroable;
use crate::recording::latency::{LATENCY_BUCKETS, LatencyCounts, rows_of};
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::recording::recorder::TickSource;
use crate::recording::totals::OutcomeCounts;

/// The rolling windows reported: label and length in seconds.
pub const WINDOWS: [(&str, u64); 4] = [("1m", 60), ("5m", 300), ("1h", 3600), ("24h", 86_400)];

/// Length of the window that latency statistics call "the last minute".
pub const RECENT_LATENCY_SECS: u64 = 60;

/// Resolution of the latency ring.
const LATENCY_RESOLUTION: u64 = 10;

/// Cells of a count snapshot: one per operation and outcome.
const COUNT_CELLS: usize = MAX_OPERATIONS * OUTCOMES;

/// Cells of a latency snapshot: the buckets of every operation, then one row mask per operation.
pub(crate) const LATENCY_CELLS: usize = MAX_OPERATIONS * LATENCY_BUCKETS + MAX_OPERATIONS;

/// Snapshots each ring keeps: every period of its span, plus the current one, plus one being overwritten.
const FINE_LEN: usize = Resolution::Fine.ring_len();
const MEDIUM_LEN: usize = Resolution::Medium.ring_len();
const COARSE_LEN: usize = Resolution::Coarse.ring_len();
const LATENCY_LEN: usize = (RECENT_LATENCY_SECS / LATENCY_RESOLUTION) as usize + 2;

/// A ring of count snapshots, one per period (the period length is the caller's [`Resolution`]).
struct CountRing<const LEN: usize> {
    snapshots: [SeqSnapshot<COUNT_CELLS>; LEN],
}

impl<const LEN: usize> CountRing<LEN> {
    const fn new() -> Self {
        Self {
            snapshots: [const { SeqSnapshot::new() }; LEN],
        }
    }

    /// Stores `counts` as the snapshot of `period` (the `index`-th period of the clock), unless it is
    /// there already.
    fn store(&self, period: u64, index: u64, counts: &OutcomeCounts) {
        let snapshot = &self.snapshots[(index % LEN as u64) as usize];
        if !snapshot.holds_period(period) {
            snapshot.try_write(period, |cells| {
                for (cell, count) in cells.iter().zip(counts.iter().flatten()) {
                    cell.store(*count, Relaxed);
                }
            });
        }
    }

    /// The stored snapshots at `starts` (see [`select`]), or all of them.
    fn read(&self, starts: Option<&[u64]>) -> Vec<(u64, OutcomeCounts)> {
        select(&self.snapshots, starts)
            .filter_map(|snapshot| {
                snapshot.read(|period, cells| {
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

/// How much of a monitor's state a read takes: what the rolling windows need now (a render), or
/// everything (an export). One type for every layer a read goes through: the rings here, and the sampled
/// stacks the monitor adds to an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadScope {
    /// What the rolling windows at the time of reading need: from each ring, only the snapshots that
    /// answer [`History::since`] for the windows' start periods (a handful). Sampled stacks are left out
    /// (symbolising them is a render of its own, the flamegraph). A render.
    Windows,
    /// Every snapshot of every ring, and the sampled stacks, symbolised: an export.
    Everything,
}

/// The snapshots to read, chosen from their periods without reading their cells: with `starts`, the
/// earliest snapshot at or after each start (a history of just those answers `since(start)` for each
/// start exactly as the full one would, alone or summed with others); without, all of them.
fn select<'a, const N: usize>(
    snapshots: &'a [SeqSnapshot<N>],
    starts: Option<&[u64]>,
) -> impl Iterator<Item = &'a SeqSnapshot<N>> {
    let wanted: Vec<usize> = match starts {
        None => (0..snapshots.len()).collect(),
        Some(starts) => {
            let mut wanted: Vec<usize> = starts
                .iter()
                .filter_map(|start| {
                    snapshots
                        .iter()
                        .enumerate()
                        .filter_map(|(index, snapshot)| snapshot.period().filter(|p| p >= start).map(|p| (p, index)))
                        .min()
                        .map(|(_, index)| index)
                })
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            wanted
        }
    };
    wanted.into_iter().map(move |index| &snapshots[index])
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

    const fn seconds(self) -> u64 {
        match self {
            Self::Fine => 1,
            Self::Medium => 10,
            Self::Coarse => 300,
        }
    }

    const fn span(self) -> u64 {
        match self {
            Self::Fine => 300,
            Self::Medium => 3_600,
            Self::Coarse => 86_400,
        }
    }

    /// Snapshots this resolution's ring keeps: every period of its span, plus the current one, plus one
    /// being overwritten.
    const fn ring_len(self) -> usize {
        (self.span() / self.seconds()) as usize + 2
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

/// Count and latency rings with the tick that fills them. All-zero is the valid initial state.
pub(crate) struct Windows {
    /// The second of the latest tick plus one; zero before the first.
    last_tick: AtomicU64,
    /// The second of the first tick plus one, to know how much history exists; zero before it.
    first_tick: AtomicU64,
    fine: CountRing<FINE_LEN>,
    medium: CountRing<MEDIUM_LEN>,
    coarse: CountRing<COARSE_LEN>,
    latency: [SeqSnapshot<LATENCY_CELLS>; LATENCY_LEN],
}

// SAFETY: `Windows` is nothing but atomics (in arrays), and all-zero means "no tick yet, every snapshot empty".
unsafe impl Zeroable for Windows {}

impl Windows {
    /// Empty windows, for a `static`.
    pub(crate) const fn new() -> Self {
        Self {
            last_tick: AtomicU64::new(0),
            first_tick: AtomicU64::new(0),
            fine: CountRing::new(),
            medium: CountRing::new(),
            coarse: CountRing::new(),
            latency: [const { SeqSnapshot::new() }; LATENCY_LEN],
        }
    }

    /// Whether `now` starts a second no tick has covered yet: the hot path's only question.
    #[inline(always)]
    pub(crate) fn needs_tick(&self, now: u64) -> bool {
        self.last_tick.load(Relaxed) != now.wrapping_add(1)
    }

    /// Snapshots `source` for second `now`, unless another thread is ticking this second or the clock
    /// went backwards.
    #[cold]
    pub(crate) fn tick(&self, now: u64, operations: usize, source: &impl TickSource) {
        let last = self.last_tick.load(Relaxed);
        let next = now.wrapping_add(1);
        if (last != 0 && next <= last) || self.last_tick.compare_exchange(last, next, Relaxed, Relaxed).is_err() {
            return;
        }
        if last == 0 {
            self.first_tick.store(next, Relaxed);
        }
        let counts = source.outcome_counts();
        for resolution in Resolution::ALL {
            let seconds = resolution.seconds();
            let (period, index) = (now - now % seconds, now / seconds);
            match resolution {
                Resolution::Fine => self.fine.store(period, index, &counts),
                Resolution::Medium => self.medium.store(period, index, &counts),
                Resolution::Coarse => self.coarse.store(period, index, &counts),
            }
        }
        let period = now - now % LATENCY_RESOLUTION;
        let snapshot = &self.latency[((now / LATENCY_RESOLUTION) % LATENCY_LEN as u64) as usize];
        if !snapshot.holds_period(period) {
            snapshot.try_write(period, |cells| source.write_latency(operations, cells));
        }
    }

    /// The second of the first tick, if there was one.
    pub(crate) fn first_tick(&self) -> Option<u64> {
        self.first_tick.load(Relaxed).checked_sub(1)
    }

    /// The cumulative counts' history in the ring of `resolution`, ending at `current`, read at `now`
    /// with `scope`.
    pub(crate) fn history(
        &self,
        resolution: Resolution,
        current: &OutcomeCounts,
        scope: ReadScope,
        now: u64,
    ) -> History<OutcomeCounts> {
        let starts: Vec<u64> = WINDOWS
            .iter()
            .map(|(_, seconds)| Resolution::for_window(*seconds, now))
            .filter(|(r, _)| *r == resolution)
            .map(|(_, start)| start)
            .collect();
        let starts = (scope == ReadScope::Windows).then_some(starts.as_slice());
        let snapshots = match resolution {
            Resolution::Fine => self.fine.read(starts),
            Resolution::Medium => self.medium.read(starts),
            Resolution::Coarse => self.coarse.read(starts),
        };
        History::new(snapshots, *current)
    }

    /// Where "the last minute" of latency starts: [`RECENT_LATENCY_SECS`] before the start of the current
    /// 10-second period, so it covers 60 to 70 seconds.
    pub(crate) fn recent_latency_start(now: u64) -> u64 {
        (now - now % LATENCY_RESOLUTION).saturating_sub(RECENT_LATENCY_SECS)
    }

    /// The latency buckets' history in the latency ring, ending at `current`, read at `now` with `scope`:
    /// only operations below `operations`, only rows that ever counted anything.
    pub(crate) fn latency_history(
        &self,
        operations: usize,
        current: &[LatencyCounts],
        scope: ReadScope,
        now: u64,
    ) -> History<Vec<LatencyCounts>> {
        let recent = [Self::recent_latency_start(now)];
        let starts = (scope == ReadScope::Windows).then_some(&recent[..]);
        let snapshots = select(&self.latency, starts)
            .filter_map(|snapshot| {
                snapshot.read(|period, cells| {
                    let masks = &cells[MAX_OPERATIONS * LATENCY_BUCKETS..];
                    let counts = (0..operations.min(MAX_OPERATIONS))
                        .map(|op| {
                            let mut counts = LatencyCounts::default();
                            let row = &cells[op * LATENCY_BUCKETS..(op + 1) * LATENCY_BUCKETS];
                            for index in rows_of(masks[op].load(Relaxed)) {
                                counts.add(index, row[index].load(Relaxed));
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
    use crate::recording::backing::Backing;

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
        let everything = windows
            .history(resolution, &hits(current), ReadScope::Everything, now)
            .since(from)[0][0];
        let needed = windows
            .history(resolution, &hits(current), ReadScope::Windows, now)
            .since(from)[0][0];
        assert_eq!(
            needed, everything,
            "the snapshots the windows need give what every snapshot gives"
        );
        needed
    }

    #[test]
    fn windows_roll_second_by_second() {
        let windows = Backing::<Windows>::heap();
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
        let windows = Backing::<Windows>::heap();
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
        let windows = Backing::<Windows>::heap();
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
