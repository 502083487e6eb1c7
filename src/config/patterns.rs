//! The `"patterns"` section: how keys are reduced to patterns, and how many patterns are kept.
//!
//! ```json
//! {"patterns": {"enabled": true, "delimiters": ":/", "depth": 1, "max": 64}}
//! ```

use serde::{Deserialize, Serialize};

use super::{ConfigError, Section};

/// The most distinct patterns a monitor can be configured to keep.
pub const MAX_PATTERNS: usize = 1024;

/// Pattern settings, the `patterns` configuration section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PatternConfig {
    /// Whether keys are reduced to patterns and counted.
    pub enabled: bool,
    /// Bytes that end a pattern segment (ASCII, at most 8).
    pub delimiters: String,
    /// How many segments a pattern keeps (1 to 8).
    pub depth: u8,
    /// The most distinct patterns (1 to [`MAX_PATTERNS`]); others count under `other`.
    pub max: usize,
}

impl Default for PatternConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            delimiters: ":/".to_owned(),
            depth: 1,
            max: 64,
        }
    }
}

/// The `patterns` keys of a configuration call.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PatternPatch {
    enabled: Option<bool>,
    delimiters: Option<String>,
    depth: Option<u8>,
    max: Option<usize>,
}

impl Section for PatternConfig {
    type Patch = PatternPatch;

    fn apply(&self, patch: PatternPatch) -> Result<Self, ConfigError> {
        let invalid = |why: String| Err(ConfigError::InvalidConfig(format!("patterns.{why}")));
        let mut next = self.clone();
        if let Some(enabled) = patch.enabled {
            next.enabled = enabled;
        }
        if let Some(delimiters) = patch.delimiters {
            if delimiters.is_empty() || delimiters.len() > 8 || !delimiters.is_ascii() {
                return invalid(format!("delimiters: {delimiters:?} must be 1 to 8 ASCII characters"));
            }
            next.delimiters = delimiters;
        }
        if let Some(depth) = patch.depth {
            if !(1..=8).contains(&depth) {
                return invalid(format!("depth: {depth} is not between 1 and 8"));
            }
            next.depth = depth;
        }
        if let Some(max) = patch.max {
            if !(1..=MAX_PATTERNS).contains(&max) {
                return invalid(format!("max: {max} is not between 1 and {MAX_PATTERNS}"));
            }
            next.max = max;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused() {
        let base = PatternConfig::default();
        let bad = [
            PatternPatch {
                delimiters: Some(String::new()),
                ..Default::default()
            },
            PatternPatch {
                delimiters: Some("é".into()),
                ..Default::default()
            },
            PatternPatch {
                depth: Some(0),
                ..Default::default()
            },
            PatternPatch {
                max: Some(0),
                ..Default::default()
            },
            PatternPatch {
                max: Some(MAX_PATTERNS + 1),
                ..Default::default()
            },
        ];
        for patch in bad {
            assert!(base.apply(patch).is_err());
        }
    }
}
