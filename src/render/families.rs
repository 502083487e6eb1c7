//! The metric families of a view, walked once for every output: the text formats and the `prometheus`
//! crate's model implement [`Sink`], and [`walk`] is the one place that decides which families, series,
//! labels and values exist.

use std::collections::BTreeMap;

use crate::analysis::view::MetricsView;
use crate::analysis::windows::WINDOWS;
use crate::recording::exemplars::Exemplar;
use crate::recording::native;
use crate::recording::operation::{Gauge, Operation, Outcome};
use crate::recording::patterns::OTHER_PATTERN;

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// Label names and values of one series; sinks escape the values (pattern labels come from keys, which
/// can hold anything; invalid UTF-8 was replaced when the view was read).
pub(crate) type Labels<'a> = [(&'a str, &'a str)];

/// A histogram series' native histogram at the configured schema.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Native {
    /// Buckets per power of two: `2^schema`.
    pub(crate) schema: u8,
    /// The zero bucket's breadth, in seconds.
    pub(crate) zero_threshold: f64,
    /// Durations of 0 ns.
    pub(crate) zero_count: u64,
    /// Non-empty buckets as `(index, count)`, increasing.
    pub(crate) buckets: Vec<(i32, u64)>,
}

/// One histogram series' values, as the walk hands them to [`Sink::histogram`]: one struct rather than a
/// long argument list, so each sink names the fields it carries and ignores the rest with `..`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistogramSeries<'a> {
    /// `(upper bound, cumulative count)` per finite bucket, by increasing bound (`+Inf` is `count`).
    pub(crate) buckets: &'a [(f64, u64)],
    /// Timed observations.
    pub(crate) count: u64,
    /// Their sum, in seconds.
    pub(crate) sum: f64,
    /// The native histogram, only if the sink [`Sink::wants_native`] and the configuration has them on.
    pub(crate) native: Option<&'a Native>,
    /// The latest exemplar of each bucket: one entry per finite bucket, then `+Inf`; empty when it has none.
    pub(crate) exemplars: &'a [Option<Exemplar>],
}

/// Receives families in order; every series call belongs to the latest family.
pub(crate) trait Sink {
    /// Starts the family `<namespace>_<name>` whose series carry `labels` (besides `le` and `quantile`);
    /// a counter's name carries no `_total` (sinks add it).
    fn family(&mut self, name: &str, kind: Kind, help: &str, labels: &[&str]);
    /// A counter series.
    fn counter(&mut self, labels: &Labels<'_>, value: u64);
    /// A gauge series (NaN for "no data").
    fn gauge(&mut self, labels: &Labels<'_>, value: f64);
    /// A histogram series.
    fn histogram(&mut self, labels: &Labels<'_>, series: HistogramSeries<'_>);
    /// Whether the sink carries native histograms (only the protobuf exposition does); the walk computes
    /// them only then.
    fn wants_native(&self) -> bool {
        false
    }
    /// A summary series: `(quantile, value)` pairs, then count and sum.
    fn summary(&mut self, labels: &Labels<'_>, quantiles: &[(f64, f64)], count: u64, sum: f64);
}

/// Walks every family of `view` into `sink`.
pub(crate) fn walk(view: &MetricsView, sink: &mut impl Sink) {
    operations(view, sink);
    durations(view, sink);
    stats(view, sink);
    hit_rates(view, sink);
    patterns(view, sink);
    latencies(view, sink);
    alerts(view, sink);
}

fn operations(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "operations",
        Kind::Counter,
        "Cache operations recorded, by operation and result.",
        &["operation", "result"],
    );
    for (operation, outcome, totals) in view.recorded_series() {
        let labels = [
            ("operation", view.config.operation_name(operation)),
            ("result", outcome.name()),
        ];
        sink.counter(&labels, totals.count);
    }
}

fn durations(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "operation_duration_seconds",
        Kind::Histogram,
        "Duration of cache operations in seconds, by operation and result.",
        &["operation", "result"],
    );
    let bounds = view.config.buckets.seconds();
    let mut buckets = Vec::with_capacity(bounds.len());
    let schema = view.config.native_histograms.schema.filter(|_| sink.wants_native());
    for (operation, outcome, totals) in view.recorded_series() {
        buckets.clear();
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().zip(&totals.buckets) {
            cumulative = count.wrapping_add(cumulative);
            buckets.push((*bound, cumulative));
        }
        let labels = [
            ("operation", view.config.operation_name(operation)),
            ("result", outcome.name()),
        ];
        let native = schema.map(|schema| {
            let (zero_count, buckets) = totals.latency.native_buckets(schema);
            Native {
                schema,
                zero_threshold: native::ZERO_THRESHOLD,
                zero_count,
                buckets,
            }
        });
        sink.histogram(
            &labels,
            HistogramSeries {
                buckets: &buckets,
                count: totals.timed(),
                sum: totals.sum_ns as f64 / 1e9,
                native: native.as_ref(),
                exemplars: view.exemplars_of(operation, outcome),
            },
        );
    }
}

fn stats(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "stats",
        Kind::Gauge,
        "Cache statistics: size_bytes and entries as set by the host; hit_rate since the reset; \
         operations_in_flight now; operations_per_second, mean_latency_seconds and p99_latency_seconds over \
         the last minute; patterns_tracked.",
        &["metric"],
    );
    for gauge in Gauge::ALL {
        sink.gauge(&[("metric", gauge.name())], view.gauges[gauge.index()] as f64);
    }
    let recent = view.latency(None, true);
    let derived = [
        ("hit_rate", view.hit_rate()),
        ("operations_in_flight", view.totals.in_flight() as f64),
        ("operations_per_second", view.operations_per_second()),
        ("mean_latency_seconds", recent.mean_seconds.unwrap_or(f64::NAN)),
        ("p99_latency_seconds", recent.p99_seconds.unwrap_or(f64::NAN)),
        ("patterns_tracked", view.patterns_tracked as f64),
    ];
    for (metric, value) in derived {
        sink.gauge(&[("metric", metric)], value);
    }
}

