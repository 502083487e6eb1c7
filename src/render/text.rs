//! Prometheus text exposition (format 0.0.4) and OpenMetrics 1.0.0, from one writer.
//!
//! The two differ in three places only: a counter family's `# TYPE` line names it with `_total` in the
//! text format and without it in OpenMetrics, OpenMetrics ends with `# EOF`, and the content types.

use std::fmt::Write;

use std::collections::BTreeMap;

use super::escape;
use crate::operation::{Gauge, Operation, Outcome};
use crate::patterns::OTHER_PATTERN;
use crate::view::MetricsView;
use crate::windows::WINDOWS;

/// Content type of the text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The HTTP content type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// The kind of a metric family.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// A sample value: counts stay integers, everything else is a float.
#[derive(Clone, Copy)]
pub(crate) enum Value {
    Count(u64),
    Float(f64),
}

/// Writes families and samples, one family at a time.
pub(crate) struct Exposition<'a> {
    out: String,
    format: Format,
    namespace: &'a str,
}

impl<'a> Exposition<'a> {
    pub(crate) fn new(format: Format, namespace: &'a str) -> Self {
        Self {
            out: String::with_capacity(16 * 1024),
            format,
            namespace,
        }
    }

    /// Starts family `<namespace>_<name>`; counters get their `_total` from the format.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (kind_name, suffix) = match (kind, self.format) {
            (Kind::Counter, Format::Text) => ("counter", "_total"),
            (Kind::Counter, Format::OpenMetrics) => ("counter", ""),
            (Kind::Gauge, _) => ("gauge", ""),
            (Kind::Histogram, _) => ("histogram", ""),
            (Kind::Summary, _) => ("summary", ""),
        };
        let _ = write!(self.out, "# HELP {}_{name}{suffix} ", self.namespace);
        escape::help(&mut self.out, help);
        let _ = writeln!(self.out, "\n# TYPE {}_{name}{suffix} {kind_name}", self.namespace);
    }

    /// Writes sample `<namespace>_<name>{labels} value`; label values are escaped here.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &[u8])], value: Value) {
        let _ = write!(self.out, "{}_{name}", self.namespace);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"");
                escape::label_value(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value {
            Value::Count(count) => {
                let _ = write!(self.out, "{count}");
            }
            Value::Float(float) => escape::float(&mut self.out, float),
        }
        self.out.push('\n');
    }

    /// The finished exposition.
    pub(crate) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// Renders every metric family of `view`.
pub fn render(view: &MetricsView, format: Format) -> String {
    let mut ex = Exposition::new(format, &view.config.namespace);
    operations(&mut ex, view);
    durations(&mut ex, view);
    stats(&mut ex, view);
    hit_rates(&mut ex, view);
    patterns(&mut ex, view);
    latencies(&mut ex, view);
    alerts(&mut ex, view);
    ex.finish()
}

fn operations(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "operations",
        Kind::Counter,
        "Cache operations recorded, by operation and result.",
    );
    for (operation, outcome, totals) in view.recorded_series() {
        let labels = [
            ("operation", view.config.operation_name(operation).as_bytes()),
            ("result", outcome.name().as_bytes()),
        ];
        ex.sample("operations_total", &labels, Value::Count(totals.count));
    }
}

fn durations(ex: &mut Exposition<'_>, view: &MetricsView) {
    let name = "operation_duration_seconds";
    ex.family(
        name,
        Kind::Histogram,
        "Duration of cache operations in seconds, by operation and result.",
    );
    let bounds = view.config.buckets.seconds();
    let mut le = String::new();
    for (operation, outcome, totals) in view.recorded_series() {
        let operation = view.config.operation_name(operation).as_bytes();
        let outcome = outcome.name().as_bytes();
        let mut cumulative = 0u64;
        for (bound, count) in bounds.iter().zip(&totals.buckets) {
            cumulative += count;
            le.clear();
            escape::float(&mut le, *bound);
            let labels = [("operation", operation), ("result", outcome), ("le", le.as_bytes())];
            ex.sample("operation_duration_seconds_bucket", &labels, Value::Count(cumulative));
        }
        let labels = [
            ("operation", operation),
            ("result", outcome),
            ("le", b"+Inf".as_slice()),
        ];
        ex.sample("operation_duration_seconds_bucket", &labels, Value::Count(totals.count));
        let labels = &labels[..2];
        ex.sample(
            "operation_duration_seconds_sum",
            labels,
            Value::Float(totals.sum_ns as f64 / 1e9),
        );
        ex.sample("operation_duration_seconds_count", labels, Value::Count(totals.count));
    }
}

