//! No count ever vanishes, comes back or is counted twice, whatever the order of calls (issue "No count
//! ever vanishes"): bucket changes across resets, a lowered pattern cap, refused and racing imports, and a
//! render taken while other threads record, reset and reconfigure.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use cache_monitor::{Error, Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exposition};

const GET: Operation = Operation::GET;

fn get_hit(monitor: &Monitor) -> cache_monitor::totals::SeriesTotals {
    monitor.totals().series[GET.code() as usize][Outcome::Hit.code() as usize].clone()
}

/// `_count`, `+Inf` and `operations_total` of the get/hit series, as rendered.
fn rendered_get_hit(monitor: &Monitor) -> (f64, f64, f64) {
    let parsed = exposition::parse(&monitor.render_prometheus());
    let labels = [("operation", "get"), ("result", "hit")];
    let count = parsed
        .value("cuenv_cache_operation_duration_seconds_count", &labels)
        .unwrap_or(0.0);
    let inf = parsed
        .value(
            "cuenv_cache_operation_duration_seconds_bucket",
            &[("operation", "get"), ("result", "hit"), ("le", "+Inf")],
        )
        .unwrap_or(0.0);
    let total = parsed.value("cuenv_cache_operations_total", &labels).unwrap_or(0.0);
    (count, inf, total)
}

#[test]
fn new_buckets_after_a_reset_keep_count_inf_and_totals_together() {
    let monitor = Monitor::new();
    for _ in 0..100 {
        monitor.record(GET, Outcome::Hit, 5_000_000, b"").unwrap();
    }
    monitor.reset();
    monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
    for _ in 0..10 {
        monitor.record(GET, Outcome::Hit, 5_000_000, b"").unwrap();
    }
    let series = get_hit(&monitor);
    assert_eq!((series.count, series.buckets.as_slice()), (10, [0, 10].as_slice()));
    assert_eq!(rendered_get_hit(&monitor), (10.0, 10.0, 10.0));
    assert_eq!(monitor.hit_rate_report().windows[0].operations, 10, "the windows agree");
}

#[test]
fn buckets_changed_back_across_two_resets_bring_no_old_record_back() {
    let monitor = Monitor::new();
    for _ in 0..100 {
        monitor.record(GET, Outcome::Hit, 5_000_000, b"").unwrap();
    }
    monitor.reset();
    monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
    monitor.reset();
    monitor
        .configure(&format!(
            r#"{{"buckets": {:?}}}"#,
            cache_monitor::buckets::DEFAULT_BUCKETS
        ))
        .unwrap();
    assert_eq!(get_hit(&monitor).count, 0, "nothing recorded since the reset");
    assert_eq!(rendered_get_hit(&monitor), (0.0, 0.0, 0.0));
    monitor.record(GET, Outcome::Hit, 5_000_000, b"").unwrap();
    assert_eq!(rendered_get_hit(&monitor), (1.0, 1.0, 1.0));
}

