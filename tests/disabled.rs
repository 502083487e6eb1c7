//! Monitoring switched off (`{"enabled": false}`, `Monitor::set_enabled`, `cache_monitor_set_enabled`):
//! records, counts and begins count nothing; what was counted stays rendered, served and in the state
//! file; switching back on resumes counting exactly.

mod support;

use std::process::Command;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use cache_monitor::{Monitor, Operation, Outcome};
use support::{cdylib, compile_c_host, exposition, run};

fn gets(monitor: &Monitor) -> u64 {
    monitor.totals().series[0].iter().map(|s| s.count).sum()
}

/// Everything a render shows, minus what moves by itself (uptime, timestamps).
fn rendered(monitor: &Monitor) -> String {
    monitor
        .render_prometheus()
        .lines()
        .filter(|line| !line.contains("uptime") && !line.contains("timestamp"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn switched_off_nothing_counts_and_switched_on_counting_resumes() {
    let monitor = Monitor::new();
    for _ in 0..10 {
        monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    }
    monitor.begin(Operation::PUT).unwrap();
    let before = rendered(&monitor);

    monitor.configure(r#"{"enabled": false}"#).unwrap();
    assert!(!monitor.is_enabled());
    for _ in 0..10 {
        monitor.record(Operation::GET, Outcome::Miss, 1_000, b"user:2").unwrap();
        monitor.count(Operation::EVICT, Outcome::Ok, 5).unwrap();
        monitor.begin(Operation::GET).unwrap();
        monitor.start(Operation::GET).unwrap().finish(Outcome::Hit, b"user:3");
    }
    assert_eq!(
        rendered(&monitor),
        before,
        "a switched-off monitor renders what was counted"
    );
    assert!(
        monitor.record(Operation::from_code(7), Outcome::Hit, 1, b"").is_err(),
        "still refused"
    );
    // An end always counts: the PUT begun before the switch leaves the in-flight count.
    monitor.end(Operation::PUT).unwrap();
    assert_eq!(monitor.totals().in_flight(), 0);

    monitor.set_enabled(true);
    assert!(monitor.config().enabled, "set_enabled is the configuration's switch");
    monitor.record(Operation::GET, Outcome::Miss, 1_000, b"user:2").unwrap();
    assert_eq!(gets(&monitor), 11);
    monitor.set_enabled(false);
    assert!(!monitor.config().enabled);
    assert_eq!(monitor.config().to_json().matches("\"enabled\":false").count(), 1);
}

/// Sets its flag when dropped, on success and on panic alike: a failed check must stop the recording
/// threads too, or the scope waits for them forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

#[test]
fn a_monitor_switched_on_and_off_under_load_keeps_every_render_consistent() {
    let monitor = Monitor::new();
    let stop = AtomicBool::new(false);
    let made = AtomicU64::new(0);
    let hits = [("operation", "get"), ("result", "hit")];
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Relaxed) {
                    monitor.record(Operation::GET, Outcome::Hit, 2_000, b"k:1").unwrap();
                    made.fetch_add(1, Relaxed);
                }
            });
        }
        let _stop_on_exit = StopOnDrop(&stop);
        let mut last = 0.0;
        for i in 0..200 {
            monitor.set_enabled(i % 2 == 1);
            let parsed = exposition::parse(&monitor.render_prometheus());
            let counted = parsed.value("cuenv_cache_operations_total", &hits).unwrap_or(0.0);
            assert!(counted >= last, "went back from {last} to {counted}");
            let count = parsed.value("cuenv_cache_operation_duration_seconds_count", &hits);
            let infinity = parsed.value(
                "cuenv_cache_operation_duration_seconds_bucket",
                &[("operation", "get"), ("result", "hit"), ("le", "+Inf")],
            );
            assert_eq!(count, infinity, "a histogram of whole records");
            last = counted;
            std::thread::yield_now();
        }
    });
    let counted = gets(&monitor);
    assert!(counted <= made.into_inner(), "never more than were made");
    // Left on (i = 199): every record from now counts.
    monitor.record(Operation::GET, Outcome::Hit, 2_000, b"k:1").unwrap();
    assert_eq!(gets(&monitor), counted + 1);
}

#[cfg(feature = "exporter")]
#[test]
fn the_exporter_keeps_serving_what_was_counted_while_switched_off() {
    let monitor = std::sync::Arc::new(Monitor::new());
    for _ in 0..7 {
        monitor.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
    }
    monitor.set_enabled(false);
    let exporter = cache_monitor::exporter::Exporter::start(std::sync::Arc::clone(&monitor), "127.0.0.1:0").unwrap();
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
    let response = support::http_get(exporter.local_addr(), "/metrics", &[]);
    assert_eq!(response.status, 200);
    assert!(
        response
            .text()
            .contains("cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 7\n"),
        "{}",
        response.text()
    );
}

#[test]
fn a_switched_off_process_adds_nothing_to_a_state_file_and_others_still_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.state");
    let attach = |monitor: &Monitor| {
        let json = format!(r#"{{"state": {{"path": {:?}}}}}"#, path.to_str().unwrap());
        monitor.configure(&json).unwrap();
    };
    let (on, off) = (Monitor::new(), Monitor::new());
    attach(&on);
    attach(&off);
    off.set_enabled(false);
    for monitor in [&on, &off] {
        for _ in 0..100 {
            monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
        }
    }
    assert_eq!(gets(&on), 100);
    assert_eq!(gets(&off), 100, "the switched-off process reads the file's counts");
    off.set_enabled(true);
    off.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    assert_eq!(gets(&Monitor::open_state_file(&path).unwrap()), 101);
}

#[cfg(feature = "caches")]
#[test]
fn a_switched_off_monitored_cache_only_runs_the_cache() {
    use cache_monitor::{Cache, MemoryCache, MonitoredCacheBuilder};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let monitor = std::sync::Arc::new(Monitor::new());
        let cache = MonitoredCacheBuilder::new(MemoryCache::default())
            .with_monitor(std::sync::Arc::clone(&monitor))
            .build()
            .unwrap();
        cache.put("user:1", &1, None).await.unwrap();
        monitor.set_enabled(false);
        assert_eq!(
            cache.get::<i32>("user:1").await.unwrap(),
            Some(1),
            "the cache still works"
        );
        assert_eq!(cache.get::<i32>("user:2").await.unwrap(), None);
        assert_eq!(gets(&monitor), 0, "no get counted");
        monitor.set_enabled(true);
        cache.get::<i32>("user:1").await.unwrap();
        assert_eq!(gets(&monitor), 1, "counting resumed");
        assert_eq!(monitor.totals().in_flight(), 0);
    });
}

#[test]
fn a_c_host_switches_monitoring_off_and_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("set_enabled", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("switched off, nothing counted"));
}
