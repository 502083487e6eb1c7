//! A scrape of `/metrics` stays live whatever else is requested: 16 clients fetch `/flamegraph.svg` in a
//! loop (a render symbolises every sampled stack, tenths of a second each) while `/metrics` is scraped
//! every 100 ms. Every scrape must answer, and the process's memory must stay bounded. In a binary of
//! its own, so no other test's threads or memory blur the numbers.
//!
//! No timing is asserted: the 5 s per scrape is a liveness bound (a scrape that waits behind renders
//! never answers in time on a loaded machine), not a performance claim. The scrape latencies are
//! printed (`--nocapture`) for BENCHMARKS.md.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_monitor::exporter::Exporter;
use cache_monitor::{Monitor, Operation, Outcome};
use support::{parse_response, resident_bytes};

/// Clients fetching the flamegraph at once.
const CLIENTS: usize = 16;
/// Scrapes of `/metrics`, one every [`SCRAPE_EVERY`].
const SCRAPES: usize = 100;
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// How long one scrape may take before it counts as not answered: liveness, not performance.
const LIVENESS: Duration = Duration::from_secs(5);
/// Growth of the resident set allowed while the clients run. One render and its gzip are a few hundred
/// kilobytes; before renders were shared and bounded, 16 clients grew the process by 130 MB.
const RSS_GROWTH_LIMIT: u64 = 48 << 20;

/// One request on a fresh connection, answered within [`LIVENESS`].
fn fetch(address: SocketAddr, path: &str, gzip: bool) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(LIVENESS))?;
    let encoding = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{encoding}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let response = parse_response(&raw);
    Ok((response.status, response.body))
}

/// Distinct call paths, so the flamegraph has stacks to symbolise.
#[inline(never)]
fn path_a(monitor: &Monitor, i: u64) {
    monitor
        .record(Operation::GET, Outcome::Hit, 1_000 + i % 7, b"user:1")
        .unwrap();
    std::hint::black_box(i);
}

#[inline(never)]
fn path_b(monitor: &Monitor, i: u64) {
    monitor
        .record(Operation::PUT, Outcome::Ok, 2_000 + i % 5, b"session:1")
        .unwrap();
    std::hint::black_box(i);
}

#[inline(never)]
fn path_c(monitor: &Monitor, depth: u32, i: u64) {
    if depth == 0 {
        monitor.record(Operation::GET, Outcome::Miss, 3_000, b"path/x").unwrap();
    } else {
        path_c(monitor, depth - 1, i);
    }
    std::hint::black_box(i);
}

#[test]
fn metrics_scrapes_answer_while_sixteen_clients_fetch_the_flamegraph() {
    let monitor = Arc::new(Monitor::new());
    monitor
        .configure(r#"{"profiler": {"sample_every": 1}}"#)
        .expect("sampling on");
    for i in 0..2_000u64 {
        path_a(&monitor, i);
        path_b(&monitor, i);
        path_c(&monitor, (i % 16) as u32, i);
    }
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").expect("exporter starts");
    let address = exporter.local_addr();
    let (status, svg) = fetch(address, "/flamegraph.svg", false).expect("a first flamegraph");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&svg).contains("path_c"),
        "the flamegraph names the paths"
    );

    let rss_before = resident_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let flamegraphs = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (stop, flamegraphs) = (Arc::clone(&stop), Arc::clone(&flamegraphs));
            std::thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Half the clients ask for gzip, as browsers do.
                    if let Ok((200, body)) = fetch(address, "/flamegraph.svg", client % 2 == 0) {
                        flamegraphs.fetch_add(1, Ordering::Relaxed);
                        peak = peak.max(body.len());
                    }
                }
                peak
            })
        })
        .collect();

    let mut latencies = Vec::with_capacity(SCRAPES);
    let mut failures = Vec::new();
    let mut rss_peak = rss_before;
    for scrape in 0..SCRAPES {
        let started = Instant::now();
        match fetch(address, "/metrics", false) {
            Ok((200, body)) if body.starts_with(b"# HELP cuenv_cache_operations_total") => {
                latencies.push(started.elapsed());
            }
            other => failures.push(format!("scrape {scrape}: {other:?}")),
        }
        // Recording goes on meanwhile, so renders keep having new samples.
        path_a(&monitor, scrape as u64);
        rss_peak = rss_peak.max(resident_bytes());
        std::thread::sleep(SCRAPE_EVERY.saturating_sub(started.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client thread");
    }
    exporter.stop();

    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{} scrapes beside {CLIENTS} flamegraph clients ({} flamegraphs served): p50 {:?}, p99 {:?}, max {:?}; \
         RSS {} MiB before, peak {} MiB",
        latencies.len(),
        flamegraphs.load(Ordering::Relaxed),
        percentile(50),
        percentile(99),
        latencies.last().copied().unwrap_or_default(),
        rss_before >> 20,
        rss_peak >> 20,
    );
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "every scrape answers within {LIVENESS:?}"
    );
    assert_eq!(latencies.len(), SCRAPES);
    assert!(flamegraphs.load(Ordering::Relaxed) > 0, "the clients were served too");
    assert!(
        rss_peak - rss_before <= RSS_GROWTH_LIMIT,
        "memory grew by {} MiB (limit {} MiB)",
        (rss_peak - rss_before) >> 20,
        RSS_GROWTH_LIMIT >> 20
    );
}
