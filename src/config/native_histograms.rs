//! The `"native_histograms"` section of the configuration: whether the protobuf exposition carries the
//! duration histogram as a Prometheus native histogram, and at which schema.
//!
//! ```json
//! {"native_histograms": {"schema": 3}}
//! {"native_histograms": false}
//! {"native_histograms": true}
//! ```
//!
//! The monitor always keeps durations at schema [`STORED_SCHEMA`] (32 buckets per power of two): they are
//! what every latency quantile comes from, on or off. A render at a coarser schema merges `2^(5-s)`
//! adjacent buckets. Prometheus also knows schemas 6 to 8, which are refused here: each would take
//! `2^(s-5)` times the latency cells of every shard and of every state file.

use super::ConfigError;

/// The schema durations are stored at.
pub const STORED_SCHEMA: u8 = 5;
/// The coarsest schema a native histogram may be rendered at: one bucket per power of two.
pub const MIN_SCHEMA: u8 = 0;
/// The finest schema a native histogram may be rendered at: the stored one.
pub const MAX_SCHEMA: u8 = STORED_SCHEMA;
/// The schema unless configured otherwise.
pub const DEFAULT_SCHEMA: u8 = STORED_SCHEMA;

/// Whether native histograms are exposed, and at which schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeHistograms {
    /// The schema rendered (`MIN_SCHEMA..=MAX_SCHEMA`); `None`: off, no native buckets in the exposition
    /// (durations are stored all the same).
    pub schema: Option<u8>,
}

impl Default for NativeHistograms {
    fn default() -> Self {
        Self {
            schema: Some(DEFAULT_SCHEMA),
        }
    }
}

impl NativeHistograms {
    /// This section with `patch` (`true`, `false` or `{"schema": N}`) applied, or why it cannot be.
    pub(crate) fn apply(&self, patch: &serde_json::Value) -> Result<Self, ConfigError> {
        let schema = match patch {
            serde_json::Value::Bool(false) => None,
            serde_json::Value::Bool(true) => Some(self.schema.unwrap_or(DEFAULT_SCHEMA)),
            serde_json::Value::Object(keys) => {
                if let Some(unknown) = keys.keys().find(|key| *key != "schema") {
                    return Err(invalid(format!("unknown key {unknown:?} (only \"schema\")")));
                }
                match keys.get("schema") {
                    None => Some(self.schema.unwrap_or(DEFAULT_SCHEMA)),
                    Some(schema) => Some(check_schema(schema)?),
                }
            }
            other => {
                return Err(invalid(format!(
                    "expected true, false or {{\"schema\": N}}, got {other}"
                )));
            }
        };
        Ok(Self { schema })
    }

    /// The section as a JSON value that [`NativeHistograms::apply`] takes.
    pub(crate) fn to_json(self) -> serde_json::Value {
        match self.schema {
            None => serde_json::Value::Bool(false),
            Some(schema) => serde_json::json!({ "schema": schema }),
        }
    }
}

fn check_schema(value: &serde_json::Value) -> Result<u8, ConfigError> {
    let Some(schema) = value.as_i64() else {
        return Err(invalid(format!("schema {value} is not an integer")));
    };
    match schema {
        0..=5 => Ok(schema as u8),
        6..=8 => Err(invalid(format!(
            "schema {schema} is finer than the schema durations are stored at ({STORED_SCHEMA}): it would take \
             {} times the latency memory of every shard and state file; use {MIN_SCHEMA} to {MAX_SCHEMA}",
            1 << (schema - i64::from(STORED_SCHEMA))
        ))),
        _ => Err(invalid(format!(
            "schema {schema} is not one of Prometheus's ({MIN_SCHEMA} to {MAX_SCHEMA} here)"
        ))),
    }
}

fn invalid(problem: String) -> ConfigError {
    ConfigError::InvalidConfig(format!("native_histograms: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(json: &str) -> Result<NativeHistograms, ConfigError> {
        NativeHistograms::default().apply(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn schemas_0_to_5_on_and_off() {
        for schema in 0..=5u8 {
            assert_eq!(
                apply(&format!(r#"{{"schema": {schema}}}"#)).unwrap().schema,
                Some(schema)
            );
        }
        assert_eq!(apply("false").unwrap().schema, None);
        assert_eq!(apply("true").unwrap().schema, Some(5));
        let off = NativeHistograms { schema: None };
        assert_eq!(off.apply(&serde_json::json!({})).unwrap().schema, Some(5));
        let three = NativeHistograms { schema: Some(3) };
        assert_eq!(three.apply(&serde_json::json!(true)).unwrap(), three);
        assert_eq!(three.apply(&three.to_json()).unwrap(), three);
        assert_eq!(off.apply(&off.to_json()).unwrap(), off);
    }

    #[test]
    fn finer_schemas_are_refused_saying_why() {
        for (json, says) in [
            (r#"{"schema": 8}"#, "8 times the latency memory"),
            (r#"{"schema": 6}"#, "2 times"),
            (r#"{"schema": -1}"#, "not one of"),
            (r#"{"schema": 9}"#, "not one of"),
            (r#"{"schema": 2.5}"#, "not an integer"),
            (r#"{"shema": 2}"#, "unknown key"),
            ("3", "expected true, false"),
        ] {
            let error = apply(json).unwrap_err().to_string();
            assert!(error.contains(says), "{json}: {error}");
        }
    }
}
