//! The `"alerts"` section: the thresholds of the alert rules (evaluated in `analysis::alerts`).
//!
//! ```json
//! {"alerts": {"p99_latency_seconds": 0.1, "hit_rate_floor": 0.5, "hit_rate_drop": 0.25,
//!             "error_rate": 0.05, "min_operations": 100}}
//! ```
//!
//! `null` turns a rule off.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Section, present};

/// Alert rules. A rule whose threshold is `None` (JSON `null`) is off.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertConfig {
    /// `p99_latency_high` fires when the last minute's p99 over all operations exceeds this many seconds.
    pub p99_latency_seconds: Option<f64>,
    /// `hit_rate_low` fires when the 5-minute hit rate is below this fraction.
    pub hit_rate_floor: Option<f64>,
    /// `hit_rate_drop` fires when the 5-minute hit rate has fallen by at least this fraction of the 1-hour
    /// hit rate (0.25: from 0.8 to below 0.6).
    pub hit_rate_drop: Option<f64>,
    /// `error_rate_high` fires when more than this fraction of the last 5 minutes' operations failed.
    pub error_rate: Option<f64>,
    /// No rule judges a window with fewer operations than this (too little data to mean anything).
    pub min_operations: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            p99_latency_seconds: Some(0.1),
            hit_rate_floor: Some(0.5),
            hit_rate_drop: Some(0.25),
            error_rate: Some(0.05),
            min_operations: 100,
        }
    }
}

/// The `alerts` keys of a configuration call; `null` turns a rule off.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    #[serde(default, deserialize_with = "present")]
    p99_latency_seconds: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    hit_rate_floor: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    hit_rate_drop: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    error_rate: Option<Option<f64>>,
    min_operations: Option<u64>,
}

impl Section for AlertConfig {
    type Patch = AlertPatch;

    fn apply(&self, patch: AlertPatch) -> Result<Self, ConfigError> {
        let invalid = |why: String| ConfigError::InvalidConfig(format!("alerts.{why}"));
        let mut next = self.clone();
        let fraction = |name: &str, value: Option<f64>| match value {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(invalid(format!("{name}: {v} is not between 0 and 1"))),
            _ => Ok(value),
        };
        if let Some(seconds) = patch.p99_latency_seconds {
            if seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                return Err(invalid(format!(
                    "p99_latency_seconds: {seconds:?} is not a positive number"
                )));
            }
            next.p99_latency_seconds = seconds;
        }
        if let Some(floor) = patch.hit_rate_floor {
            next.hit_rate_floor = fraction("hit_rate_floor", floor)?;
        }
        if let Some(drop) = patch.hit_rate_drop {
            next.hit_rate_drop = fraction("hit_rate_drop", drop)?;
        }
        if let Some(rate) = patch.error_rate {
            next.error_rate = fraction("error_rate", rate)?;
        }
        if let Some(min) = patch.min_operations {
            next.min_operations = min;
        }
        Ok(next)
    }
}