fn hit_rates(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "hit_rate",
        Kind::Gauge,
        "Hits over hits plus misses in a rolling window, per operation and over all; NaN without lookups.",
        &["window", "operation"],
    );
    let operations: Vec<Operation> = view.lookup_operations().collect();
    for (index, (window, _)) in WINDOWS.iter().enumerate() {
        let overall = [("window", *window), ("operation", "all")];
        sink.gauge(&overall, view.window_hit_rate(index, None));
        for op in &operations {
            let labels = [("window", *window), ("operation", view.config.operation_name(*op))];
            sink.gauge(&labels, view.window_hit_rate(index, Some(*op)));
        }
    }
}

fn patterns(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "pattern_operations",
        Kind::Counter,
        "Cache operations by key pattern and result; keys beyond the pattern cap count as pattern=\"other\".",
        &["pattern", "result"],
    );
    let mut rows: BTreeMap<&str, [u64; 4]> = view.patterns.iter().map(|p| (p.pattern.as_str(), p.counts)).collect();
    if view.other_pattern.iter().any(|c| *c > 0) {
        rows.insert(OTHER_PATTERN, view.other_pattern);
    }
    for (pattern, counts) in rows {
        for outcome in Outcome::ALL.into_iter().filter(|o| counts[o.index()] > 0) {
            let labels = [("pattern", pattern), ("result", outcome.name())];
            sink.counter(&labels, counts[outcome.index()]);
        }
    }
}

fn latencies(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "latency_seconds",
        Kind::Summary,
        "Latency per operation: quantiles over the last minute (within 1.1% relative error, NaN without \
         operations), sum and count since the reset.",
        &["operation"],
    );
    let mut write = |name: &str, operation: Option<Operation>| {
        let recent = view.latency(operation, true);
        let quantile = |value: Option<f64>| value.unwrap_or(f64::NAN);
        let quantiles = [
            (0.5, quantile(recent.p50_seconds)),
            (0.99, quantile(recent.p99_seconds)),
            (0.999, quantile(recent.p999_seconds)),
        ];
        let (sum_ns, count) = view.sum_and_count(operation);
        sink.summary(&[("operation", name)], &quantiles, count, sum_ns as f64 / 1e9);
    };
    write("all", None);
    for op in view.recorded_operations() {
        write(view.config.operation_name(op), Some(op));
    }
}

fn alerts(view: &MetricsView, sink: &mut impl Sink) {
    sink.family(
        "alert",
        Kind::Gauge,
        "1 while an alert rule fires, else 0; the stats JSON says why.",
        &["alert"],
    );
    for state in view.alerts() {
        sink.gauge(&[("alert", state.alert)], if state.firing { 1.0 } else { 0.0 });
    }
}
