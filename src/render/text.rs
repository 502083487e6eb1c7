//! Prometheus text exposition (format 0.0.4) and OpenMetrics 1.0.0, from one writer.
//!
//! The two differ in three places only: a counter family's `# TYPE` line names it with `_total` in the
//! text format and without it in OpenMetrics, OpenMetrics ends with `# EOF`, and the content types.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::escape;
use super::families::{self, HistogramSeries, Kind, Labels, Sink};
use crate::analysis::view::MetricsView;
use crate::recording::exemplars::Exemplar;

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

/// Writes families and samples as text, one family at a time.
struct Exposition<'a> {
    out: String,
    format: Format,
    namespace: &'a str,
    /// The current family's name, without the namespace.
    family: String,
    /// Bucket bounds and quantiles already formatted, by their bits.
    bounds: Vec<(u64, String)>,
}

impl<'a> Exposition<'a> {
    fn new(format: Format, namespace: &'a str) -> Self {
        Self {
            out: String::new(),
            format,
            namespace,
            family: String::new(),
            bounds: Vec::new(),
        }
    }

    /// Writes sample `<namespace>_<family><suffix>{labels,extra} value`; label values are escaped here.
    fn sample(&mut self, suffix: &str, labels: &Labels<'_>, extra: Option<(&str, f64)>, value: Value) {
        write_head(&mut self.out, self.namespace, &self.family, suffix, labels);
        match extra {
            Some((label, bound)) => {
                self.out.push_str(if labels.is_empty() { "{" } else { "," });
                self.out.push_str(label);
                self.out.push_str("=\"");
                self.push_bound(bound);
                self.out.push_str("\"} ");
            }
            None if labels.is_empty() => self.out.push(' '),
            None => self.out.push_str("} "),
        }
        match value {
            Value::Count(count) => escape::integer(&mut self.out, count),
            Value::Float(float) => escape::float(&mut self.out, float),
        }
        self.out.push('\n');
    }

    /// A bucket line, `<head>{bound}"} count`, with its exemplar in OpenMetrics:
    /// `... 3 # {trace_id="abc"} 0.0123 1700000000.123`. The text format has no exemplars. `head` is
    /// everything before the bound (`<namespace>_<family>_bucket{labels,le="`), the same on every bucket
    /// line of a series, so written once per series.
    fn bucket(&mut self, head: &str, bound: f64, count: u64, exemplar: Option<&Exemplar>) {
        self.out.push_str(head);
        self.push_bound(bound);
        self.out.push_str("\"} ");
        escape::integer(&mut self.out, count);
        if let Some(exemplar) = exemplar.filter(|_| self.format == Format::OpenMetrics) {
            self.out.push_str(" # {");
            for (i, (name, value)) in exemplar.labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape::label_value(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push_str("} ");
            escape::float(&mut self.out, exemplar.value_seconds());
            // The time as seconds with milliseconds, written from the integer so no float rounding shows.
            self.out.push(' ');
            escape::integer(&mut self.out, exemplar.unix_nanos / 1_000_000_000);
            let _ = write!(self.out, ".{:03}", exemplar.unix_nanos / 1_000_000 % 1000);
        }
        self.out.push('\n');
    }

    /// Writes a bucket bound or quantile: the same few values on every series, formatted once per render.
    fn push_bound(&mut self, bound: f64) {
        let bits = bound.to_bits();
        let index = match self.bounds.iter().position(|(b, _)| *b == bits) {
            Some(index) => index,
            None => {
                let mut text = String::new();
                escape::bound(&mut text, bound);
                self.bounds.push((bits, text));
                self.bounds.len() - 1
            }
        };
        self.out.push_str(&self.bounds[index].1);
    }

    /// The finished exposition.
    fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// Writes `<namespace>_<family><suffix>`, then `{` and the labels, escaped, when there are any (the
/// brace left open).
fn write_head(out: &mut String, namespace: &str, family: &str, suffix: &str, labels: &Labels<'_>) {
    out.push_str(namespace);
    out.push('_');
    out.push_str(family);
    out.push_str(suffix);
    for (i, (label, value)) in labels.iter().enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(label);
        out.push_str("=\"");
        escape::label_value(out, value);
        out.push('"');
    }
}

/// A sample value: counts stay integers, everything else is a float.
#[derive(Clone, Copy)]
enum Value {
    Count(u64),
    Float(f64),
}

impl Sink for Exposition<'_> {
    fn family(&mut self, name: &str, kind: Kind, help: &str, _labels: &[&str]) {
        let (kind_name, suffix) = match (kind, self.format) {
            (Kind::Counter, Format::Text) => ("counter", "_total"),
            (Kind::Counter, Format::OpenMetrics) => ("counter", ""),
            (Kind::Gauge, _) => ("gauge", ""),
            (Kind::Histogram, _) => ("histogram", ""),
            (Kind::Summary, _) => ("summary", ""),
        };
        self.family.clear();
        self.family.push_str(name);
        let _ = write!(self.out, "# HELP {}_{name}{suffix} ", self.namespace);
        escape::help(&mut self.out, help);
        let _ = writeln!(self.out, "\n# TYPE {}_{name}{suffix} {kind_name}", self.namespace);
    }

    fn counter(&mut self, labels: &Labels<'_>, value: u64) {
        self.sample("_total", labels, None, Value::Count(value));
    }

    fn gauge(&mut self, labels: &Labels<'_>, value: f64) {
        self.sample("", labels, None, Value::Float(value));
    }

    fn histogram(&mut self, labels: &Labels<'_>, series: HistogramSeries<'_>) {
        // The text formats have no native histograms.
        let HistogramSeries {
            buckets,
            count,
            sum,
            exemplars,
            ..
        } = series;
        let exemplar = |bucket: usize| exemplars.get(bucket).and_then(Option::as_ref);
        let mut head = String::new();
        write_head(&mut head, self.namespace, &self.family, "_bucket", labels);
        head.push_str(if labels.is_empty() { "{le=\"" } else { ",le=\"" });
        for (bucket, (bound, cumulative)) in buckets.iter().enumerate() {
            self.bucket(&head, *bound, *cumulative, exemplar(bucket));
        }
        self.bucket(&head, f64::INFINITY, count, exemplar(buckets.len()));
        self.sample("_sum", labels, None, Value::Float(sum));
        self.sample("_count", labels, None, Value::Count(count));
    }

    fn summary(&mut self, labels: &Labels<'_>, quantiles: &[(f64, f64)], count: u64, sum: f64) {
        for (quantile, value) in quantiles {
            self.sample("", labels, Some(("quantile", *quantile)), Value::Float(*value));
        }
        self.sample("_sum", labels, None, Value::Float(sum));
        self.sample("_count", labels, None, Value::Count(count));
    }
}

/// The size of the latest render: the next one starts with that much room, so the text is not copied
/// as it grows.
static LAST_SIZE: AtomicUsize = AtomicUsize::new(16 * 1024);

/// Renders every metric family of `view`.
pub fn render(view: &MetricsView, format: Format) -> String {
    let mut exposition = Exposition::new(format, &view.config.namespace);
    exposition.out.reserve(LAST_SIZE.load(Relaxed) + 1024);
    families::walk(view, &mut exposition);
    let text = exposition.finish();
    LAST_SIZE.store(text.len(), Relaxed);
    text
}
