//! A real Prometheus server (Debian's `prometheus`) for the tests that scrape through one, its query API,
//! and the start-and-wait-for-`/-/ready` loop it shares with the other Prometheus servers (Pushgateway).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ChildGuard, exchange, free_port, http_get, poll_until};

/// How long a server may take to answer `/-/ready` before the test calls it hung.
const READY_DEADLINE: Duration = Duration::from_secs(120);

/// Panics, saying which Debian package to install, unless `binary --version` runs.
pub fn require(binary: &str, package: &str) {
    let version = Command::new(binary).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`{binary}` not found ({version:?}): install the Debian package `{package}` (.ci/run does)"
    );
}

/// Starts Prometheus on a free loopback port, scraping every one of `targets` every second as job `job`,
/// with extra `flags` (`--enable-feature=...`); its files go in `dir`. Returns the server and its address
/// once it is ready.
pub fn start(dir: &Path, job: &str, targets: &[SocketAddr], flags: &[&str]) -> (ChildGuard, SocketAddr) {
    require("prometheus", "prometheus");
    let targets = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{targets}]\n"
        ),
    )
    .expect("write prometheus.yml");
    start_server(dir, "prometheus", |address, attempt| {
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("data-{attempt}")).display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .args(flags);
        command
    })
}

/// Starts a Prometheus-style server (one that answers `/-/ready`) on a free loopback port: `command` gives
/// its command line for the address and the attempt number; its stderr goes to `dir/<name>-<attempt>.log`.
/// Another process may take the port between [`free_port`] and the server's bind, so a server that exits
/// before it is ready is tried again on another port, three times in all.
pub fn start_server(
    dir: &Path,
    name: &str,
    mut command: impl FnMut(SocketAddr, u32) -> Command,
) -> (ChildGuard, SocketAddr) {
    for attempt in 0..3 {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let log_path = dir.join(format!("{name}-{attempt}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = command(address, attempt)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut server = ChildGuard(child);
        if ready(&mut server, address) {
            return (server, address);
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        eprintln!("{name} exited early (port taken?), retrying:\n{log}");
    }
    panic!("{name} did not start in three attempts; see the logs above");
}

/// Waits until a Prometheus-style server answers `/-/ready`; `false` if it exited first.
pub fn ready(server: &mut ChildGuard, address: SocketAddr) -> bool {
    poll_until(
        "the server to be ready",
        READY_DEADLINE,
        Duration::from_millis(100),
        || {
            if let Ok(Some(_)) = server.0.try_wait() {
                return Some(false);
            }
            exchange(
                address,
                b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .is_ok_and(|raw| raw.starts_with(b"HTTP/1.1 200"))
            .then_some(true)
        },
    )
}

/// Percent-encodes a query string value (everything but RFC 3986's unreserved characters).
pub fn encode(value: &str) -> String {
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
pub fn query(prometheus: SocketAddr, promql: &str) -> Option<Vec<f64>> {
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
