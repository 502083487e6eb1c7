//! The `"state"` section: a state file that holds the monitor's counts, shared by every process that
//! attaches it, so that counts outlive the process (`{"state": {"path": "/run/user/1000/app.state"}}`,
//! or the environment variable `CACHE_MONITOR_STATE` for the process-wide monitor).

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Section, present};

/// The environment variable that attaches the process-wide monitor to a state file at its first use.
pub const STATE_ENV: &str = "CACHE_MONITOR_STATE";

/// Permission bits of a new state file unless configured otherwise: the owner only.
pub const DEFAULT_STATE_MODE: u32 = 0o600;

/// The longest path accepted, in bytes.
const MAX_PATH_BYTES: usize = 4096;

/// The state file section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// The attached state file, if any.
    pub path: Option<PathBuf>,
    /// Permission bits of a new file (its directory, if made, adds search permission where reading is
    /// allowed); an existing file may grant no more than these.
    pub mode: u32,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: None,
            mode: DEFAULT_STATE_MODE,
        }
    }
}

/// A mode as JSON gives it: a number (`384`) or an octal string (`"0600"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Mode {
    Number(u32),
    Octal(String),
}

/// The `state` keys of a configuration call.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StatePatch {
    #[serde(default, deserialize_with = "present")]
    path: Option<Option<String>>,
    mode: Option<Mode>,
}

impl Section for StateConfig {
    type Patch = StatePatch;

    fn apply(&self, patch: StatePatch) -> Result<Self, ConfigError> {
        let invalid = |why: String| Err(ConfigError::InvalidConfig(format!("state.{why}")));
        let mut next = self.clone();
        match patch.path {
            Some(Some(path)) if path.is_empty() || path.len() > MAX_PATH_BYTES || path.contains('\0') => {
                return invalid(format!(
                    "path: expected a file path of 1 to {MAX_PATH_BYTES} bytes without NUL"
                ));
            }
            Some(Some(path)) => next.path = Some(PathBuf::from(path)),
            Some(None) => next.path = None,
            None => {}
        }
        if let Some(mode) = patch.mode {
            let mode = match mode {
                Mode::Number(mode) => mode,
                Mode::Octal(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
                    Ok(mode) => mode,
                    Err(_) => return invalid(format!("mode: {text:?} is not an octal mode such as \"0600\"")),
                },
            };
            if mode & !0o666 != 0 || mode & 0o600 != 0o600 {
                return invalid(format!(
                    "mode: {mode:04o} must let the owner read and write and grant nothing beyond 0666"
                ));
            }
            next.mode = mode;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_modes_are_checked() {
        let state = StateConfig::default()
            .with_json(r#"{"path": "/run/app.state", "mode": "0640"}"#)
            .unwrap();
        assert_eq!(state.path, Some(PathBuf::from("/run/app.state")));
        assert_eq!(state.mode, 0o640);
        assert_eq!(state.with_json(r#"{"mode": 384}"#).unwrap().mode, 0o600);
        assert_eq!(state.with_json(r#"{"path": null}"#).unwrap().path, None);
        for bad in [
            r#"{"path": ""}"#,
            r#"{"path": 5}"#,
            r#"{"mode": "0700"}"#,
            r#"{"mode": "0400"}"#,
            r#"{"mode": "rw"}"#,
            r#"{"mode": 4095}"#,
            r#"{"colour": 1}"#,
        ] {
            assert!(state.with_json(bad).is_err(), "{bad}");
        }
    }
}
