//! Rolling windows (1 minute, 5 minutes, 1 hour, 24 hours), from the window rings (`recording::window_rings`).
//!
//! # How
//!
//! The writers move what they count to rings of per-period deltas once a second (every second in a fine
//! ring, every 10 seconds in a medium one, every 5 minutes in a coarse one; latency buckets every 10
//! seconds), and what they counted in the current second is still pending in their shards. A read turns
//! both into cumulative *histories*: the counts at the start of every period the rings know are the
//! current totals minus everything counted from that period on. A window's counts are then
//! `now - history at the window's start` (`History::since`): truly rolling, at the ring's resolution
//! (1 s for 1m and 5m, 10 s for 1h, 5 min for 24h), with fixed memory, and nothing on the hot path but a
//! countdown (see `recording::recorder`). Histories of several monitors add up, which is how imported
//! state joins a monitor's own.

use std::collections::BTreeMap;

use crate::analysis::history::{Cumulative, History};
use crate::recording::latency::LatencyCounts;
use crate::recording::operation::MAX_OPERATIONS;
use crate::recording::totals::OutcomeCounts;
use crate::recording::window_rings::{LATENCY_RESOLUTION, Pending, WindowDeltas};

pub use crate::recording::window_rings::RECENT_LATENCY_SECS;
pub(crate) use crate::recording::window_rings::{Resolution, recent_latency_start};

/// The rolling windows reported: label and length in seconds.
pub const WINDOWS: [(&str, u64); 4] = [("1m", 60), ("5m", 300), ("1h", 3600), ("24h", 86_400)];

/// How much a read of a monitor takes: what renders need, or everything (exports also carry the sampled
/// stacks, which are symbolised for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadScope {
    /// What the rolling windows need: a render.
    Windows,
    /// Everything, the sampled stacks included: an export.
    Everything,
}

/// The oldest second any window reads at `now`.
pub(crate) fn oldest_window_start(now: u64) -> u64 {
    WINDOWS
        .iter()
        .map(|(_, seconds)| Resolution::for_window(*seconds, now).1)
        .min()
        .unwrap_or(now)
        .min(recent_latency_start(now))
}

/// Cumulative histories, one per resolution and one of latency, from what the rings and the pending
/// records say counted in each period, ending at the raw totals `current` and `current_latency`.
pub(crate) fn histories(
    deltas: &WindowDeltas,
    pending: &[Pending],
    current: &OutcomeCounts,
    current_latency: &[LatencyCounts],
) -> (Vec<History<OutcomeCounts>>, History<Vec<LatencyCounts>>) {
    let counts = Resolution::ALL
        .iter()
        .zip(&deltas.counts)
        .map(|(resolution, ringed)| {
            let seconds = resolution.seconds();
            let mut periods: BTreeMap<u64, OutcomeCounts> = BTreeMap::new();
            for (start, counts) in ringed {
                let sum = periods.entry(*start).or_default();
                *sum = sum.plus(counts);
            }
            for pending in pending {
                if let Some(second) = pending.second {
                    let sum = periods.entry(second - second % seconds).or_default();
                    *sum = sum.plus(&pending.counts);
                }
            }
            cumulative(periods, *current)
        })
        .collect();
    let mut periods: BTreeMap<u64, Vec<LatencyCounts>> = BTreeMap::new();
    for (start, latency) in &deltas.latency {
        let sum = periods.entry(*start).or_default();
        *sum = sum.plus(latency);
    }
    for pending in pending {
        if let Some(second) = pending.second {
            let sum = periods.entry(second - second % LATENCY_RESOLUTION).or_default();
            *sum = sum.plus(&pending.latency);
        }
    }
    let mut current_latency = current_latency.to_vec();
    current_latency.resize(MAX_OPERATIONS, LatencyCounts::default());
    (counts, cumulative(periods, current_latency))
}

/// The history whose value at the start of each period is `current` minus everything from that period on.
fn cumulative<T: Cumulative>(periods: BTreeMap<u64, T>, current: T) -> History<T> {
    let mut later = T::default();
    let mut snapshots = Vec::with_capacity(periods.len());
    for (start, delta) in periods.into_iter().rev() {
        later = later.plus(&delta);
        snapshots.push((start, current.minus(&later)));
    }
    History::new(snapshots, current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::operation::OUTCOMES;

    fn hits(n: u64) -> OutcomeCounts {
        let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
        counts[0][0] = n;
        counts
    }

    #[test]
    fn histories_subtract_what_came_later() {
        let deltas = WindowDeltas {
            counts: vec![
                vec![(100, hits(2)), (101, hits(3))],
                vec![(100, hits(5))],
                vec![(0, hits(5))],
            ],
            latency: Vec::new(),
            first_second: Some(100),
        };
        let pending = [Pending {
            second: Some(102),
            counts: hits(4),
            latency: Vec::new(),
        }];
        let (counts, _) = histories(&deltas, &pending, &hits(10), &[]);
        let fine = &counts[0];
        assert_eq!(fine.since(100)[0][0], 9, "2 + 3 + 4 pending");
        assert_eq!(fine.since(101)[0][0], 7);
        assert_eq!(fine.since(102)[0][0], 4);
        assert_eq!(fine.since(103)[0][0], 0);
        assert_eq!(
            counts[1].since(100)[0][0],
            9,
            "the medium period of 100 also holds 102's pending records"
        );
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
        assert_eq!(oldest_window_start(90_000), 90_000 - 86_100);
    }
}
