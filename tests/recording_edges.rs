//! Inputs at the edges of what a host passes, through the Rust API and the C ABI linked in: absurd
//! durations never make a `_sum` fall, frames never cost a record, NUL bytes in keys never reach the
//! exposition text, ends without a begin hide nothing in flight, and a refused record at the C boundary
//! takes no lock of ours and allocates nothing (a counting allocator watches this test binary's threads).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cache_monitor::config::MAX_DURATION_NS;
use cache_monitor::ffi::{self, CacheMonitorStatus};
use cache_monitor::{Clock, ManualClock, Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exposition};

/// The system allocator, counting the allocations of each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the count is a plain thread-local
// cell without a destructor, which allocating never re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations this thread made while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A monitor whose windows do not move.
fn monitor() -> Monitor {
    Monitor::with_clock(Clock::Manual(ManualClock::starting_at(1_000)))
}

fn get_hit_sum(monitor: &Monitor) -> f64 {
    let text = monitor.render_prometheus();
    exposition::parse(&text)
        .value(
            "cuenv_cache_operation_duration_seconds_sum",
            &[("operation", "get"), ("result", "hit")],
        )
        .expect("the series is rendered")
}

#[test]
fn absurd_durations_are_recorded_at_the_ceiling_and_the_sum_never_falls() {
    let monitor = monitor();
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
    let mut last = get_hit_sum(&monitor);
    assert_eq!(last, 1e-6);
    for duration in [
        u64::MAX - 999,
        7,
        u64::MAX,
        MAX_DURATION_NS + 1,
        1 << 30,
        MAX_DURATION_NS,
    ] {
        monitor.record(Operation::GET, Outcome::Hit, duration, b"").unwrap();
        let sum = get_hit_sum(&monitor);
        assert!(sum > last, "_sum fell from {last} to {sum} after {duration} ns");
        last = sum;
    }
    let totals = monitor.totals();
    let series = &totals.series[0][Outcome::Hit.code() as usize];
    assert_eq!(series.count, 7);
    assert_eq!(series.sum_ns, 1_000 + 7 + (1 << 30) + 4 * MAX_DURATION_NS);
    assert_eq!(series.buckets.last(), Some(&4), "the clamped ones land in +Inf");
}

#[test]
fn frames_are_text_or_bytes_and_never_cost_the_record() {
    let monitor = monitor();
    monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
    monitor
        .record_with_frames(Operation::GET, Outcome::Hit, 10, b"", "rust.main;rust.get")
        .unwrap();
    monitor
        .record_with_frames(Operation::GET, Outcome::Hit, 10, b"", b"go.main;go.\xff\x00")
        .unwrap();
    assert_eq!(monitor.totals().series[0][Outcome::Hit.code() as usize].count, 2);
    let folded = monitor.render_flamegraph_folded();
    assert!(
        folded.contains(";rust.main;rust.get;cache_monitor::get 1\n"),
        "{folded}"
    );
    assert!(
        folded.contains(";go.main;go.\u{fffd}\u{fffd};cache_monitor::get 1\n"),
        "{folded}"
    );
    assert!(!folded.contains('\0'));
}

#[test]
fn nul_bytes_in_keys_never_reach_the_exposition_text() {
    let monitor = monitor();
    monitor.record(Operation::PUT, Outcome::Ok, 10, b"a\0b:1").unwrap();
    monitor.record(Operation::PUT, Outcome::Ok, 10, b"\0:2").unwrap();
    for text in [monitor.render_prometheus(), monitor.render_openmetrics()] {
        assert!(!text.contains('\0'), "{text:?}");
        assert!(text.contains("{pattern=\"a\u{fffd}b:*\",result=\"ok\"} 1\n"), "{text}");
        assert!(text.contains("{pattern=\"\u{fffd}:*\",result=\"ok\"} 1\n"), "{text}");
    }
    assert_promtool_accepts(&monitor.render_prometheus());
}

#[test]
fn ends_without_a_begin_hide_nothing_in_flight() {
    let monitor = monitor();
    monitor.begin(Operation::GET).unwrap();
    monitor.begin(Operation::LOAD).unwrap();
    for _ in 0..5 {
        monitor.end(Operation::PUT).unwrap();
    }
    assert_eq!(monitor.totals().in_flight(), 2);
    let json: serde_json::Value = serde_json::from_str(&monitor.render_stats_json()).unwrap();
    assert_eq!(json["operations_in_flight"], 2);
}

#[test]
fn a_refused_record_at_the_c_boundary_allocates_nothing_and_each_thread_keeps_its_message() {
    // Warm up: the process-wide monitor and this thread's last-error slot exist before counting.
    // SAFETY: NULL key with length 0.
    let _ = unsafe { ffi::cache_monitor_record(0, 0, 1, std::ptr::null(), 0) };
    // SAFETY (every call below): NULL key with length 0.
    let _ = unsafe { ffi::cache_monitor_record(99_999, 0, 1, std::ptr::null(), 0) };
    let statuses = std::cell::RefCell::new(Vec::with_capacity(4)); // allocated before counting
    let allocated = allocations_in(|| {
        for code in [100_000, 100_001] {
            // SAFETY: NULL key with length 0.
            let status = unsafe { ffi::cache_monitor_record(code, 0, 1, std::ptr::null(), 0) };
            statuses.borrow_mut().push(status);
        }
        // SAFETY: NULL key with length 0.
        let status = unsafe { ffi::cache_monitor_record(0, 9, 1, std::ptr::null(), 0) };
        statuses.borrow_mut().push(status);
        // SAFETY: a NULL key with a length is refused before any read.
        let status = unsafe { ffi::cache_monitor_record(0, 0, 1, std::ptr::null(), 4) };
        statuses.borrow_mut().push(status);
    });
    let refused = [
        CacheMonitorStatus::UnknownOperation,
        CacheMonitorStatus::UnknownOperation,
        CacheMonitorStatus::UnknownResult,
        CacheMonitorStatus::NullPointer,
    ];
    assert_eq!(statuses.into_inner(), refused.map(|s| s as i32));
    assert_eq!(allocated, 0, "refused records allocated");

    let mut buf = [0u8; 300];
    let mut len = 0;
    // SAFETY: `buf` is writable for its length, `len` is a live local.
    let status = unsafe { ffi::cache_monitor_last_error(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!((status, &buf[..len]), (0, &b"a required pointer argument was NULL"[..]));
    let other = std::thread::spawn(|| {
        // SAFETY: NULL key with length 0.
        let status = unsafe { ffi::cache_monitor_record(123_456, 0, 1, std::ptr::null(), 0) };
        let mut buf = [0u8; 300];
        let mut len = 0;
        // SAFETY: `buf` is writable for its length, `len` is a live local.
        unsafe { ffi::cache_monitor_last_error(buf.as_mut_ptr(), buf.len(), &mut len) };
        (status, String::from_utf8_lossy(&buf[..len]).into_owned())
    })
    .join()
    .unwrap();
    assert_eq!(
        other,
        (
            CacheMonitorStatus::UnknownOperation as i32,
            "unknown operation code 123456".to_owned()
        )
    );
    // SAFETY: as above.
    unsafe { ffi::cache_monitor_last_error(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(
        &buf[..len],
        b"a required pointer argument was NULL",
        "still this thread's own"
    );
}
