//! Rolling windows, last-minute latency and alerts, driven by a manual clock: every window is rolled
//! past its edge and the exact hit rates before and after are checked. Nothing sleeps.

mod support;

use cache_monitor::{Clock, ManualClock, Monitor, Operation, Outcome};
use support::exposition;

/// A multiple of 300 s, so every ring's periods start on it.
const T0: u64 = 1_000_200;

fn monitor_at(start: u64) -> (Monitor, ManualClock) {
    let clock = ManualClock::starting_at(start);
    (Monitor::with_clock(Clock::Manual(clock.clone())), clock)
}

fn record(monitor: &Monitor, operation: Operation, outcome: Outcome, times: usize, duration_ns: u64) {
    for i in 0..times {
        let key = format!("user:{i}");
        monitor
            .record(operation, outcome, duration_ns, key.as_bytes())
            .expect("built-in operation");
    }
}

/// The hit rate of `window` for `operation` ("all" or a name) from the exposition, NaN when empty.
fn exposed_hit_rate(monitor: &Monitor, window: &str, operation: &str) -> f64 {
    let text = monitor.render_prometheus();
    exposition::parse(&text)
        .value("cuenv_cache_hit_rate", &[("window", window), ("operation", operation)])
        .unwrap_or_else(|| panic!("no hit rate for {window}/{operation}"))
}

fn assert_rate(actual: f64, expected: Option<f64>, what: &str) {
    match expected {
        Some(expected) => assert!((actual - expected).abs() < 1e-12, "{what}: {actual} != {expected}"),
        None => assert!(actual.is_nan(), "{what}: {actual} should be NaN (no lookups)"),
    }
}

/// Two batches: at T0, 30 get hits and 10 get misses; at T0+30, 10 get misses and 5 contains hits.
fn two_batches() -> (Monitor, ManualClock) {
    let (monitor, clock) = monitor_at(T0);
    record(&monitor, Operation::GET, Outcome::Hit, 30, 1_000);
    record(&monitor, Operation::GET, Outcome::Miss, 10, 1_000);
    clock.set(T0 + 30);
    record(&monitor, Operation::GET, Outcome::Miss, 10, 1_000);
    record(&monitor, Operation::CONTAINS, Outcome::Hit, 5, 1_000);
    (monitor, clock)
}

const BOTH_GET: Option<f64> = Some(30.0 / 50.0);
const BOTH_ALL: Option<f64> = Some(35.0 / 55.0);
const SECOND_GET: Option<f64> = Some(0.0);
const SECOND_ALL: Option<f64> = Some(5.0 / 15.0);

/// For `window`: at `keeps_both` both batches count, at `keeps_second` only the second, at `empty` none.
fn check_roll(window: &str, keeps_both: u64, keeps_second: Option<u64>, empty: u64) {
    let (monitor, clock) = two_batches();
    clock.set(T0 + keeps_both);
    assert_rate(
        exposed_hit_rate(&monitor, window, "get"),
        BOTH_GET,
        &format!("{window} get at +{keeps_both}"),
    );
    assert_rate(
        exposed_hit_rate(&monitor, window, "all"),
        BOTH_ALL,
        &format!("{window} all at +{keeps_both}"),
    );
    assert_rate(
        exposed_hit_rate(&monitor, window, "contains"),
        Some(1.0),
        &format!("{window} contains"),
    );
    if let Some(keeps_second) = keeps_second {
        clock.set(T0 + keeps_second);
        let when = format!("{window} at +{keeps_second}");
        assert_rate(exposed_hit_rate(&monitor, window, "get"), SECOND_GET, &when);
        assert_rate(exposed_hit_rate(&monitor, window, "all"), SECOND_ALL, &when);
    }
    clock.set(T0 + empty);
    assert_rate(
        exposed_hit_rate(&monitor, window, "all"),
        None,
        &format!("{window} at +{empty}"),
    );
    // Cumulative counts never roll.
    let totals = monitor.totals();
    assert_eq!(
        totals.series[Operation::GET.code() as usize][Outcome::Hit as usize].count,
        30
    );
}

#[test]
fn one_minute_window_rolls_at_one_second_resolution() {
    check_roll("1m", 59, Some(60), 90);
}

