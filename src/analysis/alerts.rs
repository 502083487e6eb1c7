//! Alerts on degrading performance: rules set through the `alerts` configuration section
//! ([`AlertConfig`], in `config::alerts`), evaluated at render time from the rolling windows and the last
//! minute's latency.

use serde::Serialize;

pub use crate::config::alerts::AlertConfig;

use crate::analysis::hit_rate::hit_rate;

/// Operations in one window, as the rules see them.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowTally {
    /// Hits over every operation.
    pub hits: u64,
    /// Misses over every operation.
    pub misses: u64,
    /// Errors over every operation.
    pub errors: u64,
    /// Every operation.
    pub total: u64,
}

impl WindowTally {
    fn hit_rate(&self) -> Option<f64> {
        hit_rate(self.hits, self.misses)
    }
}

/// What the rules are evaluated on.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertInputs {
    /// p99 over all operations in the last minute, in seconds.
    pub p99_last_minute_seconds: Option<f64>,
    /// Operations in the last minute.
    pub last_minute_operations: u64,
    /// The 5-minute window.
    pub five_minutes: WindowTally,
    /// The 1-hour window.
    pub one_hour: WindowTally,
}

/// One rule's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertState {
    /// The rule: `p99_latency_high`, `hit_rate_low`, `hit_rate_drop` or `error_rate_high`.
    pub alert: &'static str,
    /// Whether it fires.
    pub firing: bool,
    /// The value judged, when there was enough data.
    pub value: Option<f64>,
    /// The configured threshold.
    pub threshold: f64,
    /// Why it fires or not, in words.
    pub reason: String,
}

/// Evaluates every rule that is on.
pub fn evaluate(config: &AlertConfig, inputs: &AlertInputs) -> Vec<AlertState> {
    let min = config.min_operations;
    let mut states = Vec::new();
    let mut judge =
        |alert, threshold: Option<f64>, value: Option<f64>, fires: &dyn Fn(f64, f64) -> bool, what: &str| {
            let Some(threshold) = threshold else { return };
            let (firing, reason) = match value {
                None => (
                    false,
                    format!("not enough data: {what} needs at least {min} operations"),
                ),
                Some(v) if fires(v, threshold) => (true, format!("{what} is {v:.4}, beyond the threshold {threshold}")),
                Some(v) => (false, format!("{what} is {v:.4}, within the threshold {threshold}")),
            };
            states.push(AlertState {
                alert,
                firing,
                value,
                threshold,
                reason,
            });
        };

    let p99 = inputs
        .p99_last_minute_seconds
        .filter(|_| inputs.last_minute_operations >= min);
    judge(
        "p99_latency_high",
        config.p99_latency_seconds,
        p99,
        &|v, t| v > t,
        "p99 latency (s) over the last minute",
    );

    let five = &inputs.five_minutes;
    let hit_rate_5m = five.hit_rate().filter(|_| five.hits + five.misses >= min);
    judge(
        "hit_rate_low",
        config.hit_rate_floor,
        hit_rate_5m,
        &|v, t| v < t,
        "the 5m hit rate",
    );

    let hour = &inputs.one_hour;
    // The baseline must hold more than the last five minutes, or it is the same data.
    let has_baseline = hour.hits + hour.misses >= min + five.hits + five.misses;
    let drop = match (hit_rate_5m, hour.hit_rate().filter(|_| has_baseline)) {
        (Some(now), Some(baseline)) if baseline > 0.0 => Some((baseline - now) / baseline),
        _ => None,
    };
    judge(
        "hit_rate_drop",
        config.hit_rate_drop,
        drop,
        &|v, t| v >= t,
        "the fall of the 5m hit rate against 1h",
    );

    let error_rate = (five.total >= min).then(|| five.errors as f64 / five.total as f64);
    judge(
        "error_rate_high",
        config.error_rate,
        error_rate,
        &|v, t| v > t,
        "the 5m error rate",
    );
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Section;
    use crate::config::alerts::AlertPatch;

    fn firing(states: &[AlertState]) -> Vec<&'static str> {
        states.iter().filter(|s| s.firing).map(|s| s.alert).collect()
    }

    fn tally(hits: u64, misses: u64, errors: u64) -> WindowTally {
        WindowTally {
            hits,
            misses,
            errors,
            total: hits + misses + errors,
        }
    }

    #[test]
    fn healthy_traffic_fires_nothing() {
        let inputs = AlertInputs {
            p99_last_minute_seconds: Some(0.002),
            last_minute_operations: 1_000,
            five_minutes: tally(900, 100, 0),
            one_hour: tally(9_000, 1_000, 0),
        };
        let states = evaluate(&AlertConfig::default(), &inputs);
        assert_eq!(states.len(), 4);
        assert!(firing(&states).is_empty(), "{states:#?}");
    }

    #[test]
    fn each_rule_fires_on_its_own_condition() {
        let config = AlertConfig::default();
        let slow = AlertInputs {
            p99_last_minute_seconds: Some(0.5),
            last_minute_operations: 500,
            ..Default::default()
        };
        assert_eq!(firing(&evaluate(&config, &slow)), ["p99_latency_high"]);
        let cold = AlertInputs {
            five_minutes: tally(100, 400, 0),
            one_hour: tally(200, 800, 0),
            ..Default::default()
        };
        assert_eq!(firing(&evaluate(&config, &cold)), ["hit_rate_low"]);
        let dropping = AlertInputs {
            five_minutes: tally(550, 450, 0),
            one_hour: tally(9_000, 1_000, 0),
            ..Default::default()
        };
        assert_eq!(firing(&evaluate(&config, &dropping)), ["hit_rate_drop"]);
        let failing = AlertInputs {
            five_minutes: tally(900, 100, 100),
            one_hour: tally(900, 100, 100),
            ..Default::default()
        };
        assert_eq!(firing(&evaluate(&config, &failing)), ["error_rate_high"]);
    }

    #[test]
    fn too_little_data_fires_nothing() {
        let inputs = AlertInputs {
            p99_last_minute_seconds: Some(9.0),
            last_minute_operations: 3,
            five_minutes: tally(0, 3, 3),
            one_hour: tally(0, 3, 3),
        };
        assert!(firing(&evaluate(&AlertConfig::default(), &inputs)).is_empty());
    }

    #[test]
    fn null_turns_a_rule_off_and_bad_values_are_refused() {
        let patch: AlertPatch = serde_json::from_str(r#"{"p99_latency_seconds": null, "error_rate": 0.2}"#).unwrap();
        let config = AlertConfig::default().apply(patch).unwrap();
        assert_eq!(config.p99_latency_seconds, None);
        assert_eq!(config.error_rate, Some(0.2));
        assert_eq!(config.hit_rate_floor, Some(0.5), "untouched");
        let states = evaluate(&config, &AlertInputs::default());
        assert!(states.iter().all(|s| s.alert != "p99_latency_high"));
        for bad in [
            r#"{"error_rate": 1.5}"#,
            r#"{"p99_latency_seconds": 0}"#,
            r#"{"hit_rate_floor": -0.1}"#,
        ] {
            let patch: AlertPatch = serde_json::from_str(bad).unwrap();
            assert!(AlertConfig::default().apply(patch).is_err(), "{bad}");
        }
    }
}
