//! A scrape: rendering the full metric set, against `prometheus::Registry::gather` plus `TextEncoder` over
//! equivalent families, in one run. The registry holds what our exposition holds, series for series:
//! operations (counter), durations (histogram, same buckets), stats, hit rates, pattern counts,
//! latency quantiles (as gauges: the crate has no summary) and alerts; `render/prometheus_core` holds
//! only the counter and the histogram, the families both libraries are usually compared on.

mod support;

use std::time::Duration;

use cache_monitor::{Monitor, Operation, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use support::{KEYS, prometheus_families};

/// Every built-in operation with each outcome a cache produces for it.
const RECORDED: [(Operation, Outcome, &str, &str); 12] = [
    (Operation::GET, Outcome::Hit, "get", "hit"),
    (Operation::GET, Outcome::Miss, "get", "miss"),
    (Operation::GET, Outcome::Error, "get", "error"),
    (Operation::PUT, Outcome::Ok, "put", "ok"),
    (Operation::PUT, Outcome::Error, "put", "error"),
    (Operation::DELETE, Outcome::Ok, "delete", "ok"),
    (Operation::CONTAINS, Outcome::Hit, "contains", "hit"),
    (Operation::CONTAINS, Outcome::Miss, "contains", "miss"),
    (Operation::CLEAR, Outcome::Ok, "clear", "ok"),
    (Operation::EVICT, Outcome::Ok, "evict", "ok"),
    (Operation::LOAD, Outcome::Ok, "load", "ok"),
    (Operation::LOAD, Outcome::Error, "load", "error"),
];

fn render(c: &mut Criterion) {
    let monitor = Monitor::new();
    let (registry, counter, histogram) = prometheus_families();
    for i in 0..100_000u64 {
        let (operation, outcome, op_label, result_label) = RECORDED[(i % 12) as usize];
        let duration_ns = 500 + (i * 7_919) % 50_000_000;
        monitor
            .record(operation, outcome, duration_ns, KEYS[(i % 4) as usize])
            .expect("built in");
        counter.with_label_values(&[op_label, result_label]).inc();
        histogram
            .with_label_values(&[op_label, result_label])
            .observe(duration_ns as f64 / 1e9);
    }

    let core = Registry::new();
    core.register(Box::new(counter.clone())).expect("register");
    core.register(Box::new(histogram.clone())).expect("register");
    mirror_the_other_families(&monitor, &registry);

    let mut group = c.benchmark_group("render");
    group.bench_function("cache_monitor_text", |b| b.iter(|| monitor.render_prometheus()));
    group.bench_function("cache_monitor_openmetrics", |b| b.iter(|| monitor.render_openmetrics()));
    group.bench_function("cache_monitor_protobuf", |b| b.iter(|| monitor.render_protobuf()));
    monitor
        .configure(r#"{"native_histograms": false}"#)
        .expect("a valid configuration");
    group.bench_function("cache_monitor_protobuf_native_off", |b| {
        b.iter(|| monitor.render_protobuf())
    });
    monitor
        .configure(r#"{"native_histograms": true}"#)
        .expect("a valid configuration");
    let encode = |registry: &Registry| {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encodes");
        out
    };
    group.bench_function("prometheus_equivalent_families", |b| b.iter(|| encode(&registry)));
    group.bench_function("prometheus_core_families", |b| b.iter(|| encode(&core)));
    group.finish();
}

/// Registers in `registry` every family of our exposition beyond operations and durations, with the same
/// series and values, read from our own render.
fn mirror_the_other_families(monitor: &Monitor, registry: &Registry) {
    let text = monitor.render_prometheus();
    let gauge = |name: &str, labels: &[&str]| {
        let vec = GaugeVec::new(Opts::new(name, "mirrored"), labels).expect("valid gauge");
        registry.register(Box::new(vec.clone())).expect("register");
        vec
    };
    let stats = gauge("cuenv_cache_stats", &["metric"]);
    let hit_rate = gauge("cuenv_cache_hit_rate", &["window", "operation"]);
    let latency = gauge("cuenv_cache_latency_seconds", &["operation", "quantile"]);
    let alert = gauge("cuenv_cache_alert", &["alert"]);
    let patterns = IntCounterVec::new(
        Opts::new("cuenv_cache_pattern_operations_total", "mirrored"),
        &["pattern", "result"],
    )
    .expect("valid counter");
    registry.register(Box::new(patterns.clone())).expect("register");
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("sample value");
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels: Vec<&str> = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.trim_matches('"')))
            .collect();
        match name {
            "cuenv_cache_stats" => stats.with_label_values(&labels).set(value),
            "cuenv_cache_hit_rate" => hit_rate.with_label_values(&labels).set(value),
            "cuenv_cache_latency_seconds" => latency.with_label_values(&labels).set(value),
            "cuenv_cache_alert" => alert.with_label_values(&labels).set(value),
            "cuenv_cache_pattern_operations_total" => patterns.with_label_values(&labels).inc_by(value as u64),
            _ => {}
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = render
}
criterion_main!(benches);
