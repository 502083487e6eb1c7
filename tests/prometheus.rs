//! A real Prometheus server (Debian's `prometheus`) scrapes the demo every second; through its HTTP API
//! our series are queryable and `rate(...)` and `histogram_quantile(0.99, ...)` give numbers.

mod support;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{ChildGuard, Demo, free_port, http_get, poll_until};

/// Percent-encodes a query string value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The sample values of an instant query, or `None` while Prometheus has no answer yet.
fn query(prometheus: SocketAddr, promql: &str) -> Option<Vec<f64>> {
    let response = http_get(prometheus, &format!("/api/v1/query?query={}", encode(promql)), &[]);
    if response.status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    if json["status"] != "success" {
        return None;
    }
    let values: Vec<f64> = json["data"]["result"]
        .as_array()?
        .iter()
        .filter_map(|series| series["value"][1].as_str()?.parse().ok())
        .collect();
    (!values.is_empty()).then_some(values)
}

/// Starts Prometheus on a free port scraping `target` every second; retries if the port was taken in
/// the meantime. Returns the server and its address once it is ready.
fn start_prometheus(dir: &std::path::Path, target: SocketAddr) -> (ChildGuard, SocketAddr) {
    let version = Command::new("prometheus").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`prometheus` not found ({version:?}): install the Debian package `prometheus` (.ci/run does)"
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: cache-monitor-demo\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    for attempt in 0..3 {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let log = std::fs::File::create(dir.join(format!("prometheus-{attempt}.log"))).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("data-{attempt}")).display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = ChildGuard(child);
        let ready = poll_until(
            "Prometheus to be ready",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                if let Ok(Some(_exited)) = prometheus.0.try_wait() {
                    return Some(false);
                }
                let ok = support::exchange(
                    address,
                    b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .is_ok_and(|raw| raw.starts_with(b"HTTP/1.1 200"));
                ok.then_some(true)
            },
        );
        if ready {
            return (prometheus, address);
        }
        let log = std::fs::read_to_string(dir.join(format!("prometheus-{attempt}.log"))).unwrap_or_default();
        eprintln!("prometheus exited early (port taken?), retrying:\n{log}");
    }
    panic!("Prometheus did not start in three attempts; see the logs above");
}

#[test]
fn prometheus_scrapes_the_demo_and_answers_rate_and_histogram_quantile() {
    let demo = Demo::start(&["--duration", "600", "--rate", "2000", "--threads", "2"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prometheus, prometheus) = start_prometheus(dir.path(), demo.address);

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

    let up = query(prometheus, r#"up{job="cache-monitor-demo"}"#).expect("the target's up series");
    assert_eq!(up, [1.0], "the target is healthy");
}
