//! The profiler as a monitor drives it: sampling through records, configuration, reset and renders.

use super::Monitor;
use crate::config::operations::Operation;
use crate::error::Error;
use crate::profiler::{DEFAULT_MAX_STACKS, ProfilerStats, sampling_countdown};
use crate::recording::operation::Outcome;

/// Runs `body` on a fresh thread, so its sampling countdown starts from the beginning.
fn on_fresh_thread<T: Send>(body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(body).join().expect("thread ran"))
}

#[test]
fn sampling_off_never_touches_the_thread_local_countdown() {
    on_fresh_thread(|| {
        let monitor = Monitor::new();
        for _ in 0..10_000 {
            monitor
                .record_with_frames(Operation::GET, Outcome::Hit, 1, b"k", "host.f")
                .unwrap();
        }
        assert_eq!(sampling_countdown(), 0, "sampling off: countdown untouched");
        assert_eq!(monitor.profiler_stats(), ProfilerStats::default());
        // The same check sees the countdown as soon as sampling is on.
        monitor.configure(r#"{"profiler": {"sample_every": 7}}"#).unwrap();
        for _ in 0..3 {
            monitor.record(Operation::GET, Outcome::Hit, 1, b"k").unwrap();
        }
        assert_eq!(sampling_countdown(), 4);
    });
}

#[test]
fn every_nth_record_of_each_thread_is_sampled_with_its_host_frames() {
    let monitor = Monitor::new();
    monitor.configure(r#"{"profiler": {"sample_every": 10}}"#).unwrap();
    std::thread::scope(|scope| {
        for t in 0..3 {
            let monitor = &monitor;
            scope.spawn(move || {
                let frames = format!("host.main;host.worker{t}");
                for _ in 0..1_005 {
                    monitor
                        .record_with_frames(Operation::GET, Outcome::Hit, 2_000, b"", &frames)
                        .unwrap();
                }
            });
        }
    });
    let stats = monitor.profiler_stats();
    assert_eq!((stats.samples, stats.overflow_samples), (300, 0));
    assert_eq!(stats.max_stacks, DEFAULT_MAX_STACKS);
    let folded = monitor.render_flamegraph_folded();
    for t in 0..3 {
        let line = folded
            .lines()
            .find(|l| l.contains(&format!(";host.main;host.worker{t};")))
            .unwrap_or_else(|| panic!("worker {t} missing:\n{folded}"));
        assert!(
            line.ends_with(&format!(";host.main;host.worker{t};cache_monitor::get 100")),
            "{line}"
        );
        assert!(!line.contains("Profiler::sample"), "own frames trimmed: {line}");
    }
    monitor.configure(r#"{"profiler": {"weight": "time"}}"#).unwrap();
    let by_time = monitor.render_flamegraph_folded();
    assert!(
        by_time.contains(";host.main;host.worker0;cache_monitor::get 200\n"),
        "100 samples x 2 us:\n{by_time}"
    );
}

#[test]
fn reset_and_resizing_forget_samples_and_off_keeps_them() {
    on_fresh_thread(|| {
        let monitor = Monitor::new();
        monitor
            .configure(r#"{"profiler": {"sample_every": 1, "max_stacks": 2}}"#)
            .unwrap();
        for site in ["a", "b", "c"] {
            monitor
                .record_with_frames(Operation::PUT, Outcome::Ok, 1, b"", site)
                .unwrap();
        }
        let stats = monitor.profiler_stats();
        assert_eq!((stats.stacks, stats.overflow_samples), (2, 1));
        assert!(
            monitor
                .render_flamegraph_folded()
                .contains("[overflow];cache_monitor::put 1\n")
        );

        monitor.configure(r#"{"profiler": {"sample_every": 0}}"#).unwrap();
        monitor.record(Operation::PUT, Outcome::Ok, 1, b"").unwrap();
        assert_eq!(monitor.profiler_stats().samples, 3, "off: kept, not added to");

        monitor.reset();
        assert_eq!(monitor.profiler_stats().samples, 0);
        assert_eq!(monitor.render_flamegraph_folded(), "");
        monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
        monitor
            .record_with_frames(Operation::PUT, Outcome::Ok, 1, b"", "d")
            .unwrap();
        assert_eq!(monitor.profiler_stats().samples, 1);

        monitor.configure(r#"{"profiler": {"max_stacks": 5}}"#).unwrap();
        assert_eq!(
            monitor.profiler_stats(),
            ProfilerStats {
                max_stacks: 5,
                ..ProfilerStats::default()
            }
        );
    });
}

#[test]
fn a_refused_configuration_leaves_the_profiler_as_it_was() {
    let monitor = Monitor::new();
    monitor
        .configure(r#"{"profiler": {"sample_every": 3, "max_stacks": 8}}"#)
        .unwrap();
    let before = monitor.config();
    for bad in [
        r#"{"profiler": {"sample_every": 1, "max_stacks": 0}}"#,
        r#"{"namespace": "ok", "profiler": {"sampling": 1}}"#,
    ] {
        assert!(matches!(monitor.configure(bad), Err(Error::InvalidConfig(_))));
    }
    assert_eq!(monitor.config(), before);
    assert_eq!(monitor.profiler_stats().max_stacks, 8);
}

#[test]
fn custom_operations_name_their_leaf() {
    let monitor = Monitor::new();
    monitor
        .configure(r#"{"operations": ["compact"], "profiler": {"sample_every": 1}}"#)
        .unwrap();
    on_fresh_thread(|| {
        monitor
            .record_with_frames(
                Operation::from_code(Operation::FIRST_CUSTOM),
                Outcome::Ok,
                1,
                b"",
                "job",
            )
            .unwrap()
    });
    assert!(
        monitor
            .render_flamegraph_folded()
            .contains(";job;cache_monitor::compact 1\n")
    );
    let svg = monitor.render_flamegraph_svg().unwrap();
    assert!(svg.contains("cache_monitor::compact"));
}
