//! [`MetricsView`]: one consistent read of a monitor, and the statistics derived from it. Renderers and
//! reports are pure functions of a view.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

use crate::analysis::alerts::{self, AlertInputs, AlertState, WindowTally};
use crate::analysis::hit_rate::hit_rate;
use crate::analysis::windows::WINDOWS;
use crate::config::Config;
use crate::recording::exemplars::Exemplar;
use crate::recording::latency::LatencyCounts;
use crate::recording::operation::{Gauge, OUTCOMES, Operation, Outcome};
use crate::recording::totals::OutcomeCounts;
use crate::recording::totals::{SeriesTotals, Totals};
use crate::recording::wrapping_total;

/// Outcome counts of one key pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternTotals {
    /// The pattern as a label value (`user:*`); invalid UTF-8 replaced by U+FFFD.
    pub pattern: String,
    /// Counts indexed by outcome code.
    pub counts: [u64; OUTCOMES],
}

/// Everything renderers need, read once from a monitor.
#[derive(Clone, Debug)]
pub struct MetricsView {
    /// The configuration in force when the view was taken.
    pub config: Config,
    /// Totals since the last reset.
    pub totals: Totals,
    /// Host gauges, indexed by [`Gauge`] code.
    pub gauges: [u64; Gauge::ALL.len()],
    /// Counts per operation and outcome in each of [`WINDOWS`], in that order.
    pub windows: Vec<OutcomeCounts>,
    /// Latency per operation code over the last minute.
    pub recent_latency: Vec<LatencyCounts>,
    /// The seconds "the last minute" covers: 60 to 70 (the latency ring's resolution is 10 s), fewer when
    /// the monitor is younger.
    pub recent_latency_secs: u64,
    /// Seconds since the monitor first recorded or rendered.
    pub history_secs: u64,
    /// Tracked patterns with any count since the reset, by label.
    pub patterns: Vec<PatternTotals>,
    /// Keys of untracked patterns, beyond the cap.
    pub other_pattern: [u64; OUTCOMES],
    /// Patterns tracked (at most `config.patterns.max`).
    pub patterns_tracked: usize,
    /// The latest exemplar of each classic bucket, by `(operation code, outcome code)`: one entry per
    /// finite bound, then one for `+Inf`. Only series with at least one exemplar are here; exemplars are
    /// this process's own (see `Monitor::record_with_exemplar`).
    pub exemplars: BTreeMap<(u32, u32), Vec<Option<Exemplar>>>,
    /// Latency summaries, computed at their first use: `[overall, last minute]`, each indexed by
    /// operation code with "all operations" last.
    pub(crate) summaries: OnceLock<[Vec<LatencySummary>; 2]>,
}

/// Latency statistics of some operations over some time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Operations measured.
    pub count: u64,
    /// Mean duration in seconds (`None` without operations).
    pub mean_seconds: Option<f64>,
    /// Median.
    pub p50_seconds: Option<f64>,
    /// 99th percentile.
    pub p99_seconds: Option<f64>,
    /// 99.9th percentile.
    pub p999_seconds: Option<f64>,
}

impl LatencySummary {
    fn from_counts(counts: &LatencyCounts, exact_mean_ns: Option<f64>) -> Self {
        let (count, mean_ns, quantiles) = counts.summary_ns([0.5, 0.99, 0.999], exact_mean_ns.is_none());
        let [p50, p99, p999] = quantiles.map(|ns| ns.map(|ns| ns / 1e9));
        Self {
            count,
            mean_seconds: exact_mean_ns.or(mean_ns).filter(|_| count > 0).map(|ns| ns / 1e9),
            p50_seconds: p50,
            p99_seconds: p99,
            p999_seconds: p999,
        }
    }
}

impl MetricsView {
    /// Every `(operation, outcome)` series with at least one record, in code order.
    pub fn recorded_series(&self) -> impl Iterator<Item = (Operation, Outcome, &SeriesTotals)> {
        self.totals.series.iter().enumerate().flat_map(|(code, series)| {
            Outcome::ALL
                .into_iter()
                .zip(series)
                .filter(|(_, totals)| totals.count > 0)
                .map(move |(outcome, totals)| (Operation::from_code(code as u32), outcome, totals))
        })
    }

    /// The exemplars of a series' classic buckets (see [`MetricsView::exemplars`]); empty without any.
    pub fn exemplars_of(&self, operation: Operation, outcome: Outcome) -> &[Option<Exemplar>] {
        self.exemplars
            .get(&(operation.code(), outcome.code()))
            .map_or(&[], Vec::as_slice)
    }

