//! Counts summed over every shard: the plain-data picture renderers and analyses work from.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::recording::buckets::MAX_BUCKETS;
use crate::recording::latency::{LATENCY_BUCKETS, LATENCY_ROW, LatencyCounts, row_range, set_bits};
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES, Outcome};
use crate::recording::shard::{PATTERN_IDS, Shard};
use crate::recording::wrapping_total;

/// Counts per operation code and outcome code: the shape of what the rolling windows snapshot.
pub type OutcomeCounts = [[u64; OUTCOMES]; MAX_OPERATIONS];

/// One `(operation, outcome)` series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesTotals {
    /// Operations counted: those recorded with a duration (the buckets) and those counted without one.
    pub count: u64,
    /// Sum of the recorded durations, in nanoseconds.
    pub sum_ns: u64,
    /// Non-cumulative bucket counts of the recorded durations: one per configured bound, then one for
    /// durations above them all.
    pub buckets: Vec<u64>,
    /// Operations counted without a duration (`Monitor::count`: evictions a cache reports, say). They
    /// count in `operations_total`, not in the duration histogram.
    pub untimed: u64,
    /// The recorded durations in the latency buckets: the series' native histogram (schema 5).
    pub latency: LatencyCounts,
}

impl SeriesTotals {
    /// Operations recorded with a duration: the duration histogram's `_count`.
    pub fn timed(&self) -> u64 {
        wrapping_total(&self.buckets)
    }

    /// `count` from the buckets and `untimed`.
    fn recount(&mut self) {
        self.count = self.timed().wrapping_add(self.untimed);
    }
}