#[test]
fn lowering_the_pattern_cap_hides_no_keyed_count() {
    let monitor = Monitor::new();
    for i in 0..10 {
        monitor
            .record(GET, Outcome::Hit, 1, format!("p{i}:x").as_bytes())
            .unwrap();
    }
    monitor.configure(r#"{"patterns": {"max": 2}}"#).unwrap();
    monitor.record(GET, Outcome::Hit, 1, b"p5:y").unwrap();
    monitor.record(GET, Outcome::Hit, 1, b"new:y").unwrap();
    let view = monitor.view();
    let counted: u64 = view.patterns.iter().map(|p| p.counts[0]).sum::<u64>() + view.other_pattern[0];
    assert_eq!(counted, 12, "every keyed record under its pattern or under other");
    assert_eq!(
        view.other_pattern[0], 2,
        "records of patterns above the cap count under other"
    );
    assert_eq!(
        view.patterns.iter().find(|p| p.pattern == "p5:*").map(|p| p.counts[0]),
        Some(1),
        "what p5 counted before the cap was lowered stays"
    );
}

/// Everything an import may change: configuration, learned patterns, counts, sampled stacks.
fn state_of(monitor: &Monitor) -> (String, Vec<String>, String, String) {
    let view = monitor.view();
    (
        monitor.config().to_json(),
        view.patterns.iter().map(|p| p.pattern.clone()).collect(),
        format!("{:?}", monitor.totals()),
        monitor.render_flamegraph_folded(),
    )
}

#[test]
fn a_refused_import_changes_nothing() {
    let source = Monitor::new();
    source
        .configure(
            r#"{"namespace": "other", "operations": ["compact"], "profiler": {"sample_every": 1, "max_stacks": 8}}"#,
        )
        .unwrap();
    source.record(GET, Outcome::Hit, 1, b"user:1").unwrap();
    let good: serde_json::Value = serde_json::from_str(&source.export_state()).unwrap();

    let monitor = Monitor::new();
    monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
    monitor.record(GET, Outcome::Miss, 1, b"mine:1").unwrap();
    let before = state_of(&monitor);
    let tampered = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut snapshot = good.clone();
        edit(&mut snapshot);
        snapshot.to_string()
    };
    let bad = [
        tampered(&|s| s["patterns"][0]["prefix"] = "zz".into()),
        // get/miss, which the importer already counted once: the sum would wrap.
        tampered(&|s| s["series"][0][1]["buckets"][0] = serde_json::json!(u64::MAX)),
        tampered(&|s| s["series"][0][0]["buckets"] = serde_json::json!([u64::MAX, 2])),
        tampered(&|s| s["config"]["buckets"] = serde_json::json!([0.5])),
        tampered(&|s| s["series"][0][0]["latency"] = serde_json::json!([[99_999, 1]])),
    ];
    for snapshot in &bad {
        assert!(monitor.import_state(snapshot.as_bytes()).is_err(), "{snapshot}");
        assert_eq!(state_of(&monitor), before, "refused: nothing changed ({snapshot})");
    }
    // A monitor with counts keeps its own configuration (and its stacks) when an import is accepted.
    monitor.import_state(good.to_string().as_bytes()).unwrap();
    let after = state_of(&monitor);
    assert_eq!(
        monitor.config().namespace,
        "cuenv_cache",
        "the importer keeps its namespace"
    );
    let samples = |folded: &str| -> u64 {
        folded
            .lines()
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(
        samples(&after.3),
        samples(&before.3) + 1,
        "its own stack stays, the source's joins it"
    );
}

#[test]
fn imports_keep_the_newest_per_source_and_never_take_credentials() {
    let source = Monitor::new();
    source.record(GET, Outcome::Hit, 1, b"").unwrap();
    let older = source.export_state();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    source.record(GET, Outcome::Hit, 1, b"").unwrap();
    let newer = source.export_state();

    let monitor = Monitor::new();
    monitor.configure(r#"{"http": {"bearer_token": "s3cret"}}"#).unwrap();
    monitor.import_state(newer.as_bytes()).unwrap();
    assert_eq!(get_hit(&monitor).count, 2);
    assert!(
        monitor.import_state(older.as_bytes()).is_err(),
        "an older export never replaces a newer"
    );
    assert_eq!(get_hit(&monitor).count, 2);
    let mut with_null_token: serde_json::Value = serde_json::from_str(&newer).unwrap();
    with_null_token["config"]["http"] = serde_json::json!({"bearer_token": null});
    monitor.import_state(with_null_token.to_string().as_bytes()).unwrap();
    assert!(
        monitor.http_config().bearer_token.is_some(),
        "a snapshot's http section is never taken"
    );
}

#[test]
fn imports_racing_for_the_last_source_leave_the_winners_state_only() {
    for round in 0..20 {
        let monitor = Monitor::new();
        for _ in 0..7 {
            let source = Monitor::new();
            source.record(GET, Outcome::Hit, 1, b"").unwrap();
            monitor.import_state(source.export_state().as_bytes()).unwrap();
        }
        let contenders: Vec<String> = ["first", "second"]
            .iter()
            .map(|namespace| {
                let source = Monitor::new();
                source.configure(&format!(r#"{{"namespace": "{namespace}"}}"#)).unwrap();
                source.record(GET, Outcome::Hit, 1, b"").unwrap();
                source.export_state()
            })
            .collect();
        let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = contenders
                .iter()
                .map(|snapshot| scope.spawn(|| monitor.import_state(snapshot.as_bytes())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: one wins"
        );
        assert_eq!(
            get_hit(&monitor).count,
            8,
            "round {round}: seven sources and the winner"
        );
        assert_eq!(
            monitor.config().namespace,
            "cuenv_cache",
            "round {round}: nobody's namespace taken"
        );
    }
}

/// `operations_total` per (operation, result).
type SeriesCounts = BTreeMap<(String, String), f64>;

/// Checks one render: it parses, every histogram's `_count` equals its `+Inf` bucket and its buckets only
/// grow; returns `operations_total` per series.
fn check_render(text: &str) -> SeriesCounts {
    let parsed = exposition::parse(text);
    let mut counts = BTreeMap::new();
    let mut buckets: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for sample in &parsed.samples {
        let key = || {
            (
                sample.labels.get("operation").cloned().unwrap_or_default(),
                sample.labels.get("result").cloned().unwrap_or_default(),
            )
        };
        if sample.name.ends_with("_operation_duration_seconds_bucket") {
            buckets.entry(key()).or_default().push(sample.value);
            if sample.labels["le"] == "+Inf" {
                counts.insert(key(), sample.value);
            }
        }
    }
    for (series, cumulative) in &buckets {
        assert!(
            cumulative.windows(2).all(|w| w[0] <= w[1]),
            "{series:?}: buckets go down: {cumulative:?}"
        );
        let count = parsed
            .value(
                "cuenv_cache_operation_duration_seconds_count",
                &[("operation", &series.0), ("result", &series.1)],
            )
            .expect("a _count per histogram");
        assert_eq!(Some(&count), counts.get(series), "{series:?}: _count is not +Inf");
    }
    parsed
        .named("cuenv_cache_operations_total")
        .map(|s| ((s.labels["operation"].clone(), s.labels["result"].clone()), s.value))
        .collect()
}

/// Sets its flag when dropped, on success and on panic alike.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn every_render_is_consistent_while_others_record_reset_and_reconfigure() {
    let monitor = Monitor::new();
    let stop = AtomicBool::new(false);
    let resets = std::sync::atomic::AtomicU64::new(0);
    let mut renders = 0u64;
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (monitor, stop) = (&monitor, &stop);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 4;
                    let outcome = if i % 3 == 0 { Outcome::Miss } else { Outcome::Hit };
                    let key = format!("k{}:{i}", i % 20);
                    monitor.record(GET, outcome, 1 + i % 5_000_000, key.as_bytes()).unwrap();
                }
            });
        }
        {
            let (monitor, stop, resets) = (&monitor, &stop, &resets);
            scope.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(3);
                while !stop.load(Ordering::Relaxed) {
                    match rng.u8(0..3) {
                        0 => {
                            // Odd while a reset runs: a render overlapping it is not compared.
                            resets.fetch_add(1, Ordering::SeqCst);
                            monitor.reset();
                            resets.fetch_add(1, Ordering::SeqCst);
                            let bounds = if rng.bool() { "[0.001]" } else { "[0.0001, 0.001, 0.01]" };
                            // Refused when a record lands in between: that is the rule, not a failure.
                            let _ = monitor.configure(&format!(r#"{{"buckets": {bounds}}}"#));
                        }
                        1 => monitor
                            .configure(&format!(r#"{{"patterns": {{"max": {}}}}}"#, rng.usize(1..64)))
                            .unwrap(),
                        _ => std::thread::yield_now(),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        }
        // A failed check below must stop the other threads too, or the scope waits for them forever.
        let _stop_on_exit = StopOnDrop(&stop);
        // The previous render's counts and the reset sequence it saw, when no reset overlapped it.
        let mut last: Option<(u64, SeriesCounts)> = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
        let mut checked_by_promtool = 0;
        while std::time::Instant::now() < deadline {
            let resets_before = resets.load(Ordering::SeqCst);
            let text = monitor.render_prometheus();
            let counts = check_render(&text);
            let quiet = resets_before.is_multiple_of(2) && resets.load(Ordering::SeqCst) == resets_before;
            if let Some((seen, previous)) = &last
                && quiet
                && *seen == resets_before
            {
                for (series, value) in &counts {
                    let before = previous.get(series).copied().unwrap_or(0.0);
                    assert!(
                        *value >= before,
                        "{series:?} went back from {before} to {value} without a reset"
                    );
                }
            }
            if renders.is_multiple_of(200) && checked_by_promtool < 5 {
                assert_promtool_accepts(&text);
                checked_by_promtool += 1;
            }
            last = quiet.then_some((resets_before, counts));
            renders += 1;
        }
    });
    assert!(renders > 100, "{renders} renders");
    assert!(resets.load(Ordering::Relaxed) > 20, "more than ten resets");
}

#[test]
fn a_record_racing_a_configuration_is_counted_once() {
    let monitor = Monitor::new();
    let stop = AtomicBool::new(false);
    let recorded = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    monitor.record(GET, Outcome::Hit, 1_000, b"user:1").unwrap();
                    mine += 1;
                }
                recorded.fetch_add(mine, Ordering::Relaxed);
            });
        }
        for round in 0..200 {
            monitor
                .configure(&format!(
                    r#"{{"namespace": "n{round}", "patterns": {{"depth": {}}}, "alerts": {{"error_rate": 0.{}}}}}"#,
                    1 + round % 3,
                    1 + round % 9
                ))
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(get_hit(&monitor).count, recorded.load(Ordering::Relaxed));
}
