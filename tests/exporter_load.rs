//! A scrape of `/metrics` stays live whatever else is requested: 16 clients fetch `/flamegraph.svg` in a
//! loop (a render symbolises every sampled stack: tenths of a second, seconds in a test build) while
//! `/metrics` is scraped every 100 ms. Every scrape must answer, and the process's memory must not grow
//! with the clients. In a binary of its own, so no other test's threads or memory blur the numbers.
//!
//! No timing is asserted: the 5 s per scrape is a liveness bound (before renders moved off the event
//! loop, scrapes waited behind every client's render and timed out), not a performance claim. The
//! latencies are printed (`--nocapture`) for BENCHMARKS.md.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_monitor::exporter::Exporter;
use cache_monitor::{Monitor, Operation, Outcome};
use support::{parse_response, resident_anonymous_bytes};

/// Clients fetching the flamegraph at once.
const CLIENTS: usize = 16;
/// Scrapes of `/metrics`, one every [`SCRAPE_EVERY`].
const SCRAPES: usize = 100;
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// How long one request may take before it counts as not answered: liveness, not performance.
const LIVENESS: Duration = Duration::from_secs(5);
/// Growth of anonymous memory allowed while the clients run: one render at a time (its symbol tables and
/// inflated debug sections, its SVG and gzip) whatever the number of clients.
const GROWTH_LIMIT: u64 = 64 << 20;

/// The status of one request on a fresh connection, answered within [`LIVENESS`]; the body is read and
/// dropped as it comes (the clients live in this process, and must not add their own memory).
fn fetch(address: SocketAddr, path: &str, gzip: bool) -> std::io::Result<(u16, u64)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(LIVENESS))?;
    let encoding = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{encoding}Connection: close\r\n\r\n"
    )?;
    let mut chunk = [0u8; 16 << 10];
    let mut head = Vec::new();
    let mut total = 0u64;
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        if head.len() < 12 {
            head.extend_from_slice(&chunk[..read.min(12)]);
        }
        total += read as u64;
    }
    let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, total))
}

/// The body of `GET path`, read whole (for the few checks that need it).
fn get_body(address: SocketAddr, path: &str) -> Vec<u8> {
    let raw = support::exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let response = parse_response(&raw);
    assert_eq!(response.status, 200, "GET {path}");
    response.body
}

/// 2^10 distinct call paths (each level through `left` or `right`), so the flamegraph has a thousand
/// stacks to symbolise and draw.
#[inline(never)]
fn left(monitor: &Monitor, level: u32, path: u32) {
    descend(monitor, level + 1, path);
    std::hint::black_box(level);
}

#[inline(never)]
fn right(monitor: &Monitor, level: u32, path: u32) {
    descend(monitor, level + 1, path);
    std::hint::black_box(level);
}

#[inline(never)]
fn descend(monitor: &Monitor, level: u32, path: u32) {
    if level == 10 {
        monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    } else if path >> level & 1 == 0 {
        left(monitor, level, path);
    } else {
        right(monitor, level, path);
    }
}

#[test]
fn metrics_scrapes_answer_while_sixteen_clients_fetch_the_flamegraph() {
    let monitor = Arc::new(Monitor::new());
    monitor
        .configure(r#"{"profiler": {"sample_every": 1, "max_stacks": 2048}}"#)
        .expect("sampling on");
    for path in 0..4_096u32 {
        descend(&monitor, 0, path);
    }
    assert_eq!(monitor.profiler_stats().stacks, 1 << 10);
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").expect("exporter starts");
    let address = exporter.local_addr();
    let svg = String::from_utf8(get_body(address, "/flamegraph.svg")).expect("UTF-8");
    assert!(
        svg.contains("descend") && svg.contains("left") && svg.contains("right"),
        "the paths are drawn"
    );

    let memory_before = resident_anonymous_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let flamegraphs = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (stop, flamegraphs) = (Arc::clone(&stop), Arc::clone(&flamegraphs));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Half the clients ask for gzip, as browsers do.
                    if let Ok((200, _)) = fetch(address, "/flamegraph.svg", client % 2 == 0) {
                        flamegraphs.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let mut latencies = Vec::with_capacity(SCRAPES);
    let mut failures = Vec::new();
    let mut memory_peak = memory_before;
    for scrape in 0..SCRAPES {
        let started = Instant::now();
        match fetch(address, "/metrics", false) {
            Ok((200, _)) => latencies.push(started.elapsed()),
            other => failures.push(format!("scrape {scrape}: {other:?} after {:?}", started.elapsed())),
        }
        // Recording goes on meanwhile, so renders keep having new samples.
        descend(&monitor, 0, scrape as u32);
        memory_peak = memory_peak.max(resident_anonymous_bytes());
        std::thread::sleep(SCRAPE_EVERY.saturating_sub(started.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client thread");
    }
    let metrics = String::from_utf8(get_body(address, "/metrics")).expect("UTF-8");
    exporter.stop();

    latencies.sort();
    let percentile = |p: usize| {
        let at = (latencies.len() * p / 100).min(latencies.len().saturating_sub(1));
        latencies.get(at).copied().unwrap_or_default()
    };
    println!(
        "{} of {SCRAPES} scrapes answered beside {CLIENTS} flamegraph clients ({} flamegraphs of {} KiB served): \
         p50 {:?}, p99 {:?}, max {:?}; anonymous memory {} MiB before, peak {} MiB",
        latencies.len(),
        flamegraphs.load(Ordering::Relaxed),
        svg.len() >> 10,
        percentile(50),
        percentile(99),
        latencies.last().copied().unwrap_or_default(),
        memory_before >> 20,
        memory_peak >> 20,
    );
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "every scrape answers within {LIVENESS:?}"
    );
    let hits = 4_096 + SCRAPES as u64;
    assert!(
        metrics.contains(&format!(
            "cuenv_cache_operations_total{{operation=\"get\",result=\"hit\"}} {hits}\n"
        )),
        "{metrics}"
    );
    assert!(flamegraphs.load(Ordering::Relaxed) > 0, "the clients were served too");
    let growth = memory_peak - memory_before;
    assert!(
        growth <= GROWTH_LIMIT,
        "anonymous memory grew by {} MiB with {CLIENTS} clients (limit {} MiB)",
        growth >> 20,
        GROWTH_LIMIT >> 20
    );
}
