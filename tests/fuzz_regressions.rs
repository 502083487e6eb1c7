//! Invariant violations the fuzz targets in `fuzz/` found, each reduced to the input that shows it.
//!
//! Every one was a defect listed in issue 14 ("No count ever vanishes") or, for the last one, a C ABI
//! trap issue 15 removed; each test failed before its fix and keeps it fixed.

mod support;

use cache_monitor::config::MAX_DURATION_NS;
use cache_monitor::ffi::{CacheMonitorStatus, cache_monitor_record_with_frames, cache_monitor_render};
use cache_monitor::{Clock, ManualClock, Monitor, Operation, Outcome};
use support::exposition;

/// A monitor on a fixed clock, as the fuzz targets use.
fn monitor() -> Monitor {
    Monitor::with_clock(Clock::Manual(ManualClock::starting_at(1_000_000)))
}

/// Records what the `configure` target records after each step: one operation of every kind, 5 ms each,
/// keyed `k<code>:x/<step>`.
fn record_step(monitor: &Monitor, step: usize) {
    for code in 0..monitor.config().operation_count() as u32 {
        let operation = Operation::from_code(code);
        let outcome = if operation == Operation::GET {
            Outcome::Hit
        } else {
            Outcome::Ok
        };
        let key = format!("k{code}:x/{step}");
        monitor.record(operation, outcome, 5_000_000, key.as_bytes()).unwrap();
    }
}

fn all_counts(monitor: &Monitor) -> u64 {
    monitor.totals().series.iter().flatten().map(|s| s.count).sum()
}

fn pattern_counts(monitor: &Monitor) -> u64 {
    monitor.totals().patterns.iter().flatten().sum()
}

/// `configure` target, input `{}` NUL NUL `{"buckets": [0.001]}`: configure, record, reset, change the
/// buckets, record. The records after the change count 0 (`_count` 0 while `+Inf` holds them).
#[test]
fn records_count_after_a_reset_and_a_bucket_change() {
    let monitor = monitor();
    monitor.configure("{}").unwrap();
    record_step(&monitor, 0);
    monitor.reset();
    monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
    record_step(&monitor, 2);
    assert_eq!(
        all_counts(&monitor),
        7,
        "one record of each built-in operation since the reset"
    );
    let text = monitor.render_prometheus();
    let parsed = exposition::parse(&text);
    let total: f64 = parsed.named("cuenv_cache_operations_total").map(|s| s.value).sum();
    assert_eq!(total, 7.0, "{text}");
}

