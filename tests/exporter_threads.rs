//! Stopping the exporter leaves no thread behind, through the Rust API and through the C ABI, even with
//! connections open. One test in its own binary, so no other test's threads come and go meanwhile.

mod support;

use std::net::TcpStream;
use std::sync::Arc;

use cache_monitor::exporter::Exporter;
use cache_monitor::ffi::{
    CacheMonitorStatus, cache_monitor_serve, cache_monitor_serve_address, cache_monitor_serve_stop,
};
use cache_monitor::{Monitor, Operation, Outcome};
use support::{http_get, thread_count};

#[test]
fn serving_adds_one_thread_and_stopping_joins_it_even_with_connections_open() {
    let before = thread_count();
    let monitor = Arc::new(Monitor::new());
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();

    // The Rust API, with an idle keep-alive connection and a half-sent request open while stopping.
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").unwrap();
    assert_eq!(thread_count(), before + 1, "one exporter thread");
    let address = exporter.local_addr();
    assert_eq!(http_get(address, "/metrics", &[]).status, 200);
    let idle = TcpStream::connect(address).unwrap();
    let mut partial = TcpStream::connect(address).unwrap();
    std::io::Write::write_all(&mut partial, b"GET /metrics HTTP/1.1\r\n").unwrap();
    exporter.stop();
    assert_eq!(thread_count(), before, "stop joined the exporter thread");
    drop((idle, partial));

    // The C ABI's process-wide exporter, called in-process.
    // SAFETY: a NUL-terminated string.
    let status = unsafe { cache_monitor_serve(c"127.0.0.1:0".as_ptr()) };
    assert_eq!(status, CacheMonitorStatus::Ok as i32);
    assert_eq!(thread_count(), before + 1);
    let mut buf = [0u8; 64];
    let mut len = 0usize;
    // SAFETY: `buf` is writable for its length, `len` is a live local.
    let status = unsafe { cache_monitor_serve_address(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, CacheMonitorStatus::Ok as i32);
    let address = std::str::from_utf8(&buf[..len]).unwrap().parse().unwrap();
    assert_eq!(http_get(address, "/", &[]).status, 200);
    assert_eq!(cache_monitor_serve_stop(), CacheMonitorStatus::Ok as i32);
    assert_eq!(thread_count(), before, "serve_stop joined the exporter thread");
}
