//! The `"http"` section of the configuration: authentication and limits of the HTTP exporter.
//!
//! ```json
//! {"http": {"bearer_token": "s3cret", "basic_auth": {"user": "prom", "password": "pw"},
//!           "max_connections": 64, "read_timeout_ms": 5000, "max_request_bytes": 8192}}
//! ```
//!
//! Like the rest of the configuration, a section names only the keys it changes. `null` removes a
//! credential (`{"http": {"bearer_token": null}}`). Credentials are write-only: [`HttpConfig`]'s `Debug`
//! prints them redacted and `Config::to_json` leaves them out, so a configuration dump can be logged.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Section, present};

/// Connections served at once unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request's headers (or stay idle between requests), unless
/// configured otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head (request line plus headers) accepted unless configured otherwise.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8192;

/// Accepted range of `max_connections`.
const MAX_CONNECTIONS_RANGE: (u64, u64) = (1, 1024);
/// Accepted range of `read_timeout_ms`.
const READ_TIMEOUT_MS_RANGE: (u64, u64) = (10, 600_000);
/// Accepted range of `max_request_bytes`.
const MAX_REQUEST_BYTES_RANGE: (u64, u64) = (1024, 1 << 20);

/// A credential: compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text, for the code that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret no request can present: the empty one (configured tokens are never empty, and the
    /// exporter refuses an empty secret whatever the request sends). It holds no heap memory.
    pub(crate) const fn unmatchable() -> Self {
        Self(String::new())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// HTTP basic authentication credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name (no `:`).
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// Settings of the HTTP exporter. With neither credential set, every request is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Requests carrying `Authorization: Bearer <token>` are served.
    pub bearer_token: Option<Secret>,
    /// Requests carrying matching `Authorization: Basic ...` credentials are served.
    pub basic_auth: Option<BasicAuth>,
    /// Connections served at once; at the cap a new connection replaces the one quiet the longest.
    /// Read when serving starts.
    pub max_connections: usize,
    /// Time allowed to send a request's headers, and to stay idle between keep-alive requests.
    pub read_timeout: Duration,
    /// The largest request head (request line and headers), in bytes; larger ones get a 431.
    pub max_request_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bearer_token: None,
            basic_auth: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// The keys an `"http"` section may carry, every one optional.
///
/// Credentials are `Option<Option<_>>`: absent leaves them as they are, `null` removes them. They are
/// never serialised.
#[derive(Deserialize, Serialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct HttpPatch {
    #[serde(default, deserialize_with = "present", skip_serializing)]
    bearer_token: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing)]
    basic_auth: Option<Option<BasicAuthPatch>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_request_bytes: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct BasicAuthPatch {
    user: String,
    password: String,
}

impl Section for HttpConfig {
    type Patch = HttpPatch;

    fn apply(&self, patch: HttpPatch) -> Result<Self, ConfigError> {
        let mut next = self.clone();
        if let Some(token) = patch.bearer_token {
            next.bearer_token = token.map(check_token).transpose()?;
        }
        if let Some(basic) = patch.basic_auth {
            next.basic_auth = basic.map(check_basic_auth).transpose()?;
        }
        if let Some(n) = patch.max_connections {
            next.max_connections = in_range("max_connections", n, MAX_CONNECTIONS_RANGE)? as usize;
        }
        if let Some(ms) = patch.read_timeout_ms {
            next.read_timeout = Duration::from_millis(in_range("read_timeout_ms", ms, READ_TIMEOUT_MS_RANGE)?);
        }
        if let Some(n) = patch.max_request_bytes {
            next.max_request_bytes = in_range("max_request_bytes", n, MAX_REQUEST_BYTES_RANGE)? as usize;
        }
        Ok(next)
    }
}

impl HttpConfig {
    /// The section as a patch that [`Section::apply`] accepts, without the credentials.
    pub fn to_patch(&self) -> HttpPatch {
        HttpPatch {
            bearer_token: None,
            basic_auth: None,
            max_connections: Some(self.max_connections as u64),
            read_timeout_ms: Some(u64::try_from(self.read_timeout.as_millis()).unwrap_or(u64::MAX)),
            max_request_bytes: Some(self.max_request_bytes as u64),
        }
    }

    /// Whether any credential is set, so requests must authenticate.
    pub fn requires_auth(&self) -> bool {
        self.bearer_token.is_some() || self.basic_auth.is_some()
    }
}