fn stats(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "stats",
        Kind::Gauge,
        "Cache statistics: size_bytes and entries as set by the host; hit_rate since the reset; \
         operations_in_flight now; operations_per_second, mean_latency_seconds and p99_latency_seconds over \
         the last minute; patterns_tracked.",
    );
    for gauge in Gauge::ALL {
        let value = Value::Count(view.gauges[gauge.index()]);
        ex.sample("stats", &[("metric", gauge.name().as_bytes())], value);
    }
    let recent = view.latency(None, true);
    let derived = [
        ("hit_rate", Value::Float(view.hit_rate())),
        ("operations_in_flight", Value::Count(view.totals.in_flight())),
        ("operations_per_second", Value::Float(view.operations_per_second())),
        (
            "mean_latency_seconds",
            Value::Float(recent.mean_seconds.unwrap_or(f64::NAN)),
        ),
        (
            "p99_latency_seconds",
            Value::Float(recent.p99_seconds.unwrap_or(f64::NAN)),
        ),
        ("patterns_tracked", Value::Count(view.patterns_tracked as u64)),
    ];
    for (metric, value) in derived {
        ex.sample("stats", &[("metric", metric.as_bytes())], value);
    }
}

fn hit_rates(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "hit_rate",
        Kind::Gauge,
        "Hits over hits plus misses in a rolling window, per operation and over all; NaN without lookups.",
    );
    let operations: Vec<Operation> = view.lookup_operations().collect();
    for (index, (window, _)) in WINDOWS.iter().enumerate() {
        let overall = [("window", window.as_bytes()), ("operation", b"all".as_slice())];
        ex.sample("hit_rate", &overall, Value::Float(view.window_hit_rate(index, None)));
        for op in &operations {
            let name = view.config.operation_name(*op).as_bytes();
            let labels = [("window", window.as_bytes()), ("operation", name)];
            ex.sample(
                "hit_rate",
                &labels,
                Value::Float(view.window_hit_rate(index, Some(*op))),
            );
        }
    }
}

fn patterns(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "pattern_operations",
        Kind::Counter,
        "Cache operations by key pattern and result; keys beyond the pattern cap count as pattern=\"other\".",
    );
    let mut rows: BTreeMap<&str, [u64; 4]> = view.patterns.iter().map(|p| (p.pattern.as_str(), p.counts)).collect();
    if view.other_pattern.iter().any(|c| *c > 0) {
        rows.insert(OTHER_PATTERN, view.other_pattern);
    }
    for (pattern, counts) in rows {
        for outcome in Outcome::ALL.into_iter().filter(|o| counts[o.index()] > 0) {
            let labels = [("pattern", pattern.as_bytes()), ("result", outcome.name().as_bytes())];
            ex.sample(
                "pattern_operations_total",
                &labels,
                Value::Count(counts[outcome.index()]),
            );
        }
    }
}

fn latencies(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "latency_seconds",
        Kind::Summary,
        "Latency per operation: quantiles over the last minute (within 1.6% relative error, NaN without \
         operations), sum and count since the reset.",
    );
    let mut write = |name: &str, operation: Option<Operation>| {
        let recent = view.latency(operation, true);
        let quantiles = [
            ("0.5", recent.p50_seconds),
            ("0.99", recent.p99_seconds),
            ("0.999", recent.p999_seconds),
        ];
        for (quantile, value) in quantiles {
            let labels = [("operation", name.as_bytes()), ("quantile", quantile.as_bytes())];
            ex.sample("latency_seconds", &labels, Value::Float(value.unwrap_or(f64::NAN)));
        }
        let (sum_ns, count) = view.sum_and_count(operation);
        let labels = [("operation", name.as_bytes())];
        ex.sample("latency_seconds_sum", &labels, Value::Float(sum_ns as f64 / 1e9));
        ex.sample("latency_seconds_count", &labels, Value::Count(count));
    };
    write("all", None);
    for op in view.recorded_operations() {
        write(view.config.operation_name(op), Some(op));
    }
}

fn alerts(ex: &mut Exposition<'_>, view: &MetricsView) {
    ex.family(
        "alert",
        Kind::Gauge,
        "1 while an alert rule fires, else 0; the stats JSON says why.",
    );
    for state in view.alerts() {
        let value = Value::Count(u64::from(state.firing));
        ex.sample("alert", &[("alert", state.alert.as_bytes())], value);
    }
}
