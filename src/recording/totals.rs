//! Counts summed over every shard: the plain-data picture renderers and analyses work from.

use std::sync::atomic::Ordering::Relaxed;

use crate::recording::latency::{LATENCY_ROW, LatencyCounts, set_bits};
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES, Outcome};
use crate::recording::shard::{PATTERN_IDS, Shard};

/// Counts per operation code and outcome code: the shape of what the rolling windows snapshot.
pub type OutcomeCounts = [[u64; OUTCOMES]; MAX_OPERATIONS];

/// One `(operation, outcome)` series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesTotals {
    /// Operations recorded.
    pub count: u64,
    /// Sum of their durations, in nanoseconds.
    pub sum_ns: u64,
    /// Non-cumulative bucket counts: one per configured bound, then one for durations above them all.
    pub buckets: Vec<u64>,
}

/// Everything recorded, summed over shards, for the operations `0..operations`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Indexed by operation code, then outcome code.
    pub series: Vec<[SeriesTotals; OUTCOMES]>,
    /// Latency distribution per operation code.
    pub latency: Vec<LatencyCounts>,
    /// `begin` calls per operation code.
    pub begun: Vec<u64>,
    /// `end` calls per operation code.
    pub ended: Vec<u64>,
    /// Outcomes per pattern id (id 0 is `other`).
    pub patterns: Vec<[u64; OUTCOMES]>,
}

impl Totals {
    /// Zero totals shaped for `operations` operations and `buckets` finite bounds.
    pub(crate) fn zero(operations: usize, buckets: usize) -> Self {
        let series = SeriesTotals {
            count: 0,
            sum_ns: 0,
            buckets: vec![0; buckets + 1],
        };
        Self {
            series: vec![std::array::from_fn(|_| series.clone()); operations],
            latency: vec![LatencyCounts::default(); operations],
            begun: vec![0; operations],
            ended: vec![0; operations],
            patterns: vec![[0; OUTCOMES]; PATTERN_IDS],
        }
    }

    /// Sums `shards` (relaxed loads; see the protocol in `shard`).
    /// Only the first `pattern_ids` pattern ids are read (the others were never handed out).
    pub(crate) fn sum<'a>(
        shards: impl Iterator<Item = &'a Shard>,
        operations: usize,
        buckets: usize,
        pattern_ids: usize,
    ) -> Self {
        let mut totals = Self::zero(operations, buckets);
        for shard in shards {
            totals.add_shard(shard, pattern_ids);
        }
        totals
    }

    fn add_shard(&mut self, shard: &Shard, pattern_ids: usize) {
        for (op, series) in self.series.iter_mut().enumerate() {
            for (outcome, totals) in series.iter_mut().enumerate() {
                let cells = &shard.series[op][outcome];
                for (total, cell) in totals.buckets.iter_mut().zip(&cells.buckets) {
                    let count = cell.load(Relaxed);
                    *total = total.wrapping_add(count);
                    totals.count = totals.count.wrapping_add(count);
                }
                totals.sum_ns = totals.sum_ns.wrapping_add(cells.sum_ns.load(Relaxed));
            }
            self.begun[op] = self.begun[op].wrapping_add(shard.begun[op].load(Relaxed));
            self.ended[op] = self.ended[op].wrapping_add(shard.ended[op].load(Relaxed));
            for row in set_bits(shard.latency_rows[op].load(Relaxed)) {
                let cells = &shard.latency[op][row * LATENCY_ROW..(row + 1) * LATENCY_ROW];
                self.latency[op].add_row(row, &std::array::from_fn(|i| cells[i].load(Relaxed)));
            }
        }
        for (totals, cells) in self.patterns.iter_mut().zip(&shard.patterns).take(pattern_ids) {
            for (total, cell) in totals.iter_mut().zip(cells) {
                *total = total.wrapping_add(cell.load(Relaxed));
            }
        }
    }

    /// Adds `other` to these totals, part by part (extra operations in `other` are ignored).
    pub(crate) fn merge(&mut self, other: &Self) {
        self.combine(other, u64::wrapping_add, LatencyCounts::merge);
    }

    /// These totals minus `baseline` (same shape), saturating at zero.
    pub(crate) fn since(&self, baseline: &Self) -> Self {
        let mut result = self.clone();
        result.combine(baseline, u64::saturating_sub, |mine, theirs| *mine = mine.since(theirs));
        result
    }

    fn combine(&mut self, other: &Self, op: fn(u64, u64) -> u64, latency: fn(&mut LatencyCounts, &LatencyCounts)) {
        let each = |mine: &mut u64, theirs: &u64| *mine = op(*mine, *theirs);
        for (mine, theirs) in self.series.iter_mut().zip(&other.series) {
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                each(&mut mine.count, &theirs.count);
                each(&mut mine.sum_ns, &theirs.sum_ns);
                mine.buckets
                    .iter_mut()
                    .zip(&theirs.buckets)
                    .for_each(|(m, t)| each(m, t));
            }
        }
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            latency(mine, theirs);
        }
        self.begun.iter_mut().zip(&other.begun).for_each(|(m, t)| each(m, t));
        self.ended.iter_mut().zip(&other.ended).for_each(|(m, t)| each(m, t));
        for (mine, theirs) in self.patterns.iter_mut().zip(&other.patterns) {
            mine.iter_mut().zip(theirs).for_each(|(m, t)| each(m, t));
        }
    }

    /// Counts per operation and outcome, in the windows' layout.
    pub fn outcome_counts(&self) -> OutcomeCounts {
        let mut counts = [[0; OUTCOMES]; MAX_OPERATIONS];
        for (row, series) in counts.iter_mut().zip(&self.series) {
            for (count, totals) in row.iter_mut().zip(series) {
                *count = totals.count;
            }
        }
        counts
    }

    /// Operations begun and not yet ended, over all operations. Each operation counts at least zero, so
    /// ends without a begin (a host's bug) do not hide the operations of another kind in flight.
    pub fn in_flight(&self) -> u64 {
        self.begun
            .iter()
            .zip(&self.ended)
            .map(|(begun, ended)| begun.saturating_sub(*ended))
            .sum()
    }

    /// Hits and misses over every operation.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.series.iter().fold((0, 0), |(hits, misses), series| {
            (
                hits + series[Outcome::Hit.index()].count,
                misses + series[Outcome::Miss.index()].count,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_each_operation_at_least_zero() {
        let mut totals = Totals::zero(3, 1);
        totals.begun = vec![0, 2, 1];
        totals.ended = vec![5, 1, 0];
        assert_eq!(
            totals.in_flight(),
            2,
            "five unmatched ends of operation 0 hide none of the others"
        );
        totals.ended = vec![0, 2, 1];
        assert_eq!(totals.in_flight(), 0);
    }
}
