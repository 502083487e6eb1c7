//! State files from Rust: monitors that attach one file share every count, exactly; the file's shape is
//! one for all of them; a reset is everyone's; bad files are refused with a reason.

mod support;

use std::path::Path;

use cache_monitor::{Clock, Error, ManualClock, Monitor, Operation, Outcome};

fn attach(monitor: &Monitor, path: &Path) {
    monitor
        .configure(&format!(r#"{{"state": {{"path": {:?}}}}}"#, path.to_str().unwrap()))
        .unwrap();
}

fn count(monitor: &Monitor, operation: Operation, outcome: Outcome) -> u64 {
    monitor.totals().series[operation.code() as usize][outcome.code() as usize].count
}

#[test]
fn monitors_attached_to_one_file_share_every_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.state");
    let (a, b) = (Monitor::new(), Monitor::new());
    attach(&a, &path);
    attach(&b, &path);
    std::thread::scope(|scope| {
        for monitor in [&a, &b] {
            for t in 0..3u64 {
                scope.spawn(move || {
                    for i in 0..20_000u64 {
                        let outcome = if (i + t) % 4 == 0 { Outcome::Miss } else { Outcome::Hit };
                        let key = format!("user:{i}");
                        monitor.record(Operation::GET, outcome, 1_500, key.as_bytes()).unwrap();
                    }
                    monitor.begin(Operation::PUT).unwrap();
                });
            }
        }
    });
    let reader = Monitor::open_state_file(&path).unwrap();
    for monitor in [&a, &b, &reader] {
        let totals = monitor.totals();
        let get = &totals.series[0];
        assert_eq!(get[0].count + get[1].count, 120_000);
        assert_eq!(get[1].count, 30_000);
        assert_eq!(get[0].sum_ns + get[1].sum_ns, 120_000 * 1_500);
        assert_eq!(totals.latency[0].total(), 120_000);
        assert_eq!(totals.in_flight(), 6, "begun by live writers, not ended");
        let view = monitor.view();
        let user = view.patterns.iter().find(|p| p.pattern == "user:*").unwrap();
        assert_eq!(user.counts[..2], [90_000, 30_000]);
    }
    assert_eq!(a.state_file().as_deref(), Some(path.as_path()));
}

#[test]
fn the_file_keeps_counts_after_its_writers_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept.state");
    for round in 1..=3u64 {
        let monitor = Monitor::new();
        attach(&monitor, &path);
        for _ in 0..1_000 {
            monitor.record(Operation::PUT, Outcome::Ok, 10, b"path/a").unwrap();
        }
        monitor.begin(Operation::GET).unwrap(); // never ended: its writer goes away
        assert_eq!(count(&monitor, Operation::PUT, Outcome::Ok), round * 1_000);
        drop(monitor);
    }
    let reader = Monitor::open_state_file(&path).unwrap();
    assert_eq!(count(&reader, Operation::PUT, Outcome::Ok), 3_000);
    assert_eq!(
        reader.totals().in_flight(),
        0,
        "operations of writers that are gone are not in flight"
    );
}

