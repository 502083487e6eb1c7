//! A scrape: rendering the full metric set, against `prometheus::Registry::gather` plus `TextEncoder` over
//! the equivalent counter and histogram families (same series, same buckets), in one run.

mod support;

use std::time::Duration;

use cache_monitor::{Monitor, Operation, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};
use prometheus::{Encoder, TextEncoder};
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

    let mut group = c.benchmark_group("render");
    group.bench_function("cache_monitor_text", |b| b.iter(|| monitor.render_prometheus()));
    group.bench_function("prometheus_gather_text_encoder", |b| {
        let encoder = TextEncoder::new();
        b.iter(|| {
            let mut out = Vec::with_capacity(16 * 1024);
            encoder.encode(&registry.gather(), &mut out).expect("encodes");
            out
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = render
}
criterion_main!(benches);
