//! The HTTP exporter over real sockets: endpoints, negotiation, authentication, and robustness against
//! garbage, oversized requests, slow clients and connection floods. Every exporter here serves its own
//! monitor on a free loopback port.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_monitor::exporter::Exporter;
use cache_monitor::{Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exchange, http_get, http_request, parse_response, poll_until};

/// A monitor with a few records and the given `"http"` section, served on a free port.
fn serve(http: &str) -> (Arc<Monitor>, Exporter) {
    let monitor = Arc::new(Monitor::new());
    monitor
        .configure(&format!(r#"{{"http": {http}}}"#))
        .expect("valid http section");
    for i in 0..100u64 {
        let outcome = if i % 4 == 0 { Outcome::Miss } else { Outcome::Hit };
        monitor
            .record(Operation::GET, outcome, 1_000 + i * 100, b"user:1")
            .unwrap();
    }
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").expect("exporter starts");
    (monitor, exporter)
}

/// A normal scrape: 200 with the exposition.
fn assert_scrape_succeeds(address: SocketAddr) {
    let response = http_get(address, "/metrics", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .text()
            .contains("cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 75\n"),
        "{}",
        response.text()
    );
}

/// Whether the server has closed `stream` (end of stream or reset), without blocking.
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // an error response before closing: keep reading
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

#[test]
fn metrics_in_text_and_openmetrics_with_gzip_index_and_errors() {
    let (monitor, exporter) = serve("{}");
    let address = exporter.local_addr();

    let text = http_get(address, "/metrics", &[]);
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(text.text(), monitor.render_prometheus());
    assert_promtool_accepts(&text.text());

    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let open = http_get(address, "/metrics", &[("Accept", prometheus_accept)]);
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.text().ends_with("# EOF\n"));
    assert!(open.text().contains("# TYPE cuenv_cache_operations counter\n"));

    let gzipped = http_get(address, "/metrics", &[("Accept-Encoding", "gzip, deflate")]);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_string(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, monitor.render_prometheus());

    let head = http_request(address, "HEAD", "/metrics", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").map(str::to_owned),
        Some(monitor.render_prometheus().len().to_string())
    );

    let index = http_get(address, "/", &[]);
    assert_eq!(index.status, 200);
    assert!(index.text().contains("<a href=\"/metrics\">"), "{}", index.text());

    assert_eq!(http_get(address, "/nope", &[]).status, 404);
    let post = http_request(address, "POST", "/metrics", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    exporter.stop();
}

#[test]
fn bearer_and_basic_auth_are_enforced_and_follow_configuration_changes() {
    let (monitor, exporter) =
        serve(r#"{"bearer_token": "scrape-token", "basic_auth": {"user": "prom", "password": "open sesame"}}"#);
    let address = exporter.local_addr();
    let denied = http_get(address, "/metrics", &[]);
    assert_eq!(denied.status, 401);
    assert!(!denied.text().contains("cuenv_cache"));
    let challenges: Vec<_> = denied
        .headers
        .iter()
        .filter(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(challenges, ["Bearer", "Basic"]);

    let bearer = http_get(address, "/metrics", &[("Authorization", "Bearer scrape-token")]);
    assert_eq!(bearer.status, 200);
    // base64("prom:open sesame")
    let basic = http_get(
        address,
        "/metrics",
        &[("Authorization", "Basic cHJvbTpvcGVuIHNlc2FtZQ==")],
    );
    assert_eq!(basic.status, 200);
    for wrong in [
        "Bearer scrape-tokem",
        "Bearer scrape-token2",
        "Basic cHJvbTpvcGVuIHNlc2FtZR==",
        "Digest scrape-token",
    ] {
        let response = http_get(address, "/metrics", &[("Authorization", wrong)]);
        assert_eq!(response.status, 401, "{wrong}");
    }

    // Credentials are read at each request: removing them opens the endpoint at once.
    monitor
        .configure(r#"{"http": {"bearer_token": null, "basic_auth": null}}"#)
        .unwrap();
    assert_scrape_succeeds(address);
    exporter.stop();
}

#[test]
fn garbage_bytes_get_an_error_or_a_close_and_scrapes_go_on() {
    let (_monitor, exporter) = serve(r#"{"max_request_bytes": 4096, "read_timeout_ms": 300}"#);
    let address = exporter.local_addr();
    let noise: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let inputs: Vec<Vec<u8>> = vec![
        noise,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS client hello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),             // an HTTP/2 preface
        b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(),
        b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
    ];
    for input in &inputs {
        // The server may answer 400 and close, or just close; either way it must not serve garbage,
        // and a scrape right after must succeed.
        if let Ok(raw) = exchange(address, input)
            && !raw.is_empty()
        {
            let response = parse_response(&raw);
            assert!(
                (400..500).contains(&response.status),
                "{:?} got {response:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_scrape_succeeds(address);
    }
    exporter.stop();
}

#[test]
fn oversized_request_heads_get_a_431_and_scrapes_go_on() {
    let (_monitor, exporter) = serve(r#"{"max_request_bytes": 4096}"#);
    let address = exporter.local_addr();
    // Over the limit but inside hyper's 8 KiB read buffer: read whole, answered with 431.
    let big = "a".repeat(6000);
    let response = http_get(address, "/metrics", &[("X-Big", &big)]);
    assert_eq!(response.status, 431, "{response:?}");
    assert_scrape_succeeds(address);

    // Far over the buffer: answered with 431 or cut off (the unread rest may turn the close into a
    // reset), never served, never buffered beyond the limit.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "b".repeat(1 << 20)
    );
    if let Ok(raw) = exchange(address, huge.as_bytes())
        && !raw.is_empty()
    {
        assert_eq!(parse_response(&raw).status, 431);
    }
    assert_scrape_succeeds(address);
    exporter.stop();
}

/// A client that sends a request line, then one byte of a header every 20 ms, and never ends its
/// headers; stops after `bytes` bytes (far below the size limit, so only the read timeout can cut it)
/// or once the server closes the connection. Returns whether it was cut off.
fn slowloris(address: SocketAddr, bytes: usize, started: &AtomicUsize) -> bool {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("request line");
    started.fetch_add(1, Ordering::SeqCst);
    for _ in 0..bytes {
        if stream.write_all(b"z").is_err() || closed_by_server(&stream) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    closed_by_server(&stream)
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_read_timeout_and_scrapes_go_on() {
    let (_monitor, exporter) = serve(r#"{"read_timeout_ms": 200}"#);
    let address = exporter.local_addr();
    let started = AtomicUsize::new(0);
    let cut_off = std::thread::scope(|scope| {
        // 1,500 bytes at 20 ms is 30 s: the bound on this test; the server cuts it after 200 ms.
        let client = scope.spawn(|| slowloris(address, 1_500, &started));
        poll_until(
            "the slow client to connect",
            Duration::from_secs(30),
            Duration::from_millis(5),
            || (started.load(Ordering::SeqCst) == 1).then_some(()),
        );
        assert_scrape_succeeds(address);
        client.join().expect("slow client thread")
    });
    assert!(
        cut_off,
        "the server never closed a connection whose headers never ended"
    );
    assert_scrape_succeeds(address);
    exporter.stop();
}

#[test]
fn more_connections_than_the_cap_evict_the_quietest_and_scrapes_go_on() {
    // A long read timeout, so only the cap can close the flood's connections.
    let (_monitor, exporter) = serve(r#"{"max_connections": 4, "read_timeout_ms": 600000}"#);
    let address = exporter.local_addr();
    let flood: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut stream = TcpStream::connect(address).expect("connect");
            if i % 2 == 0 {
                // Half send an unfinished request, half stay silent.
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .expect("partial request");
            }
            stream
        })
        .collect();
    // The scrape gets in while the flood's connections are held open.
    for _ in 0..3 {
        assert_scrape_succeeds(address);
    }
    // 12 flood connections through a cap of 4 evict 8; the first scrape evicts one more; later scrapes
    // find room, as each scrape closes its own connection. So exactly 9 flood connections go.
    let closed = poll_until(
        "evicted connections to be closed",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || {
            let closed = flood.iter().filter(|s| closed_by_server(s)).count();
            (closed >= 9).then_some(closed)
        },
    );
    assert_eq!(closed, 9, "only evicted connections are closed");
    exporter.stop();
    poll_until(
        "stopping to close every connection",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || flood.iter().all(closed_by_server).then_some(()),
    );
}

#[test]
fn json_reports_and_flamegraphs_are_served() {
    let (monitor, exporter) = serve("{}");
    monitor
        .configure(r#"{"profiler": {"sample_every": 1}}"#)
        .expect("sampling on");
    monitor
        .record(Operation::PUT, Outcome::Ok, 5_000, b"session:9")
        .unwrap();
    let address = exporter.local_addr();

    let hit_rate = http_get(address, "/hit-rate.json", &[]);
    assert_eq!(
        (hit_rate.status, hit_rate.header("content-type")),
        (200, Some("application/json"))
    );
    let report: serde_json::Value = serde_json::from_slice(&hit_rate.body).expect("hit-rate JSON");
    assert_eq!(report["overall"]["hits"], 75);
    assert_eq!(report["key_patterns"][0]["pattern"], "user:*");

    let stats = http_get(address, "/stats.json", &[]);
    let report: serde_json::Value = serde_json::from_slice(&stats.body).expect("stats JSON");
    assert_eq!(report["latency"][0]["overall"]["count"], 101);

    let folded = http_get(address, "/flamegraph.folded", &[]);
    assert_eq!(folded.status, 200);
    assert!(folded.text().contains("cache_monitor::put 1"), "{}", folded.text());
    let svg = http_get(address, "/flamegraph.svg", &[]);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(svg.text().contains("<svg") && svg.text().contains("cache_monitor::put"));

    let index = http_get(address, "/", &[]).text();
    for path in [
        "/metrics",
        "/hit-rate.json",
        "/stats.json",
        "/flamegraph.svg",
        "/flamegraph.folded",
    ] {
        assert!(index.contains(&format!("href=\"{path}\"")), "index links {path}");
    }
}
