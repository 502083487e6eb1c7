//! The JSON reports: hit rates (windows, operations, patterns) and real-time stats (in flight, rates,
//! latencies, alerts). The structs are the schema; the README shows an example of each.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::analysis::alerts::AlertState;
use crate::analysis::hit_rate::hit_rate;
use crate::analysis::view::{LatencySummary, MetricsView};
use crate::analysis::windows::WINDOWS;
use crate::recording::latency::RELATIVE_ERROR;
use crate::recording::operation::{Gauge, OUTCOMES, Outcome};
use crate::recording::patterns::OTHER_PATTERN;
use crate::recording::wrapping_total;

/// The hit-rate report.
#[derive(Clone, Debug, Serialize)]
pub struct HitRateReport {
    /// When the report was made, in seconds since the Unix epoch.
    pub generated_at_unix_seconds: f64,
    /// Seconds of history behind the windows.
    pub history_seconds: u64,
    /// Hits and misses since the last reset, over every operation.
    pub overall: HitRate,
    /// The rolling windows, shortest first.
    pub windows: Vec<WindowHitRate>,
    /// Hit rate over the last minute (`windows[0].hit_rate`).
    pub one_minute: Option<f64>,
    /// Hit rate over the last 5 minutes.
    pub five_minutes: Option<f64>,
    /// Hit rate over the last hour.
    pub one_hour: Option<f64>,
    /// Hit rate over the last 24 hours.
    pub twenty_four_hours: Option<f64>,
    /// Per operation that has ever hit or missed.
    pub operation_types: Vec<OperationHitRate>,
    /// Per tracked key pattern, most accessed first.
    pub key_patterns: Vec<PatternHitRate>,
    /// Keys whose pattern is beyond the cap.
    pub other_patterns: PatternHitRate,
    /// Patterns tracked.
    pub patterns_tracked: usize,
    /// The cap on tracked patterns.
    pub pattern_limit: usize,
}

/// Hits, misses and their ratio.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HitRate {
    /// Lookups that hit.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// `hits / (hits + misses)`, `null` without lookups.
    pub hit_rate: Option<f64>,
}

impl HitRate {
    fn new(hits: u64, misses: u64) -> Self {
        Self {
            hits,
            misses,
            hit_rate: hit_rate(hits, misses),
        }
    }
}

/// One rolling window over every operation.
#[derive(Clone, Debug, Serialize)]
pub struct WindowHitRate {
    /// `1m`, `5m`, `1h` or `24h`.
    pub window: &'static str,
    /// The window's length.
    pub seconds: u64,
    /// Hits, misses and hit rate in the window.
    #[serde(flatten)]
    pub rate: HitRate,
    /// Every operation in the window, whatever its outcome.
    pub operations: u64,
}

/// One operation since the reset, and its hit rate per window.
#[derive(Clone, Debug, Serialize)]
pub struct OperationHitRate {
    /// The operation's label.
    pub operation: String,
    /// Hits, misses and hit rate since the reset.
    #[serde(flatten)]
    pub rate: HitRate,
    /// Every call of the operation since the reset.
    pub total_calls: u64,
    /// Hit rate per window label, `null` without lookups in the window.
    pub windows: BTreeMap<&'static str, Option<f64>>,
}

/// One key pattern since the reset.
#[derive(Clone, Debug, Serialize)]
pub struct PatternHitRate {
    /// The pattern (`user:*`), or `other`.
    pub pattern: String,
    /// Hits, misses and hit rate.
    #[serde(flatten)]
    pub rate: HitRate,
    /// Operations that failed.
    pub errors: u64,
    /// Every operation on a key of this pattern.
    pub total_accesses: u64,
}

impl PatternHitRate {
    fn new(pattern: String, counts: &[u64; OUTCOMES]) -> Self {
        Self {
            pattern,
            rate: HitRate::new(counts[Outcome::Hit.index()], counts[Outcome::Miss.index()]),
            errors: counts[Outcome::Error.index()],
            total_accesses: wrapping_total(counts),
        }
    }
}