fn invalid(why: String) -> ConfigError {
    ConfigError::InvalidConfig(format!("http.{why}"))
}

fn in_range(key: &str, value: u64, (low, high): (u64, u64)) -> Result<u64, ConfigError> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(format!("{key}: {value} is not in {low}..={high}")))
    }
}

/// A bearer token is an RFC 6750 `b64token`: letters, digits, `-._~+/`, then optional `=` padding.
fn check_token(token: String) -> Result<Secret, ConfigError> {
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && token.len() <= 4096
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if valid {
        Ok(Secret(token))
    } else {
        // The message must not echo the token.
        Err(invalid(
            "bearer_token: expected 1 to 4096 characters of [A-Za-z0-9-._~+/] then optional '='".to_owned(),
        ))
    }
}

fn check_basic_auth(basic: BasicAuthPatch) -> Result<BasicAuth, ConfigError> {
    let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
    if !printable(&basic.user) || basic.user.len() > 256 || basic.user.contains(':') {
        return Err(invalid(
            "basic_auth.user: expected 1 to 256 bytes, no ':' or control characters".to_owned(),
        ));
    }
    if !printable(&basic.password) || basic.password.len() > 1024 {
        return Err(invalid(
            "basic_auth.password: expected 1 to 1024 bytes, no control characters".to_owned(),
        ));
    }
    Ok(BasicAuth {
        user: basic.user,
        password: Secret(basic.password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> HttpPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn patches_set_and_remove_credentials() {
        let config = HttpConfig::default()
            .apply(patch(
                r#"{"bearer_token": "abc.DEF-123==", "basic_auth": {"user": "prom", "password": "p w"}}"#,
            ))
            .unwrap();
        assert_eq!(config.bearer_token.as_ref().unwrap().expose(), "abc.DEF-123==");
        assert_eq!(config.basic_auth.as_ref().unwrap().user, "prom");
        assert!(config.requires_auth());

        let unchanged = config.apply(patch(r#"{"max_connections": 3}"#)).unwrap();
        assert_eq!(unchanged.bearer_token, config.bearer_token);
        assert_eq!(unchanged.max_connections, 3);

        let removed = unchanged
            .apply(patch(r#"{"bearer_token": null, "basic_auth": null}"#))
            .unwrap();
        assert!(!removed.requires_auth());
        assert_eq!(removed.max_connections, 3);
    }

    #[test]
    fn bad_values_are_refused_without_echoing_secrets() {
        let config = HttpConfig::default();
        for bad in [
            r#"{"bearer_token": ""}"#,
            r#"{"bearer_token": "has space"}"#,
            r#"{"bearer_token": "==="}"#,
            r#"{"basic_auth": {"user": "a:b", "password": "x"}}"#,
            r#"{"basic_auth": {"user": "", "password": "x"}}"#,
            r#"{"basic_auth": {"user": "u", "password": "line\nfeed"}}"#,
            r#"{"max_connections": 0}"#,
            r#"{"max_connections": 5000}"#,
            r#"{"read_timeout_ms": 1}"#,
            r#"{"max_request_bytes": 100}"#,
        ] {
            let error = config.apply(patch(bad)).expect_err(bad);
            assert!(matches!(error, ConfigError::InvalidConfig(_)), "{bad}");
            let message = error.to_string();
            assert!(message.contains("http."), "{message}");
            for secret in ["has space", "line\nfeed"] {
                assert!(!message.contains(secret), "{message} echoes a secret");
            }
        }
        assert!(serde_json::from_str::<HttpPatch>(r#"{"token": "x"}"#).is_err());
        assert!(
            serde_json::from_str::<HttpPatch>(r#"{"basic_auth": {"user": "u"}}"#).is_err(),
            "a password is required"
        );
    }

    #[test]
    fn debug_and_patches_never_show_secrets() {
        let config = HttpConfig::default()
            .apply(patch(
                r#"{"bearer_token": "tok3n", "basic_auth": {"user": "prom", "password": "pa55"}}"#,
            ))
            .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("tok3n") && !debug.contains("pa55"), "{debug}");
        let json = serde_json::to_string(&config.to_patch()).unwrap();
        assert_eq!(
            json,
            r#"{"max_connections":64,"read_timeout_ms":5000,"max_request_bytes":8192}"#
        );
    }
}
