//! The `"namespace"` key: the prefix of every metric name.

use super::{ConfigError, is_identifier};

/// The metric namespace used unless configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "cuenv_cache";

/// Accepts a namespace that is a metric name prefix: `[a-zA-Z_][a-zA-Z0-9_]*`, at most 128 bytes.
pub(crate) fn check(namespace: String) -> Result<String, ConfigError> {
    if namespace.len() <= 128 && is_identifier(&namespace) {
        Ok(namespace)
    } else {
        Err(ConfigError::InvalidConfig(format!(
            "namespace: {namespace:?} is not a metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes)"
        )))
    }
}
