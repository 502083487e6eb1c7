//! Monitor configuration, set as a JSON object through `cache_monitor_configure` (`Monitor::configure`
//! in Rust).
//!
//! A configuration call names only the keys it changes; everything else stays as it was. The whole object
//! is checked before anything changes, so an unknown key or a bad value leaves the previous configuration
//! in force.
//!
//! One file per section ([`namespace`], [`buckets`], [`operations`], [`patterns`], [`alerts`],
//! [`profiler`], [`http`], [`state`], [`native_histograms`]); a section that takes a JSON patch implements [`Section`], and so does the
//! whole [`Config`].
//!
//! This module is the bottom layer of the crate: it imports nothing else of it (`tests/layering.rs`
//! checks). The limits the layers above size their storage by ([`MAX_OPERATIONS`], [`MAX_BUCKETS`],
//! [`MAX_PATTERNS`], [`MAX_STACKS_LIMIT`]), the ceiling of a recorded duration ([`MAX_DURATION_NS`],
//! [`clamp_duration`]) and the [`Operation`] codes are defined here, and those layers
//! import them.

pub mod alerts;
pub mod buckets;
pub mod duration;
pub mod http;
pub mod namespace;
pub mod native_histograms;
pub mod operations;
pub mod patterns;
pub mod profiler;
pub mod state;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

pub use alerts::{AlertConfig, AlertPatch};
pub use buckets::{BucketBounds, DEFAULT_BUCKETS, MAX_BUCKETS};
pub use duration::{MAX_DURATION_NS, clamp_duration};
pub use http::{
    BasicAuth, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_READ_TIMEOUT, HttpConfig, HttpPatch, Secret,
};
pub use namespace::DEFAULT_NAMESPACE;
pub use native_histograms::NativeHistograms;
pub use operations::{MAX_OPERATIONS, Operation};
pub use patterns::{MAX_PATTERNS, PatternConfig, PatternPatch};
pub use profiler::{DEFAULT_MAX_STACKS, MAX_STACKS_LIMIT, ProfilerConfig, ProfilerPatch, Weight};
pub use state::{DEFAULT_STATE_MODE, STATE_ENV, StateConfig, StatePatch};

/// Why a configuration was refused. Nothing changes when a configuration call returns an error. The
/// crate's `Error` has a variant for each, and converts from this type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not JSON, or not a JSON object.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A configuration key is unknown or its value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// A part of the configuration that a JSON patch updates: an object naming only the keys to change.
///
/// Every section of [`Config`] implements it, and so does `Config` itself, whose patch is the whole
/// object `cache_monitor_configure` takes.
pub trait Section: Clone {
    /// The keys a patch may carry, every one optional (unknown keys are refused).
    type Patch: DeserializeOwned;

    /// This section with `patch` applied, or why it cannot be; on error nothing is applied.
    fn apply(&self, patch: Self::Patch) -> Result<Self, ConfigError>;

    /// This section with the changes in `json`, a JSON object, applied, or why they cannot be: text that
    /// is not a JSON object is [`ConfigError::InvalidJson`], a key or value the section refuses
    /// [`ConfigError::InvalidConfig`].
    fn with_json(&self, json: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ConfigError::InvalidJson(e.to_string()))?;
        if !value.is_object() {
            return Err(ConfigError::InvalidJson("expected a JSON object".to_owned()));
        }
        let patch = serde_json::from_value(value).map_err(|e| ConfigError::InvalidConfig(e.to_string()))?;
        self.apply(patch)
    }
}

/// Deserialises a key that is present, possibly `null`, as `Some(value)`; with `#[serde(default)]`, an
/// absent key stays `None`. So `Option<Option<T>>` tells "set to null" (`Some(None)`: turn off, remove)
/// from "not given" (`None`: leave as it is).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A monitor's complete configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Prefix of every metric name (`<namespace>_operations_total`).
    pub namespace: String,
    /// Bounds of the duration histogram.
    pub buckets: BucketBounds,
    /// Custom operations, given codes from [`Operation::FIRST_CUSTOM`] on, in this order.
    pub operations: Vec<String>,
    /// Key-pattern analysis.
    pub patterns: PatternConfig,
    /// Alert rules.
    pub alerts: AlertConfig,
    /// The flamegraph profiler's section.
    pub profiler: ProfilerConfig,
    /// The HTTP exporter's authentication and limits (the `"http"` section).
    pub http: HttpConfig,
    /// The state file the counts live in (the `"state"` section).
    pub state: StateConfig,
    /// Whether the protobuf exposition carries native histograms, and their schema (the
    /// `"native_histograms"` section).
    pub native_histograms: NativeHistograms,
    /// Whether records count (`{"enabled": false}` switches monitoring off: a record then costs a load
    /// and a branch and counts nothing; renders keep serving what was counted).
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            buckets: BucketBounds::default(),
            operations: Vec::new(),
            patterns: PatternConfig::default(),
            alerts: AlertConfig::default(),
            profiler: ProfilerConfig::default(),
            http: HttpConfig::default(),
            state: StateConfig::default(),
            native_histograms: NativeHistograms::default(),
            enabled: true,
        }
    }
}

