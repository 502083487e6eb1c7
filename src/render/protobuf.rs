//! The protobuf exposition: every metric family as `io.prometheus.client.MetricFamily` messages, each
//! length-delimited (a varint length, then the message), as Prometheus scrapes it with
//! `Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`.
//! It is the only exposition that carries native histograms: the duration histogram's series each hold
//! their classic buckets and, unless `{"native_histograms": false}`, their native buckets in the same
//! `Histogram` message. Exemplars go in each classic `Bucket` (an explicit `+Inf` bucket carries the
//! `+Inf` one) and, with native buckets, all of them in `Histogram.exemplars` too.
//!
//! The message types are written here with `prost`'s derive from the field numbers of client_model's
//! `io/prometheus/client/metrics.proto` (proto2: every scalar is `optional`, so a zero is sent, not
//! left out). They are public so that a host or a test can decode a body with the same types.

use prost::Message;

use super::families::{self, HistogramSeries, Kind, Labels, Sink};
use crate::analysis::view::MetricsView;
use crate::recording::exemplars;

/// The content type of the protobuf exposition.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    /// The label's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Its value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// A counter: [`Metric::counter`].
    Counter = 0,
    /// A gauge: [`Metric::gauge`].
    Gauge = 1,
    /// A summary: [`Metric::summary`].
    Summary = 2,
    /// Untyped: [`Metric::untyped`].
    Untyped = 3,
    /// A histogram: [`Metric::histogram`].
    Histogram = 4,
    /// A gauge histogram: [`Metric::histogram`].
    GaugeHistogram = 5,
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    /// The value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Counter`.
#[derive(Clone, PartialEq, Message)]
pub struct Counter {
    /// The value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
    /// An exemplar of the counted events.
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    /// When the counter started.
    #[prost(message, optional, tag = "3")]
    pub created_timestamp: Option<Timestamp>,
}

/// `io.prometheus.client.Quantile`.
#[derive(Clone, PartialEq, Message)]
pub struct Quantile {
    /// The quantile, `0..=1`.
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    /// Its value.
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    /// Observations.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Their sum.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Quantiles.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    /// When the summary started.
    #[prost(message, optional, tag = "4")]
    pub created_timestamp: Option<Timestamp>,
}

/// `io.prometheus.client.Untyped`.
#[derive(Clone, PartialEq, Message)]
pub struct Untyped {
    /// The value.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Histogram`: classic buckets, a native histogram, or both.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    /// Observations.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Observations as a float (float histograms only).
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    /// Their sum.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Classic buckets, cumulative, by increasing upper bound (`+Inf` left out: it is `sample_count`).
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// When the histogram started.
    #[prost(message, optional, tag = "15")]
    pub created_timestamp: Option<Timestamp>,
    /// Native: the schema (buckets per power of two: `2^schema`).
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    /// Native: the zero bucket's breadth.
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    /// Native: observations in the zero bucket.
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    /// Native: the zero bucket's count as a float (float histograms only).
    #[prost(double, optional, tag = "8")]
    pub zero_count_float: Option<f64>,
    /// Native: spans of negative buckets.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Native: negative bucket counts, each as the difference from the previous one.
    #[prost(sint64, repeated, packed = "false", tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Native: negative bucket counts as floats (float histograms only).
    #[prost(double, repeated, packed = "false", tag = "11")]
    pub negative_count: Vec<f64>,
    /// Native: spans of positive buckets.
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Native: positive bucket counts, each as the difference from the previous one (the first from 0).
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    pub positive_delta: Vec<i64>,
    /// Native: positive bucket counts as floats (float histograms only).
    #[prost(double, repeated, packed = "false", tag = "14")]
    pub positive_count: Vec<f64>,
    /// Native: exemplars.
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

/// `io.prometheus.client.Bucket`: one classic bucket.
#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    /// Observations at or below `upper_bound`.
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    /// The same as a float (float histograms only).
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
    /// The inclusive upper bound.
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    /// An exemplar of the bucket's observations.
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

/// `io.prometheus.client.BucketSpan`: consecutive native buckets.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    /// The first span's first bucket index; for later spans, the empty buckets since the previous span.
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    /// How many consecutive buckets.
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

/// `io.prometheus.client.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    /// Its labels (a trace id, say).
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// The observed value.
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
    /// When it was observed.
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `io.prometheus.client.Metric`: one series.
#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    /// Its labels.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// A gauge's value.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// A counter's value.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// A summary's values.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// An untyped value.
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    /// A histogram's values.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
    /// When it was observed, in milliseconds since the epoch (not sent: scrape time).
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
}

