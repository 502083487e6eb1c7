//! The protobuf exposition parsed back with the crate's own message types says what the text exposition
//! says, series by series, and carries each duration series' native histogram: its buckets are the
//! Prometheus buckets of the recorded durations, at every schema.

mod support;

use std::collections::BTreeMap;

use cache_monitor::render::protobuf::{self, Histogram, MetricFamily, MetricType};
use cache_monitor::{Clock, Gauge, ManualClock, Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exposition};

/// A series: its sample name and labels, `le` and `quantile` as numbers so that formatting differences
/// do not matter.
type Key = (String, Vec<(String, String)>);

fn key(name: &str, labels: impl IntoIterator<Item = (String, String)>) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .into_iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "le" | "quantile" => value.parse::<f64>().map(|v| format!("{v:e}")).unwrap_or(value),
                _ => value,
            };
            (name, value)
        })
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

/// Every series of the text exposition with its value.
fn text_series(text: &str) -> BTreeMap<Key, f64> {
    let parsed = exposition::parse(text);
    let mut series = BTreeMap::new();
    for sample in parsed.samples {
        let previous = series.insert(key(&sample.name, sample.labels), sample.value);
        assert!(previous.is_none(), "{} twice", sample.name);
    }
    series
}

/// Every series the protobuf families stand for, as Prometheus turns them into samples.
fn protobuf_series(families: &[MetricFamily]) -> BTreeMap<Key, f64> {
    let mut series = BTreeMap::new();
    let mut put = |name: String, labels: Vec<(String, String)>, value: f64| {
        let previous = series.insert(key(&name, labels), value);
        assert!(previous.is_none(), "{name} twice");
    };
    for family in families {
        let name = family.name.clone().expect("a family has a name");
        for metric in &family.metric {
            let labels: Vec<(String, String)> = metric
                .label
                .iter()
                .map(|pair| {
                    (
                        pair.name.clone().unwrap_or_default(),
                        pair.value.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let with = |extra: (&str, f64)| {
                let mut labels = labels.clone();
                labels.push((extra.0.to_owned(), extra.1.to_string()));
                labels
            };
            match MetricType::try_from(family.r#type.unwrap_or(-1)) {
                Ok(MetricType::Counter) => put(
                    name.clone(),
                    labels.clone(),
                    metric.counter.as_ref().and_then(|c| c.value).unwrap(),
                ),
                Ok(MetricType::Gauge) => put(
                    name.clone(),
                    labels.clone(),
                    metric.gauge.as_ref().and_then(|g| g.value).unwrap(),
                ),
                Ok(MetricType::Summary) => {
                    let summary = metric.summary.as_ref().expect("a summary");
                    for quantile in &summary.quantile {
                        put(
                            name.clone(),
                            with(("quantile", quantile.quantile.unwrap())),
                            quantile.value.unwrap(),
                        );
                    }
                    put(format!("{name}_sum"), labels.clone(), summary.sample_sum.unwrap());
                    put(
                        format!("{name}_count"),
                        labels.clone(),
                        summary.sample_count.unwrap() as f64,
                    );
                }
                Ok(MetricType::Histogram) => {
                    let histogram = metric.histogram.as_ref().expect("a histogram");
                    for bucket in &histogram.bucket {
                        put(
                            format!("{name}_bucket"),
                            with(("le", bucket.upper_bound.unwrap())),
                            bucket.cumulative_count.unwrap() as f64,
                        );
                    }
                    let count = histogram.sample_count.unwrap() as f64;
                    put(format!("{name}_bucket"), with(("le", f64::INFINITY)), count);
                    put(format!("{name}_sum"), labels.clone(), histogram.sample_sum.unwrap());
                    put(format!("{name}_count"), labels.clone(), count);
                }
                other => panic!("{name}: unexpected type {other:?}"),
            }
        }
    }
    series
}

/// Asserts that both have the same series with the same values (NaN alike); returns how many.
fn assert_same(text: &BTreeMap<Key, f64>, proto: &BTreeMap<Key, f64>) -> usize {
    assert_eq!(
        text.keys().collect::<Vec<_>>(),
        proto.keys().collect::<Vec<_>>(),
        "the same series"
    );
    for (series, value) in text {
        let other = proto[series];
        assert!(
            value.to_bits() == other.to_bits() || (value.is_nan() && other.is_nan()),
            "{series:?}: text {value}, protobuf {other}"
        );
    }
    text.len()
}

/// The native buckets of a histogram as `(index, count)`, from its spans and deltas.
fn native_buckets(histogram: &Histogram) -> Vec<(i32, u64)> {
    let mut buckets = Vec::new();
    let (mut index, mut count, mut deltas) = (0i32, 0i64, histogram.positive_delta.iter());
    for (n, span) in histogram.positive_span.iter().enumerate() {
        index += span.offset.unwrap_or(0) + i32::from(n > 0);
        for i in 0..span.length.unwrap_or(0) {
            count += deltas.next().copied().expect("a delta per spanned bucket");
            assert!(count >= 0, "bucket counts never go negative");
            if count > 0 {
                buckets.push((index + i as i32, count as u64));
            }
        }
        index += span.length.unwrap_or(0) as i32 - 1;
    }
    assert!(deltas.next().is_none(), "no delta beyond the spans");
    buckets
}

/// The duration series of `families` by `(operation, result)`.
fn durations(families: &[MetricFamily]) -> BTreeMap<(String, String), Histogram> {
    let family = families
        .iter()
        .find(|f| f.name.as_deref() == Some("cuenv_cache_operation_duration_seconds"))
        .expect("the duration family");
    family
        .metric
        .iter()
        .map(|metric| {
            let label = |name: &str| {
                metric
                    .label
                    .iter()
                    .find(|pair| pair.name.as_deref() == Some(name))
                    .and_then(|pair| pair.value.clone())
                    .unwrap_or_default()
            };
            (
                (label("operation"), label("result")),
                metric.histogram.clone().expect("a histogram"),
            )
        })
        .collect()
}

/// A monitor with records of every kind: operations and results, a custom operation, 0 ns, the
/// longest duration, hostile keys, untimed counts, gauges, and an in-flight operation.
fn busy_monitor() -> Monitor {
    let monitor = Monitor::with_clock(Clock::Manual(ManualClock::starting_at(1_000)));
    monitor.configure(r#"{"operations": ["compact"]}"#).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..3_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let duration = (seed % 50_000_000) >> (seed % 23);
        let (operation, outcome) = match i % 5 {
            0 | 1 => (
                Operation::GET,
                if seed.is_multiple_of(3) {
                    Outcome::Miss
                } else {
                    Outcome::Hit
                },
            ),
            2 => (Operation::PUT, Outcome::Ok),
            3 => (Operation::LOAD, Outcome::Error),
            _ => (Operation::from_code(7), Outcome::Ok),
        };
        let key = format!("user:{}\"\n{}", i % 7, i % 3);
        monitor.record(operation, outcome, duration, key.as_bytes()).unwrap();
    }
    monitor.record(Operation::DELETE, Outcome::Ok, 0, b"path/x").unwrap();
    monitor
        .record(Operation::DELETE, Outcome::Ok, u64::MAX, b"path/y")
        .unwrap();
    monitor.count(Operation::EVICT, Outcome::Ok, 5).unwrap();
    monitor.set_gauge(Gauge::Entries, 42);
    std::mem::forget(monitor.start(Operation::GET).unwrap());
    monitor
}

#[test]
fn the_protobuf_body_says_what_the_text_says_series_by_series() {
    let monitor = busy_monitor();
    let text = monitor.render_prometheus();
    let families = protobuf::decode(&monitor.render_protobuf()).expect("length-delimited MetricFamily messages");

    let parsed = exposition::parse(&text);
    let text_families: Vec<(&String, &String)> = parsed.families.iter().collect();
    let mut proto_families: Vec<(String, String)> = families
        .iter()
        .map(|f| {
            let kind = match MetricType::try_from(f.r#type.unwrap()).unwrap() {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                MetricType::Histogram => "histogram",
                MetricType::Summary => "summary",
                other => panic!("{other:?}"),
            };
            (f.name.clone().unwrap(), kind.to_owned())
        })
        .collect();
    proto_families.sort();
    let text_families: Vec<(String, String)> = text_families.into_iter().map(|(n, k)| (n.clone(), k.clone())).collect();
    assert_eq!(
        proto_families, text_families,
        "the same families, named and typed alike"
    );

    let compared = assert_same(&text_series(&text), &protobuf_series(&families));
    assert!(compared > 100, "{compared} series compared");
    assert_promtool_accepts(&monitor.render_prometheus());
}

#[test]
fn every_duration_series_carries_its_native_buckets() {
    let monitor = busy_monitor();
    let families = protobuf::decode(&monitor.render_protobuf()).unwrap();
    let totals = monitor.totals();
    let series = durations(&families);
    assert!(series.len() >= 6);
    for ((operation, result), histogram) in &series {
        assert_eq!(histogram.schema, Some(5));
        assert_eq!(histogram.zero_threshold, Some(2f64.powi(-128)));
        let buckets = native_buckets(histogram);
        let zero = histogram.zero_count.unwrap();
        let total = buckets.iter().map(|(_, c)| c).sum::<u64>() + zero;
        assert_eq!(
            total,
            histogram.sample_count.unwrap(),
            "{operation}/{result}: every record in a bucket"
        );
        let code = ["get", "put", "delete", "contains", "clear", "evict", "load", "compact"]
            .iter()
            .position(|name| name == operation)
            .unwrap();
        let outcome = ["hit", "miss", "ok", "error"].iter().position(|r| r == result).unwrap();
        let expected = totals.series[code][outcome].latency.native_buckets(5);
        assert_eq!((zero, buckets), expected, "{operation}/{result}");
    }
    let delete = &series[&("delete".to_owned(), "ok".to_owned())];
    assert_eq!(delete.zero_count, Some(1), "0 ns is in the zero bucket");
    assert_eq!(
        native_buckets(delete),
        [(388, 1)],
        "2^42 - 1 ns (4398 s) is in bucket ceil(32 log2 4398.05) = 388"
    );
}

#[test]
fn durations_land_in_prometheus_buckets_at_every_schema() {
    // 1 us: 2^(k/32) seconds with k = ceil(32 log2 1e-6) = -637; 1 ms: -318; 1 s: 0 (an upper bound).
    let recorded = [(1_000, -637), (1_000_000, -318), (1_000_000_000, 0), (1_000_000_001, 1)];
    for schema in 0..=5u32 {
        let monitor = Monitor::new();
        monitor
            .configure(&format!(r#"{{"native_histograms": {{"schema": {schema}}}}}"#))
            .unwrap();
        for (ns, _) in recorded {
            monitor.record(Operation::GET, Outcome::Hit, ns, b"").unwrap();
        }
        let families = protobuf::decode(&monitor.render_protobuf()).unwrap();
        let get = &durations(&families)[&("get".to_owned(), "hit".to_owned())];
        assert_eq!(get.schema, Some(schema as i32));
        let shift = 5 - schema;
        let mut expected: Vec<(i32, u64)> = Vec::new();
        for (_, k) in recorded {
            // ceil(k / 2^shift): the coarser bucket holding schema-5 bucket k.
            let coarse = (k + (1 << shift) - 1) >> shift;
            match expected.last_mut() {
                Some((last, count)) if *last == coarse => *count += 1,
                _ => expected.push((coarse, 1)),
            }
        }
        assert_eq!(native_buckets(get), expected, "schema {schema}");
    }
}

#[test]
fn native_histograms_off_leaves_the_classic_histogram_alone() {
    let monitor = busy_monitor();
    monitor.configure(r#"{"native_histograms": false}"#).unwrap();
    let families = protobuf::decode(&monitor.render_protobuf()).unwrap();
    for histogram in durations(&families).values() {
        assert_eq!(histogram.schema, None);
        assert_eq!(histogram.zero_threshold, None);
        assert!(histogram.positive_span.is_empty() && histogram.positive_delta.is_empty());
        assert!(!histogram.bucket.is_empty());
    }
    assert_same(&text_series(&monitor.render_prometheus()), &protobuf_series(&families));
    let error = monitor
        .configure(r#"{"native_histograms": {"schema": 8}}"#)
        .unwrap_err();
    assert!(error.to_string().contains("memory"), "{error}");
}