/// The real-time stats report.
#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    /// When the report was made, in seconds since the Unix epoch.
    pub generated_at_unix_seconds: f64,
    /// Operations begun and not yet ended.
    pub operations_in_flight: u64,
    /// Operations per second over the last minute.
    pub operations_per_second: f64,
    /// Mean duration over the last minute, all operations.
    pub mean_response_time_seconds: Option<f64>,
    /// p99 duration over the last minute, all operations.
    pub p99_response_time_seconds: Option<f64>,
    /// The seconds "last minute" covers (60 to 70; fewer for a young monitor).
    pub last_minute_seconds: u64,
    /// Relative error bound of every quantile (and of the last minute's means).
    pub latency_relative_error: f64,
    /// Latency of `all` operations, then of each recorded operation.
    pub latency: Vec<OperationLatency>,
    /// Host gauges by name.
    pub gauges: BTreeMap<&'static str, u64>,
    /// Every alert rule that is on, with its verdict.
    pub alerts: Vec<AlertState>,
    /// Names of the alerts that fire.
    pub firing_alerts: Vec<&'static str>,
}

/// Latency of one operation (or `all`).
#[derive(Clone, Debug, Serialize)]
pub struct OperationLatency {
    /// The operation's label, or `all`.
    pub operation: String,
    /// Since the last reset.
    pub overall: LatencySummary,
    /// Over the last minute.
    pub last_minute: LatencySummary,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn optional(rate: f64) -> Option<f64> {
    (!rate.is_nan()).then_some(rate)
}

impl HitRateReport {
    /// The report of `view`.
    pub fn new(view: &MetricsView) -> Self {
        let (hits, misses) = view.totals.hits_and_misses();
        let windows: Vec<WindowHitRate> = WINDOWS
            .iter()
            .enumerate()
            .map(|(index, (window, seconds))| {
                let tally = view.window_tally(index, None);
                WindowHitRate {
                    window,
                    seconds: *seconds,
                    rate: HitRate::new(tally.hits, tally.misses),
                    operations: tally.total,
                }
            })
            .collect();
        let operation_types = view
            .lookup_operations()
            .map(|op| {
                let series = &view.totals.series[op.index()];
                OperationHitRate {
                    operation: view.config.operation_name(op).to_owned(),
                    rate: HitRate::new(series[Outcome::Hit.index()].count, series[Outcome::Miss.index()].count),
                    total_calls: wrapping_total(series.iter().map(|s| &s.count)),
                    windows: WINDOWS
                        .iter()
                        .enumerate()
                        .map(|(index, (window, _))| (*window, optional(view.window_hit_rate(index, Some(op)))))
                        .collect(),
                }
            })
            .collect();
        let mut key_patterns: Vec<PatternHitRate> = view
            .patterns
            .iter()
            .map(|p| PatternHitRate::new(p.pattern.clone(), &p.counts))
            .collect();
        key_patterns.sort_by(|a, b| b.total_accesses.cmp(&a.total_accesses).then(a.pattern.cmp(&b.pattern)));
        Self {
            generated_at_unix_seconds: unix_now(),
            history_seconds: view.history_secs,
            overall: HitRate::new(hits, misses),
            one_minute: windows[0].rate.hit_rate,
            five_minutes: windows[1].rate.hit_rate,
            one_hour: windows[2].rate.hit_rate,
            twenty_four_hours: windows[3].rate.hit_rate,
            windows,
            operation_types,
            key_patterns,
            other_patterns: PatternHitRate::new(OTHER_PATTERN.to_owned(), &view.other_pattern),
            patterns_tracked: view.patterns_tracked,
            pattern_limit: view.config.patterns.max,
        }
    }
}

impl StatsReport {
    /// The report of `view`.
    pub fn new(view: &MetricsView) -> Self {
        let recent = view.latency(None, true);
        let mut latency = vec![OperationLatency {
            operation: "all".to_owned(),
            overall: view.latency(None, false),
            last_minute: recent,
        }];
        latency.extend(view.recorded_operations().map(|op| OperationLatency {
            operation: view.config.operation_name(op).to_owned(),
            overall: view.latency(Some(op), false),
            last_minute: view.latency(Some(op), true),
        }));
        let alerts = view.alerts();
        Self {
            generated_at_unix_seconds: unix_now(),
            operations_in_flight: view.totals.in_flight(),
            operations_per_second: view.operations_per_second(),
            mean_response_time_seconds: recent.mean_seconds,
            p99_response_time_seconds: recent.p99_seconds,
            last_minute_seconds: view.recent_latency_secs,
            latency_relative_error: RELATIVE_ERROR,
            latency,
            gauges: Gauge::ALL.iter().map(|g| (g.name(), view.gauges[g.index()])).collect(),
            firing_alerts: alerts.iter().filter(|a| a.firing).map(|a| a.alert).collect(),
            alerts,
        }
    }
}

/// Pretty-printed JSON of a report.
pub fn to_json(report: &impl Serialize) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| unreachable!("reports hold no maps with non-string keys: {e}"))
}
