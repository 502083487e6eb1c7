//! A real Prometheus server (Debian's `prometheus`) scrapes the demo every second; through its HTTP API
//! our series are queryable and `rate(...)` and `histogram_quantile(0.99, ...)` give numbers.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::prometheus::{self, encode, query};
use support::rng::Rng;
use support::{Demo, http_get, poll_until};

/// The scrape job of every Prometheus these tests start.
const JOB: &str = "cache-monitor-demo";

#[test]
fn prometheus_scrapes_the_demo_and_answers_rate_and_histogram_quantile() {
    let demo = Demo::start(&["--duration", "600", "--rate", "2000", "--threads", "2"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prometheus, prometheus) = prometheus::start(dir.path(), JOB, &[demo.address], &[]);

    // At least two scrapes of our series, then the three queries all answer with numbers.
    let scrapes = r#"count_over_time(cuenv_cache_operations_total{operation="get",result="hit"}[1m])"#;
    let rate = "rate(cuenv_cache_operations_total[10s])";
    let p99 = "histogram_quantile(0.99, sum by (le) (rate(cuenv_cache_operation_duration_seconds_bucket[10s])))";
    let (series, rates, quantiles) = poll_until(
        "two scrapes and answers to rate() and histogram_quantile()",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || {
            let scraped = query(prometheus, scrapes)?;
            if scraped.iter().any(|&n| n < 2.0) {
                return None;
            }
            let series = query(prometheus, "cuenv_cache_operations_total")?;
            let rates = query(prometheus, rate)?;
            let quantiles = query(prometheus, p99)?;
            quantiles
                .iter()
                .all(|q| q.is_finite())
                .then_some((series, rates, quantiles))
        },
    );
    assert!(series.len() >= 8, "every operation/result series is stored: {series:?}");
    assert!(rates.iter().all(|r| r.is_finite() && *r >= 0.0), "{rates:?}");
    assert!(
        rates.iter().any(|r| *r > 0.0),
        "the workload shows as a rate: {rates:?}"
    );
    assert!(quantiles.iter().all(|q| *q > 0.0), "{quantiles:?}");

    let up = query(prometheus, &format!("up{{job=\"{JOB}\"}}")).expect("the target's up series");
    assert_eq!(up, [1.0], "the target is healthy");
}

/// The durations (ns) three instances record: log-normal around 200 us; uniform from 1 to 5 ms; and
/// mostly 30 to 70 us with a 5% tail from 10 to 30 ms.
fn fleet_durations() -> [Vec<u64>; 3] {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let n = 20_000;
    let lognormal = (0..n)
        .map(|_| (200_000.0 * (0.5 * rng.normal()).exp()) as u64)
        .collect();
    let uniform = (0..n)
        .map(|_| 1_000_000 + (4_000_000.0 * rng.next_f64()) as u64)
        .collect();
    let tailed = (0..n)
        .map(|_| {
            if rng.next_f64() < 0.95 {
                30_000 + (40_000.0 * rng.next_f64()) as u64
            } else {
                10_000_000 + (20_000_000.0 * rng.next_f64()) as u64
            }
        })
        .collect();
    [lognormal, uniform, tailed]
}

/// Three exporters (one monitor each, as three hosts of a fleet) record known, different
/// distributions; one Prometheus scrapes them with native histograms (protobuf), another without
/// (OpenMetrics, classic buckets). The fleet-wide p99 from the native histograms lies within 3% of the
/// true p99 of all the records; the classic buckets' answer is printed beside it.
#[test]
fn fleet_wide_p99_from_native_histograms_is_within_3_percent() {
    use std::sync::Arc;

    use cache_monitor::exporter::Exporter;
    use cache_monitor::{Monitor, Operation, Outcome};

    let monitors: Vec<Arc<Monitor>> = (0..3).map(|_| Arc::new(Monitor::new())).collect();
    let exporters: Vec<Exporter> = monitors
        .iter()
        .map(|monitor| Exporter::start(Arc::clone(monitor), "127.0.0.1:0").expect("an exporter"))
        .collect();
    let targets: Vec<SocketAddr> = exporters.iter().map(Exporter::local_addr).collect();
    let (native_dir, classic_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_native, native) = prometheus::start(
        native_dir.path(),
        JOB,
        &targets,
        &["--enable-feature=native-histograms"],
    );
    let (_classic, classic) = prometheus::start(classic_dir.path(), JOB, &targets, &[]);

    // A series appears at its first record: one record each, scraped at least twice, then the rest,
    // so that the rate window holds the rest exactly.
    let lists = fleet_durations();
    let record = |from: usize, to: Option<usize>| {
        for (monitor, durations) in monitors.iter().zip(&lists) {
            for duration in &durations[from..to.unwrap_or(durations.len())] {
                monitor
                    .record(Operation::GET, Outcome::Hit, *duration, b"user:1")
                    .unwrap();
            }
        }
    };
    let scraped = |count: f64| {
        poll_until(
            "both servers to scrape every record",
            Duration::from_secs(90),
            Duration::from_millis(250),
            || {
                let native_count = query(native, "histogram_count(sum(cuenv_cache_operation_duration_seconds))")?;
                let classic_count = query(classic, "sum(cuenv_cache_operation_duration_seconds_count)")?;
                (native_count == [count] && classic_count == [count]).then_some(())
            },
        )
    };
    record(0, Some(1));
    scraped(3.0);
    std::thread::sleep(Duration::from_secs(2));
    record(1, None);
    scraped(lists.iter().map(Vec::len).sum::<usize>() as f64);
    // One more scrape each, so that the last sample of every series is in the window.
    std::thread::sleep(Duration::from_secs(2));

    // Over the counts themselves, not `rate(...[1m])`: a rate extrapolates each instance's series to the
    // window's edges by its own scrape times, which weights the three distributions unevenly (3.1% off
    // in one CI run, 1.35% in another); the sum of the counts weights every record once.
    let native_p99 = query(
        native,
        "histogram_quantile(0.99, sum(cuenv_cache_operation_duration_seconds))",
    )
    .expect("a native-histogram quantile")[0];
    let classic_p99 = query(
        classic,
        "histogram_quantile(0.99, sum by (le) (cuenv_cache_operation_duration_seconds_bucket))",
    )
    .expect("a classic-bucket quantile")[0];
    let mut merged: Vec<u64> = lists.iter().flatten().copied().collect();
    merged.sort_unstable();
    let rank = (0.99 * merged.len() as f64).ceil() as usize;
    let truth = merged[rank - 1] as f64 / 1e9;
    let error = |value: f64| (value - truth).abs() / truth;
    println!(
        "fleet p99: true {:.3} ms, native histograms {:.3} ms ({:.2}% off), classic buckets {:.3} ms ({:.1}% off)",
        truth * 1e3,
        native_p99 * 1e3,
        100.0 * error(native_p99),
        classic_p99 * 1e3,
        100.0 * error(classic_p99)
    );
    assert!(
        error(native_p99) <= 0.03,
        "native p99 {native_p99} s is more than 3% from the true {truth} s"
    );
    drop(exporters);
}

/// An exporter whose records carry trace ids, scraped (OpenMetrics) by Prometheus with
/// `--enable-feature=exemplar-storage`: its `query_exemplars` API gives back each trace id on the bucket
/// series its record counted in, with the duration as the value.
#[test]
fn prometheus_stores_the_scraped_exemplars_and_query_exemplars_returns_the_trace_ids() {
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    use cache_monitor::exporter::Exporter;
    use cache_monitor::{Monitor, Operation, Outcome};

    let monitor = Arc::new(Monitor::new());
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").expect("an exporter");
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prometheus, prometheus) = prometheus::start(
        dir.path(),
        JOB,
        &[exporter.local_addr()],
        &["--enable-feature=exemplar-storage"],
    );

    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let start = now() - 60.0;
    let traces = [
        ("4bf92f3577b34da6a3ce929d0e0e4736", 1_200_000, "0.0025"),
        ("00f067aa0ba902b7c0ffee0000000001", 40_000_000, "0.05"),
    ];
    for (trace_id, duration_ns, _) in traces {
        monitor
            .record_with_exemplar(
                Operation::GET,
                Outcome::Hit,
                duration_ns,
                b"user:1",
                &[("trace_id", trace_id)],
            )
            .unwrap();
    }
    monitor.record(Operation::GET, Outcome::Hit, 3_000, b"user:2").unwrap();

    let path = format!(
        "/api/v1/query_exemplars?query={}&start={start:.3}&end={:.3}",
        encode("cuenv_cache_operation_duration_seconds_bucket"),
        now() + 3600.0
    );
    // (trace id, the series' le, the value) of every stored exemplar, once both are there.
    let found: Vec<(String, String, f64)> = poll_until(
        "Prometheus to store both exemplars",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || {
            let response = http_get(prometheus, &path, &[]);
            if response.status != 200 {
                return None;
            }
            let json: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
            let mut found = Vec::new();
            for series in json["data"].as_array()? {
                let le = series["seriesLabels"]["le"].as_str()?.to_owned();
                for exemplar in series["exemplars"].as_array()? {
                    let trace = exemplar["labels"]["trace_id"].as_str()?.to_owned();
                    let value: f64 = exemplar["value"].as_str()?.parse().ok()?;
                    found.push((trace, le.clone(), value));
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            (found.len() >= traces.len()).then_some(found)
        },
    );
    let mut expected: Vec<(String, String, f64)> = traces
        .iter()
        .map(|(trace, ns, le)| ((*trace).to_owned(), (*le).to_owned(), *ns as f64 / 1e9))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found, expected, "each trace id on its bucket's series, once");
    drop(exporter);
}