    /// Operations with at least one record, in code order.
    pub fn recorded_operations(&self) -> impl Iterator<Item = Operation> + '_ {
        (0..self.totals.series.len())
            .filter(|op| self.totals.series[*op].iter().any(|s| s.count > 0))
            .map(|op| Operation::from_code(op as u32))
    }

    /// Operations that have ever hit or missed: those a hit rate means something for.
    pub fn lookup_operations(&self) -> impl Iterator<Item = Operation> + '_ {
        self.recorded_operations().filter(|op| {
            let series = &self.totals.series[op.index()];
            series[Outcome::Hit.index()].count > 0 || series[Outcome::Miss.index()].count > 0
        })
    }

    /// Hits over hits plus misses since the reset, over every operation; NaN before the first.
    pub fn hit_rate(&self) -> f64 {
        let (hits, misses) = self.totals.hits_and_misses();
        hit_rate(hits, misses).unwrap_or(f64::NAN)
    }

    /// Tally of window `index` (into [`WINDOWS`]) over one operation, or all with `None`.
    pub fn window_tally(&self, index: usize, operation: Option<Operation>) -> WindowTally {
        let counts = &self.windows[index];
        let rows = match operation {
            Some(op) => &counts[op.index()..=op.index()],
            None => &counts[..],
        };
        rows.iter().fold(WindowTally::default(), |tally, row| WindowTally {
            hits: tally.hits.wrapping_add(row[Outcome::Hit.index()]),
            misses: tally.misses.wrapping_add(row[Outcome::Miss.index()]),
            errors: tally.errors.wrapping_add(row[Outcome::Error.index()]),
            total: tally.total.wrapping_add(wrapping_total(row)),
        })
    }

    /// Hit rate in window `index` over one operation, or all with `None`; NaN without hits or misses.
    pub fn window_hit_rate(&self, index: usize, operation: Option<Operation>) -> f64 {
        let tally = self.window_tally(index, operation);
        hit_rate(tally.hits, tally.misses).unwrap_or(f64::NAN)
    }

    /// Operations per second over the last minute (or over the monitor's life, if shorter).
    pub fn operations_per_second(&self) -> f64 {
        let seconds = self.history_secs.clamp(1, WINDOWS[0].1);
        self.window_tally(0, None).total as f64 / seconds as f64
    }

    /// Latency of one operation, or of all with `None`, since the reset (`recent == false`) or over the
    /// last minute. The overall mean is exact (from the duration sums); the others carry the histogram's
    /// relative error.
    pub fn latency(&self, operation: Option<Operation>, recent: bool) -> LatencySummary {
        let summaries = &self
            .summaries
            .get_or_init(|| [false, true].map(|recent| self.summarize(recent)))[usize::from(recent)];
        let index = operation.map_or(summaries.len() - 1, Operation::index);
        summaries.get(index).copied().unwrap_or_default()
    }

    /// Every operation's latency summary, then all operations'.
    fn summarize(&self, recent: bool) -> Vec<LatencySummary> {
        let source = if recent {
            &self.recent_latency
        } else {
            &self.totals.latency
        };
        let exact_mean = |operation: Option<Operation>| {
            let (sum, count) = self.sum_and_count(operation);
            (!recent && count > 0).then(|| sum as f64 / count as f64)
        };
        let mut all = LatencyCounts::default();
        let mut summaries: Vec<LatencySummary> = source
            .iter()
            .enumerate()
            .map(|(op, counts)| {
                all.merge(counts);
                LatencySummary::from_counts(counts, exact_mean(Some(Operation::from_code(op as u32))))
            })
            .collect();
        summaries.push(LatencySummary::from_counts(&all, exact_mean(None)));
        summaries
    }

    /// Total duration in nanoseconds and count of one operation, or of all with `None`, since the reset.
    pub fn sum_and_count(&self, operation: Option<Operation>) -> (u128, u64) {
        let series = match operation {
            Some(op) => &self.totals.series[op.index()..=op.index()],
            None => &self.totals.series[..],
        };
        // Counts wrap at 2^64 like the cells they come from (a corrupted state file can hold any value).
        series.iter().flatten().fold((0, 0), |(sum, count), s| {
            (sum + u128::from(s.sum_ns), count.wrapping_add(s.timed()))
        })
    }

    /// Every alert rule that is on, evaluated on this view.
    pub fn alerts(&self) -> Vec<AlertState> {
        let recent = self.latency(None, true);
        let inputs = AlertInputs {
            p99_last_minute_seconds: recent.p99_seconds,
            last_minute_operations: recent.count,
            five_minutes: self.window_tally(1, None),
            one_hour: self.window_tally(2, None),
        };
        alerts::evaluate(&self.config.alerts, &inputs)
    }
}