#[test]
fn five_minute_window_rolls_at_one_second_resolution() {
    check_roll("5m", 299, Some(300), 330);
}

#[test]
fn one_hour_window_rolls_at_ten_second_resolution() {
    check_roll("1h", 3_599, Some(3_600), 3_640);
}

#[test]
fn day_window_rolls_at_five_minute_resolution() {
    // Both batches share one 5-minute period, so they leave the day window together.
    check_roll("24h", 86_399, None, 86_400);
}

#[test]
fn windows_are_rolling_not_tumbling() {
    let (monitor, clock) = monitor_at(T0);
    // One hit per second for two minutes: the 1m window always holds the latest 60.
    for second in 0..120 {
        clock.set(T0 + second);
        record(
            &monitor,
            Operation::GET,
            if second % 2 == 0 { Outcome::Hit } else { Outcome::Miss },
            1,
            10,
        );
        if second >= 59 {
            let report = monitor.hit_rate_report();
            assert_eq!(report.windows[0].operations, 60, "at +{second}");
            assert_eq!(report.windows[0].rate.hits, 30);
        }
    }
}

#[test]
fn reset_hides_earlier_records_from_every_window() {
    let (monitor, clock) = two_batches();
    monitor.reset();
    clock.set(T0 + 40);
    record(&monitor, Operation::GET, Outcome::Hit, 3, 10);
    let report = monitor.hit_rate_report();
    for window in &report.windows {
        assert_eq!((window.rate.hits, window.rate.misses), (3, 0), "{}", window.window);
    }
}