/// `io.prometheus.client.MetricFamily`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    /// The metric name (a counter's with `_total`).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The help text.
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    /// The type.
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    /// Its series.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    /// The unit.
    #[prost(string, optional, tag = "5")]
    pub unit: Option<String>,
}

/// Collects families as messages.
struct Families<'a> {
    namespace: &'a str,
    families: Vec<MetricFamily>,
}

impl Families<'_> {
    /// Adds a series to the latest family.
    fn push(&mut self, labels: &Labels<'_>, fill: impl FnOnce(&mut Metric)) {
        let mut metric = Metric {
            label: labels
                .iter()
                .map(|(name, value)| LabelPair {
                    name: Some((*name).to_owned()),
                    value: Some((*value).to_owned()),
                })
                .collect(),
            ..Metric::default()
        };
        fill(&mut metric);
        if let Some(family) = self.families.last_mut() {
            family.metric.push(metric);
        }
    }
}

impl Sink for Families<'_> {
    fn family(&mut self, name: &str, kind: Kind, help: &str, _labels: &[&str]) {
        let (kind, suffix) = match kind {
            Kind::Counter => (MetricType::Counter, "_total"),
            Kind::Gauge => (MetricType::Gauge, ""),
            Kind::Histogram => (MetricType::Histogram, ""),
            Kind::Summary => (MetricType::Summary, ""),
        };
        self.families.push(MetricFamily {
            name: Some(format!("{}_{name}{suffix}", self.namespace)),
            help: Some(help.to_owned()),
            r#type: Some(kind as i32),
            metric: Vec::new(),
            unit: None,
        });
    }

    fn wants_native(&self) -> bool {
        true
    }

    fn counter(&mut self, labels: &Labels<'_>, value: u64) {
        self.push(labels, |metric| {
            metric.counter = Some(Counter {
                value: Some(value as f64),
                ..Counter::default()
            });
        });
    }

    fn gauge(&mut self, labels: &Labels<'_>, value: f64) {
        self.push(labels, |metric| metric.gauge = Some(Gauge { value: Some(value) }));
    }

    fn histogram(&mut self, labels: &Labels<'_>, series: HistogramSeries<'_>) {
        let HistogramSeries {
            buckets,
            count,
            sum,
            native,
            exemplars,
        } = series;
        let exemplar = |bucket: usize| exemplars.get(bucket).and_then(Option::as_ref).map(message);
        let mut histogram = Histogram {
            sample_count: Some(count),
            sample_sum: Some(sum),
            bucket: buckets
                .iter()
                .enumerate()
                .map(|(bucket, (bound, cumulative))| Bucket {
                    cumulative_count: Some(*cumulative),
                    upper_bound: Some(*bound),
                    exemplar: exemplar(bucket),
                    ..Bucket::default()
                })
                .collect(),
            ..Histogram::default()
        };
        // The `+Inf` bucket is left out (it is `sample_count`) unless it has an exemplar to carry, as
        // client_golang does.
        if let Some(inf) = exemplar(buckets.len()) {
            histogram.bucket.push(Bucket {
                cumulative_count: Some(count),
                upper_bound: Some(f64::INFINITY),
                exemplar: Some(inf),
                ..Bucket::default()
            });
        }
        if let Some(native) = native {
            let (spans, deltas) = spans_and_deltas(&native.buckets);
            let total = native
                .buckets
                .iter()
                .fold(native.zero_count, |sum, (_, count)| sum.wrapping_add(*count));
            // A record that raced the read may be in the native buckets and not yet in the classic
            // ones: the count is never below what the buckets hold.
            histogram.sample_count = Some(count.max(total));
            histogram.schema = Some(i32::from(native.schema));
            histogram.zero_threshold = Some(native.zero_threshold);
            histogram.zero_count = Some(native.zero_count);
            histogram.positive_span = spans;
            histogram.positive_delta = deltas;
            // A native histogram's exemplars: every bucket's, by increasing value.
            histogram.exemplars = exemplars.iter().flatten().map(message).collect();
        }
        self.push(labels, |metric| metric.histogram = Some(histogram));
    }

    fn summary(&mut self, labels: &Labels<'_>, quantiles: &[(f64, f64)], count: u64, sum: f64) {
        self.push(labels, |metric| {
            metric.summary = Some(Summary {
                sample_count: Some(count),
                sample_sum: Some(sum),
                quantile: quantiles
                    .iter()
                    .map(|(quantile, value)| Quantile {
                        quantile: Some(*quantile),
                        value: Some(*value),
                    })
                    .collect(),
                created_timestamp: None,
            });
        });
    }
}