#[test]
fn a_new_file_takes_the_monitors_shape_and_later_monitors_adopt_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.state");
    let first = Monitor::new();
    first
        .configure(r#"{"namespace": "builds", "buckets": [0.001, 0.1], "operations": ["compact"]}"#)
        .unwrap();
    attach(&first, &path);
    first
        .record(Operation::from_code(7), Outcome::Ok, 5_000_000, b"")
        .unwrap();

    let second = Monitor::new();
    attach(&second, &path);
    let config = second.config();
    assert_eq!(config.namespace, "builds");
    assert_eq!(config.buckets.seconds(), &[0.001, 0.1]);
    assert_eq!(config.operations, ["compact"]);
    second.record(Operation::from_code(7), Outcome::Ok, 50, b"").unwrap();
    let text = second.render_prometheus();
    assert!(
        text.contains("builds_operations_total{operation=\"compact\",result=\"ok\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("le=\"0.1\"} 2\n"), "{text}");

    // A conflicting shape is refused while the file holds counts, and nothing changes.
    assert!(matches!(
        second.configure(r#"{"namespace": "other"}"#),
        Err(Error::StateFile(_))
    ));
    assert!(matches!(
        second.configure(r#"{"buckets": [1.0]}"#),
        Err(Error::StateFile(_))
    ));
    let third = Monitor::new();
    third.configure(r#"{"operations": ["warm"]}"#).unwrap();
    let refused = third.configure(&format!(r#"{{"state": {{"path": {:?}}}}}"#, path.to_str().unwrap()));
    assert!(
        matches!(refused, Err(Error::StateFile(ref why)) if why.contains("operations")),
        "{refused:?}"
    );
    assert_eq!(third.state_file(), None, "refused: still in memory");

    // Appending an operation is always allowed, and every process sees it.
    first.configure(r#"{"operations": ["compact", "refresh"]}"#).unwrap();
    assert_eq!(second.config().operations, ["compact", "refresh"]);
    second.record(Operation::from_code(8), Outcome::Ok, 1, b"").unwrap();

    // After a reset the file holds no counts: its shape may change, for everyone.
    second.reset();
    first.configure(r#"{"namespace": "renamed"}"#).unwrap();
    assert_eq!(second.config().namespace, "renamed");
}

#[test]
fn a_reset_is_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reset.state");
    let (a, b) = (Monitor::new(), Monitor::new());
    attach(&a, &path);
    attach(&b, &path);
    a.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    b.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    a.reset();
    assert_eq!(count(&b, Operation::GET, Outcome::Hit), 0);
    b.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    assert_eq!(count(&a, Operation::GET, Outcome::Hit), 1);
}

#[test]
fn windows_span_every_writer_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("windows.state");
    let clock = ManualClock::starting_at(1_000_000);
    let writers: Vec<Monitor> = (0..3)
        .map(|_| {
            let monitor = Monitor::with_clock(Clock::Manual(clock.clone()));
            attach(&monitor, &path);
            monitor
        })
        .collect();
    // Each writer records one hit per second for two minutes, then goes quiet.
    for second in 0..120 {
        for monitor in &writers {
            monitor.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
        }
        if second < 119 {
            clock.advance(1);
        }
    }
    let reader = Monitor::with_clock(Clock::Manual(clock.clone()));
    attach(&reader, &path);
    let report = reader.hit_rate_report();
    let window = |label: &str| report.windows.iter().find(|w| w.window == label).unwrap().operations;
    assert_eq!(window("1m"), 3 * 60, "the last minute of all three writers");
    assert_eq!(window("5m"), 3 * 120);
    clock.advance(60);
    let report = reader.hit_rate_report();
    let window = |label: &str| report.windows.iter().find(|w| w.window == label).unwrap().operations;
    assert_eq!(window("1m"), 0, "a quiet minute later");
    assert_eq!(window("1h"), 3 * 120);
}

#[test]
fn a_monitor_with_counts_attaches_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.state");
    let monitor = Monitor::new();
    monitor.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    let refused = monitor.configure(&format!(r#"{{"state": {{"path": {:?}}}}}"#, path.to_str().unwrap()));
    assert!(matches!(refused, Err(Error::Busy(_))), "{refused:?}");
    assert!(!path.exists(), "a refused call creates nothing");
    monitor.reset();
    attach(&monitor, &path);
    assert_eq!(count(&monitor, Operation::GET, Outcome::Hit), 0);
}

#[test]
fn bad_files_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.state");
    attach(&Monitor::new(), &good);
    let size = std::fs::metadata(&good).unwrap().len() as usize;
    let original = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("zeros", vec![0; size]),
        ("truncated", original[..size / 2].to_vec()),
        ("foreign", b"not a state file at all".repeat(1000)),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.state"));
        support::files::write_sparse(&path, &bytes);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let error = Monitor::open_state_file(&path).err().expect("refused");
        let text = error.to_string();
        assert!(text.contains(path.to_str().unwrap()), "{name}: {text}");
        let monitor = Monitor::new();
        let refused = monitor.configure(&format!(r#"{{"state": {{"path": {:?}}}}}"#, path.to_str().unwrap()));
        assert!(matches!(refused, Err(Error::StateFile(_))), "{name}: {refused:?}");
        monitor.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
        assert_eq!(
            count(&monitor, Operation::GET, Outcome::Hit),
            1,
            "{name}: still counting in memory"
        );
    }
    assert!(
        Monitor::open_state_file(dir.path().join("missing.state")).is_err(),
        "readers create nothing"
    );
}

#[test]
fn imports_are_refused_once_a_file_is_attached() {
    let dir = tempfile::tempdir().unwrap();
    let source = Monitor::new();
    source.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    let monitor = Monitor::new();
    attach(&monitor, &dir.path().join("import.state"));
    let refused = monitor.import_state(source.export_state().as_bytes());
    assert!(matches!(refused, Err(Error::StateFile(_))), "{refused:?}");
}