/// The keys a configuration call may carry; every one optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    namespace: Option<String>,
    buckets: Option<Vec<f64>>,
    operations: Option<Vec<String>>,
    patterns: Option<PatternPatch>,
    alerts: Option<AlertPatch>,
    profiler: Option<ProfilerPatch>,
    http: Option<HttpPatch>,
    state: Option<StatePatch>,
    native_histograms: Option<serde_json::Value>,
    enabled: Option<bool>,
}

impl Section for Config {
    type Patch = ConfigPatch;

    fn apply(&self, patch: ConfigPatch) -> Result<Self, ConfigError> {
        let mut next = self.clone();
        if let Some(namespace) = patch.namespace {
            next.namespace = namespace::check(namespace)?;
        }
        if let Some(buckets) = patch.buckets {
            next.buckets = BucketBounds::new(buckets).map_err(ConfigError::InvalidConfig)?;
        }
        if let Some(operations) = patch.operations {
            next.operations = operations::check(&self.operations, operations)?;
        }
        if let Some(patterns) = patch.patterns {
            next.patterns = next.patterns.apply(patterns)?;
        }
        if let Some(alerts) = patch.alerts {
            next.alerts = next.alerts.apply(alerts)?;
        }
        if let Some(profiler) = patch.profiler {
            next.profiler = next.profiler.apply(profiler)?;
        }
        if let Some(http) = patch.http {
            next.http = next.http.apply(http)?;
        }
        if let Some(state) = patch.state {
            next.state = next.state.apply(state)?;
        }
        if let Some(native) = patch.native_histograms {
            next.native_histograms = next.native_histograms.apply(&native)?;
        }
        if let Some(enabled) = patch.enabled {
            next.enabled = enabled;
        }
        Ok(next)
    }
}

impl Config {
    /// The configuration as a JSON object that [`Section::with_json`] accepts.
    ///
    /// Credentials (`http.bearer_token`, `http.basic_auth`) are left out, so the text is safe to log;
    /// applying it to another configuration keeps that configuration's credentials. So is the `state`
    /// section: a configuration travels in state snapshots, and a file belongs to the monitor that
    /// attached it, not to whoever imports its counts.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "namespace": self.namespace,
            "buckets": self.buckets.seconds(),
            "operations": self.operations,
            "patterns": self.patterns,
            "alerts": self.alerts,
            "profiler": self.profiler.to_patch(),
            "http": self.http.to_patch(),
            "native_histograms": self.native_histograms.to_json(),
            "enabled": self.enabled,
        })
        .to_string()
    }

    /// The part of the configuration that shapes what a state file holds (namespace, buckets, custom
    /// operations, pattern settings), as a JSON patch: what a file records, and what every process that
    /// attaches it shares.
    pub fn shape_json(&self) -> String {
        serde_json::json!({
            "namespace": self.namespace,
            "buckets": self.buckets.seconds(),
            "operations": self.operations,
            "patterns": self.patterns,
        })
        .to_string()
    }

    /// This configuration with the shaping part of `shape` (see [`Config::shape_json`]).
    pub fn with_shape_of(&self, shape: &Config) -> Self {
        Self {
            namespace: shape.namespace.clone(),
            buckets: shape.buckets,
            operations: shape.operations.clone(),
            patterns: shape.patterns.clone(),
            ..self.clone()
        }
    }

    /// Gives back the heap memory this configuration holds, as the library is unloaded: afterwards it
    /// holds none, and it stays usable by anything that still reads it.
    ///
    /// What changes, and why each is harmless to a thread that still reads it (at process exit, threads
    /// of the host may still render while the library's destructor runs):
    /// - `namespace` becomes empty: metric names lose their prefix (`_operations_total`), still valid;
    /// - custom `operations` lose their names: they render as `unknown` (codes stay accepted, as the
    ///   recorder, not the configuration, decides that);
    /// - `patterns.delimiters` becomes empty: only the configuration's copy, the pattern table keeps its
    ///   own;
    /// - credentials become an unmatchable bearer token when any were set, so a request can never be
    ///   served without them (the exporter refuses everything instead), and stay unset otherwise;
    /// - the state file's path is forgotten: the monitor released the file before.
    ///
    /// The buckets, alerts, profiler and the exporter's limits hold no heap memory and are kept.
    pub(crate) fn release_heap(&mut self) {
        self.namespace = String::new();
        self.operations = Vec::new();
        self.patterns.delimiters = String::new();
        self.state.path = None;
        if self.http.requires_auth() {
            self.http.bearer_token = Some(http::Secret::unmatchable());
            self.http.basic_auth = None;
        }
    }

    /// How many operation codes are accepted: the built-in ones and the custom ones.
    pub fn operation_count(&self) -> usize {
        Operation::BUILTIN.len() + self.operations.len()
    }

    /// The `operation` label value of an accepted code.
    pub fn operation_name(&self, operation: Operation) -> &str {
        match operation.builtin_name() {
            Some(name) => name,
            None => {
                let custom = operation.code().saturating_sub(Operation::FIRST_CUSTOM) as usize;
                self.operations.get(custom).map_or("unknown", String::as_str)
            }
        }
    }
}