/// `configure` target, input `{"patterns": {"depth": 2}}` NUL `{}` NUL `{"patterns": {"max": 1}}`: once
/// `max` is below the slots already handed out, records of those patterns count nowhere, neither under
/// their pattern nor under `other`.
#[test]
fn lowering_the_pattern_cap_keeps_every_keyed_record() {
    let monitor = monitor();
    monitor.configure(r#"{"patterns": {"depth": 2}}"#).unwrap();
    record_step(&monitor, 0);
    monitor.configure("{}").unwrap();
    record_step(&monitor, 1);
    monitor.configure(r#"{"patterns": {"max": 1}}"#).unwrap();
    let before = pattern_counts(&monitor);
    monitor
        .record(Operation::PUT, Outcome::Ok, 5_000_000, b"k1:x/2")
        .unwrap();
    assert_eq!(
        pattern_counts(&monitor),
        before + 1,
        "counted under k1:x/* or under other"
    );
}

/// `import_state` target, input `fuzz/corpus/import_state/small_export.json` (a default-configured
/// export): a monitor that has recorded adopts the snapshot's namespace, so its metric names change
/// under Prometheus. The documented contract: only a monitor that has recorded nothing adopts it.
#[test]
fn a_monitor_that_recorded_keeps_its_namespace_on_import() {
    let source = monitor();
    source.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    let importer = monitor();
    importer.configure(r#"{"namespace": "importer"}"#).unwrap();
    importer.record(Operation::GET, Outcome::Hit, 2_000, b"user:9").unwrap();
    importer.import_state(source.export_state().as_bytes()).unwrap();
    assert_eq!(importer.config().namespace, "importer");
}

/// `record_with_frames` target: frames that are not UTF-8 (here one byte, 0xff) make the C ABI refuse
/// the whole record, so a profiling annotation costs a metric.
#[test]
fn a_record_with_bad_frames_still_counts() {
    let before = all_counts(Monitor::global());
    let key = b"user:1";
    let frames = b"main;\xff";
    // SAFETY: both pointers point to the given number of readable bytes, alive for the call.
    let status = unsafe {
        cache_monitor_record_with_frames(
            0,
            0,
            1_000,
            key.as_ptr(),
            key.len(),
            frames.as_ptr().cast(),
            frames.len(),
        )
    };
    assert_ne!(status, CacheMonitorStatus::Internal as i32);
    assert_eq!(all_counts(Monitor::global()), before + 1);
}

/// `record_with_frames` target (which resets the process-wide monitor before every input): once the
/// raw duration sum has wrapped below the last reset's baseline, `_sum` shows 0 s after a record of
/// 18446744073709490433 ns. Reduced: a record of 2^63 ns, a reset, another of 2^63 ns. Durations are
/// clamped to `MAX_DURATION_NS` now, and the sum since a reset is a wrapping difference.
#[test]
fn duration_sums_do_not_fall_across_a_reset() {
    let monitor = monitor();
    monitor.record(Operation::GET, Outcome::Hit, 1 << 63, b"").unwrap();
    monitor.reset();
    monitor.record(Operation::GET, Outcome::Hit, 1 << 63, b"").unwrap();
    let sum_ns = monitor.totals().series[0][0].sum_ns;
    assert_eq!(
        sum_ns, MAX_DURATION_NS,
        "the sum since the reset is the one clamped record"
    );
}

/// `record_with_frames` and `import_state_edits` targets: a key with a NUL byte (here the one the
/// latter's sample export had) puts a raw NUL into the pattern label of the Prometheus text and
/// OpenMetrics (a C host's `fputs` stops there).
#[test]
fn keys_with_nul_bytes_render_without_raw_nul() {
    let monitor = monitor();
    monitor
        .record(Operation::GET, Outcome::Hit, 1_000, b"\x00\xff:bytes")
        .unwrap();
    assert!(!monitor.render_prometheus().contains('\0'));
    assert!(!monitor.render_openmetrics().contains('\0'));
}

/// `record_with_frames` target: between the size query and the copy the text grew by one byte (the
/// process-wide monitor's rates follow the real clock), filled the `len + 1` buffer exactly and came back
/// OK without a NUL, as the buffer contract allows today. Reduced: a buffer of exactly the reported size.
#[test]
fn a_successful_render_is_always_nul_terminated() {
    Monitor::global()
        .record(Operation::GET, Outcome::Hit, 1_000, b"user:1")
        .unwrap();
    let mut len = 0usize;
    // SAFETY: NULL with capacity 0 asks for the size; `len` is a live local.
    unsafe { cache_monitor_render(std::ptr::null_mut(), 0, &mut len) };
    loop {
        let mut buffer = vec![0xAAu8; len];
        // SAFETY: `buffer` is writable for its length; `len` is a live local.
        let status = unsafe { cache_monitor_render(buffer.as_mut_ptr(), buffer.len(), &mut len) };
        if status == CacheMonitorStatus::BufferTooSmall as i32 && len > buffer.len() {
            continue; // the text grew meanwhile
        }
        assert!(
            status != CacheMonitorStatus::Ok as i32 || (len < buffer.len() && buffer[len] == 0),
            "OK without a NUL: {len} bytes in a buffer of {}",
            buffer.len()
        );
        break;
    }
}

/// `http_request` target: a request for a slow page (`/flamegraph.svg`) over `serve_stream` on a runtime
/// whose clock is paused, as the target drives it. Slow pages rendered on the exporter's render thread
/// then, and while the request waited for that thread the paused clock ran ahead to the target's
/// one-hour deadline: `serve_stream` now renders them on the requesting task.
#[cfg(feature = "exporter")]
#[test]
fn a_slow_page_over_serve_stream_answers_on_a_paused_clock() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let monitor = std::sync::Arc::new(monitor());
    let response = runtime.block_on(async {
        let (client, server) = tokio::io::duplex(4096);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let serve = cache_monitor::exporter::serve_stream(std::sync::Arc::clone(&monitor), server);
        let exchange = async {
            to_server
                .write_all(b"GET /flamegraph.svg HTTP/1.1\r\nAccept-Encoding: gp=y0 ;z,\xf0ite\t\n\n\n")
                .await
                .expect("the request is sent");
            to_server.shutdown().await.expect("the request ends");
            let mut response = Vec::new();
            let _ = from_server.read_to_end(&mut response).await;
            response
        };
        // The target's deadline: a paused clock jumps to it as soon as nothing on this runtime can run.
        let answered = tokio::time::timeout(std::time::Duration::from_secs(3600), async {
            tokio::join!(serve, exchange).1
        });
        answered
            .await
            .expect("answered before the paused clock reached an hour")
    });
    assert!(
        response.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&response[..response.len().min(200)])
    );
}
