//! Monitor configuration, set as a JSON object through `cache_monitor_configure`.
//!
//! A configuration call names only the keys it changes; everything else stays as it was. The whole object
//! is checked before anything changes, so an unknown key or a bad value leaves the previous configuration
//! in force.

use serde::Deserialize;

use crate::analysis::alerts::{AlertConfig, AlertPatch};
use crate::analysis::patterns::{PatternConfig, PatternPatch};
use crate::error::Error;
use crate::exporter::{HttpConfig, HttpPatch};
use crate::profiler::{ProfilerConfig, ProfilerPatch};
use crate::recording::buckets::BucketBounds;
use crate::recording::operation::{MAX_OPERATIONS, Operation};

/// The metric namespace used unless configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "cuenv_cache";

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
        }
    }
}

/// The keys a configuration call may carry; every one optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Patch {
    namespace: Option<String>,
    buckets: Option<Vec<f64>>,
    operations: Option<Vec<String>>,
    patterns: Option<PatternPatch>,
    alerts: Option<AlertPatch>,
    profiler: Option<ProfilerPatch>,
    http: Option<HttpPatch>,
}

impl Config {
    /// This configuration with the changes in `json` applied, or why they cannot be.
    pub fn with_json(&self, json: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::InvalidJson(e.to_string()))?;
        if !value.is_object() {
            return Err(Error::InvalidJson("expected a JSON object".to_owned()));
        }
        let patch: Patch = serde_json::from_value(value).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let mut next = self.clone();
        if let Some(namespace) = patch.namespace {
            next.namespace = check_namespace(namespace)?;
        }
        if let Some(buckets) = patch.buckets {
            next.buckets = BucketBounds::new(buckets).map_err(Error::InvalidConfig)?;
        }
        if let Some(operations) = patch.operations {
            next.operations = check_operations(&self.operations, operations)?;
        }
        if let Some(patterns) = patch.patterns {
            next.patterns = next.patterns.apply(patterns).map_err(Error::InvalidConfig)?;
        }
        if let Some(alerts) = patch.alerts {
            next.alerts = next.alerts.apply(alerts).map_err(Error::InvalidConfig)?;
        }
        if let Some(profiler) = patch.profiler {
            next.profiler = next.profiler.with_patch(profiler)?;
        }
        if let Some(http) = patch.http {
            next.http = next.http.apply(http)?;
        }
        Ok(next)
    }

    /// The configuration as a JSON object that [`Config::with_json`] accepts.
    ///
    /// Credentials (`http.bearer_token`, `http.basic_auth`) are left out, so the text is safe to log;
    /// applying it to another configuration keeps that configuration's credentials.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "namespace": self.namespace,
            "buckets": self.buckets.seconds(),
            "operations": self.operations,
            "patterns": self.patterns,
            "alerts": self.alerts,
            "profiler": self.profiler.to_patch(),
            "http": self.http.to_patch(),
        })
        .to_string()
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

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_namespace(namespace: String) -> Result<String, Error> {
    if namespace.len() <= 128 && is_identifier(&namespace) {
        Ok(namespace)
    } else {
        Err(Error::InvalidConfig(format!(
            "namespace: {namespace:?} is not a metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes)"
        )))
    }
}

/// Custom operations can only be appended: a registered name keeps its code for the life of the monitor,
/// so recorded counts never change label.
fn check_operations(current: &[String], wanted: Vec<String>) -> Result<Vec<String>, Error> {
    let room = MAX_OPERATIONS - Operation::BUILTIN.len();
    let invalid = |why: String| Err(Error::InvalidConfig(format!("operations: {why}")));
    if wanted.len() > room {
        return invalid(format!("at most {room} custom operations"));
    }
    if !wanted.starts_with(current) {
        return invalid(format!("registered operations {current:?} must stay first, in order"));
    }
    for (i, name) in wanted.iter().enumerate() {
        let lower = name.bytes().all(|b| !b.is_ascii_uppercase());
        if name.len() > 64 || !lower || !is_identifier(name) {
            return invalid(format!("{name:?} is not a lower-case identifier of at most 64 bytes"));
        }
        let builtin = Operation::BUILTIN
            .iter()
            .any(|op| op.builtin_name() == Some(name.as_str()));
        if builtin || wanted[..i].contains(name) {
            return invalid(format!("{name:?} is already an operation"));
        }
    }
    Ok(wanted)
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
                matches!(config.with_json(bad_json), Err(Error::InvalidJson(_))),
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
                matches!(config.with_json(bad), Err(Error::InvalidConfig(_))),
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
    fn a_bad_http_section_changes_nothing() {
        let config = Config::default().with_json(r#"{"namespace": "kept"}"#).unwrap();
        for bad in [
            r#"{"namespace": "changed", "http": {"max_connections": 0}}"#,
            r#"{"http": {"colour": "red"}}"#,
            r#"{"http": []}"#,
        ] {
            assert!(matches!(config.with_json(bad), Err(Error::InvalidConfig(_))), "{bad}");
        }
        assert_eq!(config.namespace, "kept");
    }
}