/// Everything recorded, summed over shards, for the operations `0..operations`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Indexed by operation code, then outcome code.
    pub series: Vec<[SeriesTotals; OUTCOMES]>,
    /// Latency distribution per operation code: its series' latency buckets summed over outcomes.
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
            untimed: 0,
            latency: LatencyCounts::default(),
        };
        Self {
            series: vec![std::array::from_fn(|_| series.clone()); operations],
            latency: vec![LatencyCounts::default(); operations],
            begun: vec![0; operations],
            ended: vec![0; operations],
            patterns: vec![[0; OUTCOMES]; PATTERN_IDS],
        }
    }

    /// Sums `shards` (index in the region, shard) with relaxed loads (see the protocol in `shard`), for
    /// every operation and every bucket cell, and the first `pattern_ids` pattern ids (the others were
    /// never handed out). Operations in flight count only from shards whose writer is `live`; with
    /// `from_claim`, from the shard's last claim on (a state file: a dead owner's unfinished operations
    /// are not in flight).
    pub(crate) fn sum(
        shards: &[(usize, &Shard)],
        pattern_ids: usize,
        live: impl Fn(usize) -> bool,
        from_claim: bool,
    ) -> Self {
        let mut totals = Self::zero(MAX_OPERATIONS, MAX_BUCKETS);
        for (index, shard) in shards {
            totals.add_shard(shard, pattern_ids);
            if live(*index) {
                totals.add_in_flight(shard, from_claim);
            }
        }
        totals.sum_latency();
        totals
    }

    /// Sets each operation's latency to the sum of its series' latency buckets.
    pub(crate) fn sum_latency(&mut self) {
        self.latency = self
            .series
            .iter()
            .map(|series| {
                let mut sum = LatencyCounts::default();
                series.iter().for_each(|s| sum.merge(&s.latency));
                sum
            })
            .collect();
    }

    fn add_shard(&mut self, shard: &Shard, pattern_ids: usize) {
        for (op, series) in self.series.iter_mut().enumerate() {
            for (outcome, totals) in series.iter_mut().enumerate() {
                // The latency cells before the bucket cells: a writer adds to the bucket first, so a record
                // racing this read is never in the latency buckets without being in the histogram's count
                // (on the machines that keep stores and loads in order).
                let latency = &shard.latency[op][outcome];
                let rows = shard.latency_rows[op][outcome].load(Relaxed);
                totals.latency.reserve_rows(rows);
                for row in set_bits(rows) {
                    if let Some(cells) = latency.get(row_range(row)) {
                        totals
                            .latency
                            .add_row(row, &std::array::from_fn(|i| cells[i].load(Relaxed)));
                    }
                }
                let cells = &shard.series[op][outcome];
                for (total, cell) in totals.buckets.iter_mut().zip(&cells.buckets) {
                    let count = cell.load(Relaxed);
                    *total = total.wrapping_add(count);
                    totals.count = totals.count.wrapping_add(count);
                }
                let untimed = cells.untimed.load(Relaxed);
                totals.untimed = totals.untimed.wrapping_add(untimed);
                totals.count = totals.count.wrapping_add(untimed);
                totals.sum_ns = totals.sum_ns.wrapping_add(cells.sum_ns.load(Relaxed));
            }
        }
        for (totals, cells) in self.patterns.iter_mut().zip(&shard.patterns).take(pattern_ids) {
            for (total, cell) in totals.iter_mut().zip(cells) {
                *total = total.wrapping_add(cell.load(Relaxed));
            }
        }
    }

    fn add_in_flight(&mut self, shard: &Shard, from_claim: bool) {
        let since = |cell: &AtomicU64, base: &AtomicU64| {
            let base = if from_claim { base.load(Relaxed) } else { 0 };
            cell.load(Relaxed).wrapping_sub(base)
        };
        for op in 0..MAX_OPERATIONS {
            self.begun[op] = self.begun[op].wrapping_add(since(&shard.begun[op], &shard.claim_base.begun[op]));
            self.ended[op] = self.ended[op].wrapping_add(since(&shard.ended[op], &shard.claim_base.ended[op]));
        }
    }

    /// These totals with `operations` operations and `buckets` finite bounds: bucket cells past the
    /// bounds (what an earlier, longer set of bounds counted, or a record racing a change of bounds) count
    /// in the `+Inf`-only bucket, and every count is the sum of its buckets, so `_count`, `+Inf` and the
    /// buckets agree whatever happened to the bounds.
    pub(crate) fn shaped(mut self, operations: usize, buckets: usize) -> Self {
        let operations = operations.min(self.series.len());
        self.series.truncate(operations);
        self.latency.truncate(operations);
        self.begun.truncate(operations);
        self.ended.truncate(operations);
        for series in self.series.iter_mut().flatten() {
            if series.buckets.len() > buckets + 1 {
                let beyond = wrapping_total(&series.buckets[buckets + 1..]);
                series.buckets.truncate(buckets + 1);
                series.buckets[buckets] = series.buckets[buckets].wrapping_add(beyond);
            }
            series.buckets.resize(buckets + 1, 0);
            series.recount();
        }
        self
    }

    /// Writes these (raw) totals into a reset baseline's cells: per series the sum and every bucket
    /// cell, then per series a mask of the latency rows present and every row (only present ones
    /// written, so that a read skips the others), then the pattern counts.
    pub(crate) fn write_baseline(&self, cells: &[AtomicU64]) {
        let mut cursor = Cursor { cells, at: 0 };
        for op in 0..MAX_OPERATIONS {
            for outcome in 0..OUTCOMES {
                let series = self.series.get(op).map(|s| &s[outcome]);
                cursor.put(series.map_or(0, |s| s.sum_ns));
                cursor.put(series.map_or(0, |s| s.untimed));
                for bucket in 0..=MAX_BUCKETS {
                    cursor.put(series.and_then(|s| s.buckets.get(bucket)).copied().unwrap_or(0));
                }
            }
        }
        for op in 0..MAX_OPERATIONS {
            for outcome in 0..OUTCOMES {
                let empty = LatencyCounts::default();
                let latency = self.series.get(op).map_or(&empty, |s| &s[outcome].latency);
                // The rows present, then every row: those absent are read as zeros, not written.
                let (rows, data) = latency.rows();
                cursor.put(rows);
                let mut data = data.iter();
                for row in 0..LATENCY_BUCKETS / LATENCY_ROW {
                    match (rows & (1 << row) != 0).then(|| data.next()).flatten() {
                        Some(counts) => counts.iter().for_each(|count| cursor.put(*count)),
                        None => cursor.skip(LATENCY_ROW),
                    }
                }
            }
        }
        for id in 0..PATTERN_IDS {
            for outcome in 0..OUTCOMES {
                cursor.put(self.patterns.get(id).map_or(0, |p| p[outcome]));
            }
        }
    }

    /// Raw totals from a reset baseline's cells (see [`Totals::write_baseline`]); in flight is zero.
    pub(crate) fn read_baseline(cells: &[AtomicU64]) -> Self {
        let mut totals = Self::zero(MAX_OPERATIONS, MAX_BUCKETS);
        let mut cursor = Cursor { cells, at: 0 };
        for series in totals.series.iter_mut().flatten() {
            series.sum_ns = cursor.take();
            series.untimed = cursor.take();
            for bucket in series.buckets.iter_mut() {
                *bucket = cursor.take();
            }
            series.recount();
        }
        for series in totals.series.iter_mut().flatten() {
            let rows = cursor.take();
            for row in 0..LATENCY_BUCKETS / LATENCY_ROW {
                if rows & (1 << row) == 0 {
                    cursor.skip(LATENCY_ROW);
                } else {
                    let counts: [u64; LATENCY_ROW] = std::array::from_fn(|_| cursor.take());
                    series.latency.add_row(row, &counts);
                }
            }
        }
        for counts in totals.patterns.iter_mut() {
            for count in counts.iter_mut() {
                *count = cursor.take();
            }
        }
        totals.sum_latency();
        totals
    }

    /// Whether adding `other` (same shape) overflows no count: buckets, latency buckets, pattern counts.
    pub(crate) fn adds_up_with(&self, other: &Self) -> bool {
        let fits = |a: u64, b: u64| a.checked_add(b).is_some();
        let series = self.series.iter().zip(&other.series).all(|(mine, theirs)| {
            mine.iter().zip(theirs).all(|(mine, theirs)| {
                fits(mine.count, theirs.count)
                    && mine.buckets.iter().zip(&theirs.buckets).all(|(a, b)| fits(*a, *b))
                    && fits(mine.latency.total(), theirs.latency.total())
            })
        });
        let latency = self
            .latency
            .iter()
            .zip(&other.latency)
            .all(|(mine, theirs)| fits(mine.total(), theirs.total()));
        let patterns = self
            .patterns
            .iter()
            .zip(&other.patterns)
            .all(|(mine, theirs)| mine.iter().zip(theirs).all(|(a, b)| fits(*a, *b)));
        series && latency && patterns
    }

    /// Adds `other` to these totals, part by part (extra operations in `other` are ignored).
    pub(crate) fn merge(&mut self, other: &Self) {
        self.combine(other, u64::wrapping_add, LatencyCounts::merge);
    }

    /// These totals minus `baseline` (same shape), cell by cell, saturating at zero; counts are the sums
    /// of the buckets that remain. Duration sums wrap like the cells that hold them (a sum may pass
    /// 2^64 ns after its baseline was taken), so theirs is a wrapping difference.
    pub(crate) fn since(&self, baseline: &Self) -> Self {
        let mut result = self.clone();
        result.combine(baseline, u64::saturating_sub, |mine, theirs| *mine = mine.since(theirs));
        let pairs = result.series.iter_mut().flatten().zip(self.series.iter().flatten());
        for ((series, now), then) in pairs.zip(baseline.series.iter().flatten()) {
            series.sum_ns = now.sum_ns.wrapping_sub(then.sum_ns);
            series.recount();
        }
        result
    }

    fn combine(&mut self, other: &Self, op: fn(u64, u64) -> u64, latency: fn(&mut LatencyCounts, &LatencyCounts)) {
        let each = |mine: &mut u64, theirs: &u64| *mine = op(*mine, *theirs);
        for (mine, theirs) in self.series.iter_mut().zip(&other.series) {
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                each(&mut mine.count, &theirs.count);
                each(&mut mine.sum_ns, &theirs.sum_ns);
                each(&mut mine.untimed, &theirs.untimed);
                mine.buckets
                    .iter_mut()
                    .zip(&theirs.buckets)
                    .for_each(|(m, t)| each(m, t));
                latency(&mut mine.latency, &theirs.latency);
            }
        }
        self.sum_latency();
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
        self.begun.iter().zip(&self.ended).fold(0u64, |sum, (begun, ended)| {
            sum.wrapping_add(begun.saturating_sub(*ended))
        })
    }

    /// Hits and misses over every operation.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.series.iter().fold((0, 0), |(hits, misses), series| {
            (
                hits.wrapping_add(series[Outcome::Hit.index()].count),
                misses.wrapping_add(series[Outcome::Miss.index()].count),
            )
        })
    }
}

