//! The `"profiler"` section of the configuration: how often to sample, how many stacks to keep, and how
//! the flamegraph is weighted.
//!
//! ```json
//! {"profiler": {"sample_every": 100, "max_stacks": 1024, "weight": "samples"}}
//! ```

use serde::{Deserialize, Serialize};

use super::{ConfigError, Section};

/// Distinct stacks kept unless configured otherwise.
pub const DEFAULT_MAX_STACKS: usize = 1024;

/// The most distinct stacks a profiler can be configured to keep (`max_stacks`).
pub const MAX_STACKS_LIMIT: usize = 16_384;

/// What a flamegraph's widths measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weight {
    /// Samples taken: where operations are issued from.
    #[default]
    Samples,
    /// Total duration of the sampled operations, in microseconds: where time in the cache goes.
    Time,
}

/// The profiler's configuration, the `"profiler"` object of `cache_monitor_configure`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfilerConfig {
    /// Sample one record in this many on each thread; 0 (the default) turns sampling off.
    pub sample_every: u32,
    /// Distinct stacks kept, `1..=MAX_STACKS_LIMIT`; samples of further stacks are counted as overflow.
    pub max_stacks: usize,
    /// What flamegraph widths measure.
    pub weight: Weight,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        Self {
            sample_every: 0,
            max_stacks: DEFAULT_MAX_STACKS,
            weight: Weight::Samples,
        }
    }
}

/// The keys a `"profiler"` object may carry, every one optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilerPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_every: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_stacks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<Weight>,
}

impl Section for ProfilerConfig {
    type Patch = ProfilerPatch;

    fn apply(&self, patch: ProfilerPatch) -> Result<Self, ConfigError> {
        let mut next = self.clone();
        if let Some(sample_every) = patch.sample_every {
            next.sample_every = sample_every;
        }
        if let Some(max_stacks) = patch.max_stacks {
            if !(1..=MAX_STACKS_LIMIT).contains(&max_stacks) {
                return Err(ConfigError::InvalidConfig(format!(
                    "profiler.max_stacks: {max_stacks} is not in 1..={MAX_STACKS_LIMIT}"
                )));
            }
            next.max_stacks = max_stacks;
        }
        if let Some(weight) = patch.weight {
            next.weight = weight;
        }
        Ok(next)
    }
}

impl ProfilerConfig {
    /// Every key, for `Config::to_json`.
    pub(crate) fn to_patch(&self) -> ProfilerPatch {
        ProfilerPatch {
            sample_every: Some(self.sample_every),
            max_stacks: Some(self.max_stacks),
            weight: Some(self.weight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn profiler_keys_patch_only_what_they_name() {
        let config = Config::default();
        assert_eq!(config.profiler, ProfilerConfig::default());
        let on = config.with_json(r#"{"profiler": {"sample_every": 100}}"#).unwrap();
        assert_eq!(on.profiler.sample_every, 100);
        assert_eq!(on.profiler.max_stacks, DEFAULT_MAX_STACKS);
        let sized = on
            .with_json(r#"{"profiler": {"max_stacks": 16384, "weight": "time"}}"#)
            .unwrap();
        assert_eq!(
            sized.profiler,
            ProfilerConfig {
                sample_every: 100,
                max_stacks: 16_384,
                weight: Weight::Time
            }
        );
        assert_eq!(sized.with_json(r#"{"profiler": {}}"#).unwrap(), sized);
        let off = sized.with_json(r#"{"profiler": {"sample_every": 0}}"#).unwrap();
        assert_eq!(off.profiler.sample_every, 0);
        assert_eq!(off.profiler.weight, Weight::Time);
    }

    #[test]
    fn bad_profiler_values_are_refused() {
        let config = Config::default();
        for bad in [
            r#"{"profiler": {"max_stacks": 0}}"#,
            r#"{"profiler": {"max_stacks": 16385}}"#,
            r#"{"profiler": {"sample_every": -1}}"#,
            r#"{"profiler": {"sample_every": 1.5}}"#,
            r#"{"profiler": {"sample_every": 4294967296}}"#,
            r#"{"profiler": {"weight": "bytes"}}"#,
            r#"{"profiler": {"rate": 100}}"#,
            r#"{"profiler": 100}"#,
        ] {
            assert!(
                matches!(config.with_json(bad), Err(ConfigError::InvalidConfig(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn profiler_section_round_trips_through_json() {
        let config = Config::default()
            .with_json(r#"{"profiler": {"sample_every": 7, "max_stacks": 64, "weight": "time"}}"#)
            .unwrap();
        let json = config.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["profiler"],
            serde_json::json!({"sample_every": 7, "max_stacks": 64, "weight": "time"}),
            "{json}"
        );
        assert_eq!(Config::default().with_json(&json).unwrap(), config);
    }
}
