//! The profiler's memory stays bounded however many distinct call sites record: distinct stacks past
//! `max_stacks` are counted as overflow, and the process does not grow with the number of sites.
//!
//! One test in its own binary (its own process), so no other test's allocations move the resident size.

mod support;

use std::ffi::c_char;
use std::fmt::Write as _;
use std::hint::black_box;

use cache_monitor::ffi::{CacheMonitorStatus, cache_monitor_configure, cache_monitor_record_with_frames};
use cache_monitor::profiler::OVERFLOW_FRAME;
use cache_monitor::{Monitor, Operation, Outcome};
use support::resident_bytes;

/// Records once through the C ABI from each host call site `sites`, each named by its own frames of
/// about 120 bytes (so that keeping them all would take about 120 bytes a site).
fn record_from_host_sites(sites: std::ops::Range<u32>, frames: &mut String) {
    for site in sites {
        frames.clear();
        let _ = write!(
            frames,
            "host.main;host.pkg/service.(*Server).handle_{site:07};host.pkg/cache.(*Shard).lookup_from_site_{site:07}"
        );
        // SAFETY: the key is NULL with length 0; `frames` is live for its length during the call.
        let status = unsafe {
            cache_monitor_record_with_frames(
                Operation::GET.code(),
                Outcome::Hit.code(),
                1_000,
                std::ptr::null(),
                0,
                frames.as_ptr().cast::<c_char>(),
                frames.len(),
            )
        };
        assert_eq!(status, CacheMonitorStatus::Ok as i32);
    }
}

/// Native call paths: `LEVELS` nested calls, each through `left` or `right` as the bits of `path` say,
/// so that every path is a distinct native stack.
const LEVELS: u32 = 13;

#[inline(never)]
fn descend(monitor: &Monitor, path: u32, level: u32) -> u32 {
    if level == LEVELS {
        monitor
            .record(Operation::PUT, Outcome::Ok, 1_000, b"")
            .expect("put is built in");
        return 1;
    }
    if path >> level & 1 == 1 {
        black_box(left(monitor, path, level + 1))
    } else {
        black_box(right(monitor, path, level + 1))
    }
}

#[inline(never)]
fn left(monitor: &Monitor, path: u32, level: u32) -> u32 {
    black_box(descend(monitor, path, level)) + 1
}

#[inline(never)]
fn right(monitor: &Monitor, path: u32, level: u32) -> u32 {
    black_box(descend(monitor, path, level)) + 2
}

#[test]
fn memory_stays_bounded_however_many_distinct_call_sites_record() {
    const MAX_STACKS: usize = 1024;
    let config = c"{\"profiler\": {\"sample_every\": 1, \"max_stacks\": 1024}}";
    // SAFETY: a NUL-terminated literal.
    let status = unsafe { cache_monitor_configure(config.as_ptr()) };
    assert_eq!(status, CacheMonitorStatus::Ok as i32);
    let monitor = Monitor::global();
    let mut frames = String::with_capacity(256);

    record_from_host_sites(0..10_000, &mut frames);
    let stats = monitor.profiler_stats();
    assert_eq!(stats.samples, 10_000);
    assert_eq!(stats.stacks, MAX_STACKS, "the table fills up to max_stacks");
    assert_eq!(stats.overflow_samples, 10_000 - MAX_STACKS as u64);
    let after_10k = resident_bytes();

    record_from_host_sites(10_000..100_000, &mut frames);
    let stats = monitor.profiler_stats();
    assert_eq!(stats.samples, 100_000);
    assert_eq!(stats.stacks, MAX_STACKS, "and no further");
    assert_eq!(stats.overflow_samples, 100_000 - MAX_STACKS as u64);
    let after_100k = resident_bytes();

    // Keeping the 90,000 further sites' frames alone would take about 10 MiB.
    let growth = after_100k.saturating_sub(after_10k);
    assert!(
        growth < 1 << 20,
        "resident size grew by {growth} bytes from 10,000 to 100,000 distinct sites ({after_10k} -> {after_100k})"
    );

    let folded = monitor.render_flamegraph_folded();
    assert_eq!(
        folded.lines().count(),
        MAX_STACKS + 1,
        "one line per stack and the overflow"
    );
    let overflow_line = format!("{OVERFLOW_FRAME};cache_monitor::get {}", 100_000 - MAX_STACKS);
    assert!(
        folded.lines().any(|line| line == overflow_line),
        "{overflow_line} missing"
    );

    // Distinct native stacks: 2^LEVELS call paths into a table of 256.
    let native = Monitor::new();
    native
        .configure(r#"{"profiler": {"sample_every": 1, "max_stacks": 256}}"#)
        .expect("valid configuration");
    let paths = 1u32 << LEVELS;
    for path in 0..paths {
        black_box(descend(&native, path, 0));
    }
    let stats = native.profiler_stats();
    assert_eq!(stats.samples, u64::from(paths));
    assert_eq!(stats.stacks, 256);
    assert_eq!(stats.overflow_samples, u64::from(paths) - 256);
    let folded = native.render_flamegraph_folded();
    let path_lines = folded
        .lines()
        .filter(|l| l.contains("profiler_memory::descend"))
        .count();
    assert_eq!(path_lines, 256, "each kept native stack is its own line:\n{folded}");
    eprintln!("resident growth from 10k to 100k sites: {growth} bytes");
}