#[test]
fn json_report_matches_the_exposition() {
    let (monitor, clock) = two_batches();
    clock.set(T0 + 60);
    let json: serde_json::Value = serde_json::from_str(&monitor.render_hit_rate_json()).expect("valid JSON");
    assert_eq!(json["one_minute"], serde_json::json!(SECOND_ALL.unwrap()));
    assert_eq!(json["five_minutes"], serde_json::json!(BOTH_ALL.unwrap()));
    assert_eq!(json["windows"][0]["window"], "1m");
    assert_eq!(json["windows"][0]["operations"], 15);
    let get = json["operation_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "get")
        .unwrap();
    assert_eq!(get["total_calls"], 50);
    assert_eq!(get["windows"]["1m"], serde_json::json!(0.0));
    let user = &json["key_patterns"][0];
    assert_eq!(
        (user["pattern"].as_str(), user["total_accesses"].as_u64()),
        (Some("user:*"), Some(55))
    );
    clock.set(T0 + 90);
    let json: serde_json::Value = serde_json::from_str(&monitor.render_hit_rate_json()).unwrap();
    assert!(
        json["one_minute"].is_null(),
        "no lookups in the last minute: null, not NaN"
    );
}

#[test]
fn last_minute_latency_rolls_while_overall_keeps_everything() {
    let (monitor, clock) = monitor_at(T0);
    record(&monitor, Operation::GET, Outcome::Hit, 100, 50_000_000); // 50 ms
    clock.set(T0 + 30);
    record(&monitor, Operation::GET, Outcome::Hit, 100, 1_000_000); // 1 ms
    let stats = monitor.stats_report();
    let p99 = stats.p99_response_time_seconds.expect("operations in the last minute");
    assert!((p99 - 0.05).abs() / 0.05 < 0.016, "slow batch is recent: p99 {p99}");
    clock.set(T0 + 75);
    let stats = monitor.stats_report();
    let recent = stats.p99_response_time_seconds.expect("fast batch still recent");
    assert!(
        (recent - 0.001).abs() / 0.001 < 0.016,
        "slow batch left the last minute: p99 {recent}"
    );
    assert_eq!(stats.latency[0].last_minute.count, 100);
    let overall = stats.latency[0].overall.p99_seconds.unwrap();
    assert!(
        (overall - 0.05).abs() / 0.05 < 0.016,
        "overall keeps the slow batch: {overall}"
    );
    assert_eq!(stats.latency[0].overall.count, 200);
    assert!(
        (60..=70).contains(&stats.last_minute_seconds),
        "{}",
        stats.last_minute_seconds
    );
    clock.set(T0 + 200);
    let stats = monitor.stats_report();
    assert_eq!(stats.latency[0].last_minute.count, 0);
    assert_eq!(stats.p99_response_time_seconds, None);
}

#[test]
fn operations_per_second_uses_the_last_minute() {
    let (monitor, clock) = monitor_at(T0);
    for second in 0..120 {
        clock.set(T0 + second);
        record(&monitor, Operation::PUT, Outcome::Ok, 5, 10);
    }
    assert_eq!(monitor.stats_report().operations_per_second, 5.0);
    clock.set(T0 + 150);
    // The window is (T0+90, T0+150]: records of seconds 91..=119 remain.
    assert_eq!(monitor.stats_report().operations_per_second, 145.0 / 60.0);
}

/// One minute of traffic: `hits` hits, `misses` misses, `errors` failed gets, all of `duration_ns`.
fn minute(monitor: &Monitor, clock: &ManualClock, hits: usize, misses: usize, errors: usize, duration_ns: u64) {
    for _ in 0..6 {
        clock.advance(10);
        record(monitor, Operation::GET, Outcome::Hit, hits / 6, duration_ns);
        record(monitor, Operation::GET, Outcome::Miss, misses / 6, duration_ns);
        record(monitor, Operation::GET, Outcome::Error, errors / 6, duration_ns);
    }
}

fn firing(monitor: &Monitor) -> Vec<String> {
    let stats = monitor.stats_report();
    let exposed = exposition::parse(&monitor.render_prometheus());
    for alert in &stats.alerts {
        let value = exposed
            .value("cuenv_cache_alert", &[("alert", alert.alert)])
            .expect("every rule exposed");
        assert_eq!(
            value == 1.0,
            alert.firing,
            "{} disagrees between JSON and exposition",
            alert.alert
        );
    }
    stats.firing_alerts.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_alert_fires_and_clears() {
    let (monitor, clock) = monitor_at(T0);
    for _ in 0..55 {
        minute(&monitor, &clock, 600, 60, 0, 1_000_000);
    }
    assert!(firing(&monitor).is_empty(), "a healthy hour: {:?}", firing(&monitor));

    for _ in 0..5 {
        minute(&monitor, &clock, 120, 360, 0, 1_000_000);
    }
    assert_eq!(firing(&monitor), ["hit_rate_low", "hit_rate_drop"]);
    for _ in 0..6 {
        minute(&monitor, &clock, 600, 60, 0, 1_000_000);
    }
    assert!(
        firing(&monitor).is_empty(),
        "hit rate recovered: {:?}",
        firing(&monitor)
    );

    for _ in 0..5 {
        minute(&monitor, &clock, 600, 60, 120, 1_000_000);
    }
    assert_eq!(firing(&monitor), ["error_rate_high"]);
    for _ in 0..6 {
        minute(&monitor, &clock, 600, 60, 0, 1_000_000);
    }
    assert!(firing(&monitor).is_empty(), "errors stopped: {:?}", firing(&monitor));

    minute(&monitor, &clock, 600, 60, 0, 250_000_000);
    assert_eq!(firing(&monitor), ["p99_latency_high"]);
    minute(&monitor, &clock, 600, 60, 0, 1_000_000);
    minute(&monitor, &clock, 600, 60, 0, 1_000_000);
    assert!(firing(&monitor).is_empty(), "latency recovered: {:?}", firing(&monitor));

    let stats = monitor.stats_report();
    assert!(stats.alerts.iter().all(|a| !a.reason.is_empty()));
}

#[test]
fn alert_rules_are_configurable() {
    let (monitor, clock) = monitor_at(T0);
    monitor
        .configure(r#"{"alerts": {"p99_latency_seconds": 0.0005, "min_operations": 10}}"#)
        .unwrap();
    minute(&monitor, &clock, 60, 0, 0, 1_000_000);
    assert_eq!(firing(&monitor), ["p99_latency_high"]);
    monitor
        .configure(r#"{"alerts": {"p99_latency_seconds": null}}"#)
        .unwrap();
    assert!(firing(&monitor).is_empty());
    assert!(
        monitor
            .stats_report()
            .alerts
            .iter()
            .all(|a| a.alert != "p99_latency_high")
    );
}
