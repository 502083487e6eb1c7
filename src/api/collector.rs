//! [`MonitorCollector`]: the monitor as a `prometheus` crate [`Collector`], so a host that already has a
//! `prometheus::Registry` exposes our families beside its own from one `/metrics`.

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use crate::monitor::MonitorHandle;
use crate::render::families::{self, HistogramSeries, Kind, Labels, Sink};

/// Collects a monitor's families into the `prometheus` crate's model at every gather.
///
/// Register it once (`registry.register(Box::new(MonitorCollector::new(monitor)?))`); the descriptors use
/// the namespace configured at that time.
pub struct MonitorCollector {
    monitor: MonitorHandle,
    descs: Vec<Desc>,
}

impl MonitorCollector {
    /// A collector of `monitor`'s families.
    pub fn new(monitor: impl Into<MonitorHandle>) -> prometheus::Result<Self> {
        let monitor = monitor.into();
        let mut describer = Describer::default();
        families::walk(&monitor.view(), &mut describer);
        let namespace = monitor.config().namespace;
        let descs = describer
            .families
            .into_iter()
            .map(|(name, help, labels)| Desc::new(format!("{namespace}_{name}"), help, labels, HashMap::new()))
            .collect::<prometheus::Result<_>>()?;
        Ok(Self { monitor, descs })
    }
}

impl Collector for MonitorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let view = self.monitor.view();
        let mut model = Model {
            namespace: &view.config.namespace,
            families: Vec::new(),
        };
        families::walk(&view, &mut model);
        model.families
    }
}

/// Family names (counters with `_total`), help texts and label names, for the descriptors.
#[derive(Default)]
struct Describer {
    families: Vec<(String, String, Vec<String>)>,
}

impl Sink for Describer {
    fn family(&mut self, name: &str, kind: Kind, help: &str, labels: &[&str]) {
        let name = if kind == Kind::Counter {
            format!("{name}_total")
        } else {
            name.to_owned()
        };
        let labels = labels.iter().map(|label| (*label).to_owned()).collect();
        self.families.push((name, help.to_owned(), labels));
    }
    fn counter(&mut self, _: &Labels<'_>, _: u64) {}
    fn gauge(&mut self, _: &Labels<'_>, _: f64) {}
    fn histogram(&mut self, _: &Labels<'_>, _: HistogramSeries<'_>) {}
    fn summary(&mut self, _: &Labels<'_>, _: &[(f64, f64)], _: u64, _: f64) {}
}

/// Builds `MetricFamily` values as the walk goes.
struct Model<'a> {
    namespace: &'a str,
    families: Vec<MetricFamily>,
}

impl Model<'_> {
    fn push(&mut self, labels: &Labels<'_>, fill: impl FnOnce(&mut proto::Metric)) {
        let mut metric = proto::Metric::default();
        metric.set_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = proto::LabelPair::default();
                    pair.set_name((*name).to_owned());
                    pair.set_value((*value).to_owned());
                    pair
                })
                .collect(),
        );
        fill(&mut metric);
        if let Some(family) = self.families.last_mut() {
            family.mut_metric().push(metric);
        }
    }
}

impl Sink for Model<'_> {
    fn family(&mut self, name: &str, kind: Kind, help: &str, _labels: &[&str]) {
        let mut family = MetricFamily::default();
        let (suffix, kind) = match kind {
            Kind::Counter => ("_total", MetricType::COUNTER),
            Kind::Gauge => ("", MetricType::GAUGE),
            Kind::Histogram => ("", MetricType::HISTOGRAM),
            Kind::Summary => ("", MetricType::SUMMARY),
        };
        family.set_name(format!("{}_{name}{suffix}", self.namespace));
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        self.families.push(family);
    }

    fn counter(&mut self, labels: &Labels<'_>, value: u64) {
        self.push(labels, |metric| {
            let mut counter = proto::Counter::default();
            counter.set_value(value as f64);
            metric.set_counter(counter);
        });
    }

    fn gauge(&mut self, labels: &Labels<'_>, value: f64) {
        self.push(labels, |metric| {
            let mut gauge = proto::Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        });
    }

    fn histogram(&mut self, labels: &Labels<'_>, series: HistogramSeries<'_>) {
        // The `prometheus` crate's model is classic buckets only, without exemplars.
        let HistogramSeries {
            buckets, count, sum, ..
        } = series;
        self.push(labels, |metric| {
            let mut histogram = proto::Histogram::default();
            histogram.set_sample_count(count);
            histogram.set_sample_sum(sum);
            histogram.set_bucket(
                buckets
                    .iter()
                    .map(|(bound, cumulative)| {
                        let mut bucket = proto::Bucket::default();
                        bucket.set_upper_bound(*bound);
                        bucket.set_cumulative_count(*cumulative);
                        bucket
                    })
                    .collect(),
            );
            metric.set_histogram(histogram);
        });
    }

    fn summary(&mut self, labels: &Labels<'_>, quantiles: &[(f64, f64)], count: u64, sum: f64) {
        self.push(labels, |metric| {
            let mut summary = proto::Summary::default();
            summary.set_sample_count(count);
            summary.set_sample_sum(sum);
            summary.set_quantile(
                quantiles
                    .iter()
                    .map(|(q, value)| {
                        let mut quantile = proto::Quantile::default();
                        quantile.set_quantile(*q);
                        quantile.set_value(*value);
                        quantile
                    })
                    .collect(),
            );
            metric.set_summary(summary);
        });
    }
}