/// An exemplar as its message: labels, the duration in seconds, the wall-clock time.
fn message(exemplar: &exemplars::Exemplar) -> Exemplar {
    Exemplar {
        label: exemplar
            .labels
            .iter()
            .map(|(name, value)| LabelPair {
                name: Some(name.clone()),
                value: Some(value.clone()),
            })
            .collect(),
        value: Some(exemplar.value_seconds()),
        timestamp: Some(Timestamp {
            seconds: i64::try_from(exemplar.unix_nanos / 1_000_000_000).unwrap_or(i64::MAX),
            nanos: (exemplar.unix_nanos % 1_000_000_000) as i32,
        }),
    }
}

/// Native buckets `(index, count)` (increasing, non-empty) as spans and deltas. Gaps of one or two
/// empty buckets are sent as zero counts inside a span (as client_golang does: cheaper than a span).
pub(crate) fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<BucketSpan>, Vec<i64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut previous: Option<(i32, u64)> = None;
    for &(index, count) in buckets {
        let mut last_count = previous.map_or(0, |(_, count)| count);
        match (previous, spans.last_mut()) {
            (Some((last, _)), Some(span)) if index - last <= 3 => {
                for _ in last + 1..index {
                    deltas.push(0i64.wrapping_sub(last_count as i64));
                    last_count = 0;
                }
                span.length = Some(span.length.unwrap_or(0) + (index - last) as u32);
            }
            (Some((last, _)), _) => spans.push(BucketSpan {
                offset: Some(index - last - 1),
                length: Some(1),
            }),
            (None, _) => spans.push(BucketSpan {
                offset: Some(index),
                length: Some(1),
            }),
        }
        deltas.push((count as i64).wrapping_sub(last_count as i64));
        previous = Some((index, count));
    }
    (spans, deltas)
}

/// Renders every metric family of `view` as length-delimited `MetricFamily` messages.
pub fn render(view: &MetricsView) -> Vec<u8> {
    let mut sink = Families {
        namespace: &view.config.namespace,
        families: Vec::new(),
    };
    families::walk(view, &mut sink);
    let size: usize = sink
        .families
        .iter()
        .map(|family| {
            let len = family.encoded_len();
            len + prost::length_delimiter_len(len)
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    for family in &sink.families {
        // Cannot fail: `out` grows as needed.
        let _ = family.encode_length_delimited(&mut out);
    }
    out
}

/// Decodes a body of length-delimited `MetricFamily` messages (what [`render`] writes).
pub fn decode(mut body: &[u8]) -> Result<Vec<MetricFamily>, prost::DecodeError> {
    let mut families = Vec::new();
    while !body.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut body)?);
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts of every bucket index from spans and deltas.
    fn expand(spans: &[BucketSpan], deltas: &[i64]) -> Vec<(i32, u64)> {
        let mut out = Vec::new();
        let (mut index, mut count, mut deltas) = (0i32, 0i64, deltas.iter());
        for (n, span) in spans.iter().enumerate() {
            index += span.offset.unwrap_or(0) + i32::from(n > 0);
            for i in 0..span.length.unwrap_or(0) {
                count += deltas.next().copied().unwrap_or(0);
                if count != 0 {
                    out.push((index + i as i32, count as u64));
                }
            }
            index += span.length.unwrap_or(0) as i32 - 1;
        }
        out
    }

    #[test]
    fn spans_and_deltas_round_trip_with_gaps_of_every_size() {
        for buckets in [
            vec![],
            vec![(-956, 3)],
            vec![(-5, 1), (-4, 2), (-2, 7), (1, 1), (2, 1), (30, 4), (34, 5)],
            vec![(0, 10), (4, 1), (5, 10), (100, 1)],
        ] {
            let (spans, deltas) = spans_and_deltas(&buckets);
            assert_eq!(expand(&spans, &deltas), buckets);
            let spanned: u32 = spans.iter().map(|s| s.length.unwrap_or(0)).sum();
            assert_eq!(spanned as usize, deltas.len());
        }
        let (spans, _) = spans_and_deltas(&[(1, 1), (3, 1), (10, 1)]);
        assert_eq!(
            spans.len(),
            2,
            "a gap of one bucket stays in the span, one of six starts a new one"
        );
    }
}