/// Walks a reset baseline's cells in order; past the end, writes go nowhere and reads are 0.
struct Cursor<'a> {
    cells: &'a [AtomicU64],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, value: u64) {
        if let Some(cell) = self.cells.get(self.at) {
            cell.store(value, Relaxed);
        }
        self.at += 1;
    }

    fn take(&mut self) -> u64 {
        let value = self.cells.get(self.at).map_or(0, |cell| cell.load(Relaxed));
        self.at += 1;
        value
    }

    fn skip(&mut self, cells: usize) {
        self.at += cells;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_sum_that_wrapped_since_its_baseline_still_differs_by_what_was_added() {
        let mut baseline = Totals::zero(1, 1);
        baseline.series[0][0].sum_ns = u64::MAX - 9;
        baseline.series[0][0].buckets[0] = 1;
        let mut now = baseline.clone();
        now.series[0][0].sum_ns = 20; // 30 ns more, past 2^64
        now.series[0][0].buckets[0] = 3;
        let since = now.since(&baseline);
        assert_eq!(since.series[0][0].sum_ns, 30);
        assert_eq!(since.series[0][0].count, 2);
    }

    #[test]
    fn a_baseline_round_trips_every_series_latency_and_skips_absent_rows() {
        use crate::recording::latency::LATENCY_BUCKETS;
        use crate::recording::region::BASELINE_CELLS;
        let cells: Vec<AtomicU64> = (0..BASELINE_CELLS).map(|_| AtomicU64::new(7)).collect();
        let mut totals = Totals::zero(MAX_OPERATIONS, MAX_BUCKETS);
        for (n, index) in [0, 1, 33, 700, LATENCY_BUCKETS - 1].into_iter().enumerate() {
            totals.series[3][1].latency.add(index, n as u64 + 1);
            totals.series[15][3].latency.add(index, 10);
        }
        totals.series[3][1].buckets[2] = 15;
        totals.series[3][1].recount();
        totals.patterns[5][2] = 9;
        totals.sum_latency();
        totals.write_baseline(&cells);
        let read = Totals::read_baseline(&cells);
        assert!(read == totals, "stale cells of absent rows are not read");
        assert_eq!(read.latency[3].total(), 15);
    }

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