/// Whether `name` is `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_change_only_the_keys_given() {
        let config = Config::default().with_json(r#"{"namespace": "edge"}"#).unwrap();
        assert_eq!(config.namespace, "edge");
        assert_eq!(config.buckets, BucketBounds::default());
        let config = config.with_json(r#"{"buckets": [0.001, 0.01]}"#).unwrap();
        assert_eq!(config.namespace, "edge");
        assert_eq!(config.buckets.seconds(), &[0.001, 0.01]);
    }

    #[test]
    fn errors_distinguish_syntax_from_content() {
        let config = Config::default();
        for bad_json in ["", "{", "[1]", "42", "\"x\""] {
            assert!(
                matches!(config.with_json(bad_json), Err(ConfigError::InvalidJson(_))),
                "{bad_json}"
            );
        }
        for bad in [
            r#"{"colour": "red"}"#,
            r#"{"namespace": "1abc"}"#,
            r#"{"namespace": "a-b"}"#,
            r#"{"namespace": 5}"#,
            r#"{"buckets": []}"#,
            r#"{"buckets": [2, 1]}"#,
            r#"{"operations": ["get"]}"#,
            r#"{"operations": ["Compact"]}"#,
            r#"{"operations": ["a", "a"]}"#,
            r#"{"operations": ["a","b","c","d","e","f","g","h","i","j"]}"#,
            r#"{"patterns": {"max": 0}}"#,
            r#"{"patterns": {"colour": 1}}"#,
            r#"{"alerts": {"hit_rate_floor": 2}}"#,
        ] {
            assert!(
                matches!(config.with_json(bad), Err(ConfigError::InvalidConfig(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn custom_operations_append_only() {
        let config = Config::default().with_json(r#"{"operations": ["compact"]}"#).unwrap();
        assert_eq!(config.operation_count(), 8);
        assert_eq!(config.operation_name(Operation::from_code(7)), "compact");
        assert_eq!(config.operation_name(Operation::GET), "get");
        let grown = config.with_json(r#"{"operations": ["compact", "refresh"]}"#).unwrap();
        assert_eq!(grown.operation_name(Operation::from_code(8)), "refresh");
        assert!(grown.with_json(r#"{"operations": ["refresh"]}"#).is_err());
    }

    #[test]
    fn json_round_trips() {
        let config = Config::default()
            .with_json(
                r#"{"namespace": "x", "buckets": [1.5], "operations": ["warm"],
                    "patterns": {"depth": 2, "max": 8}, "alerts": {"error_rate": null}}"#,
            )
            .unwrap();
        assert_eq!(config.patterns.depth, 2);
        assert_eq!(config.alerts.error_rate, None);
        assert_eq!(Config::default().with_json(&config.to_json()).unwrap(), config);
    }

    #[test]
    fn to_json_leaves_credentials_out() {
        let config = Config::default()
            .with_json(r#"{"http": {"bearer_token": "t0ken", "basic_auth": {"user": "u", "password": "pa55"}}}"#)
            .unwrap();
        let json = config.to_json();
        assert!(!json.contains("t0ken") && !json.contains("pa55"), "{json}");
        let reapplied = config.with_json(&json).unwrap();
        assert_eq!(reapplied, config, "re-applying a dump keeps the credentials in force");
    }

    #[test]
    fn a_released_configuration_holds_no_heap_and_refuses_every_credential() {
        let mut config = Config::default()
            .with_json(
                r#"{"namespace": "x", "buckets": [0.5, 2], "operations": ["warm"],
                    "http": {"basic_auth": {"user": "u", "password": "p"}}}"#,
            )
            .unwrap();
        config.release_heap();
        assert_eq!((config.namespace.capacity(), config.operations.capacity()), (0, 0));
        assert_eq!(config.patterns.delimiters.capacity(), 0);
        assert_eq!(config.buckets.seconds(), &[0.5, 2.0], "buckets are kept");
        assert_eq!(
            config.operation_name(Operation::from_code(Operation::FIRST_CUSTOM)),
            "unknown"
        );
        let token = config.http.bearer_token.as_ref().expect("credentials stay required");
        assert_eq!((token.expose().len(), config.http.basic_auth.is_none()), (0, true));

        let mut open = Config::default();
        open.release_heap();
        assert!(!open.http.requires_auth(), "no credentials before, none after");
    }

    #[test]
    fn a_bad_http_section_changes_nothing() {
        let config = Config::default().with_json(r#"{"namespace": "kept"}"#).unwrap();
        for bad in [
            r#"{"namespace": "changed", "http": {"max_connections": 0}}"#,
            r#"{"http": {"colour": "red"}}"#,
            r#"{"http": []}"#,
        ] {
            assert!(
                matches!(config.with_json(bad), Err(ConfigError::InvalidConfig(_))),
                "{bad}"
            );
        }
        assert_eq!(config.namespace, "kept");
    }
}
