//! Reported quantiles are within the stated relative error of the exact quantiles of the same sample.

mod support;

use cache_monitor::latency::RELATIVE_ERROR;
use cache_monitor::{Monitor, Operation, Outcome};
use support::rng::Rng;

/// Nearest-rank quantile of a sorted sample.
fn exact(sorted: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1] as f64
}

fn check(samples: Vec<u64>) {
    let monitor = Monitor::new();
    for ns in &samples {
        monitor
            .record(Operation::GET, Outcome::Hit, *ns, b"")
            .expect("get is built in");
    }
    let mut sorted = samples;
    sorted.sort_unstable();
    let stats = monitor.stats_report();
    let get = stats
        .latency
        .iter()
        .find(|l| l.operation == "get")
        .expect("get latency");
    for (summary, window) in [(get.overall, "overall"), (get.last_minute, "last minute")] {
        for (q, reported) in [
            (0.5, summary.p50_seconds),
            (0.99, summary.p99_seconds),
            (0.999, summary.p999_seconds),
        ] {
            let reported = reported.expect("samples recorded") * 1e9;
            let truth = exact(&sorted, q);
            let error = (reported - truth).abs() / truth;
            assert!(
                error <= RELATIVE_ERROR,
                "{window} q{q}: reported {reported} ns, exact {truth} ns, error {error}"
            );
        }
    }
    let exact_mean = sorted.iter().map(|v| *v as f64).sum::<f64>() / sorted.len() as f64;
    let mean = get.overall.mean_seconds.expect("mean") * 1e9;
    assert!(
        (mean - exact_mean).abs() / exact_mean < 1e-9,
        "the overall mean is exact: {mean} vs {exact_mean}"
    );
}

#[test]
fn p99_of_log_uniform_latencies_is_within_the_stated_error() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // 1 us to 1 s, log-uniform: every octave of the histogram gets used.
    let samples = (0..200_000)
        .map(|_| (1e3 * 1e6f64.powf(rng.next_f64())) as u64)
        .collect();
    check(samples);
}

#[test]
fn p99_of_a_heavy_tail_is_within_the_stated_error() {
    let mut rng = Rng(42);
    // Mostly fast hits with a slow tail: the shape that makes p99 matter.
    let samples = (0..100_000)
        .map(|_| {
            let u = rng.next_f64();
            if u < 0.97 {
                800 + (rng.next_f64() * 400.0) as u64
            } else {
                5_000_000 + (rng.next_f64() * 45e6) as u64
            }
        })
        .collect();
    check(samples);
}
