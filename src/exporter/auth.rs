//! Optional request authentication: a bearer token, HTTP basic credentials, or either.
//!
//! The credentials part of the `Authorization` header is compared in constant time with the expected one
//! (`subtle`), so response timing does not reveal how much of a guess was right. Only the length of the
//! expected value can leak, which is unavoidable and reveals nothing useful.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::config::http::HttpConfig;

/// `WWW-Authenticate` challenges for the schemes in force, sent with a 401.
pub(crate) fn challenges(config: &HttpConfig) -> Vec<&'static str> {
    let mut schemes = Vec::with_capacity(2);
    if config.bearer_token.is_some() {
        schemes.push(r#"Bearer realm="cache-monitor""#);
    }
    if config.basic_auth.is_some() {
        schemes.push(r#"Basic realm="cache-monitor", charset="UTF-8""#);
    }
    schemes
}

/// Whether a request with this `Authorization` header value (if any) may be served.
pub(crate) fn authorized(config: &HttpConfig, authorization: Option<&[u8]>) -> bool {
    if !config.requires_auth() {
        return true;
    }
    let Some(header) = authorization else {
        return false;
    };
    let Some(space) = header.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (scheme, credentials) = (&header[..space], trim_spaces(&header[space + 1..]));
    // The scheme is public; only the credentials are compared in constant time. An empty token is
    // never configured; it is what a configuration given back at unload holds, and matches nothing.
    if scheme.eq_ignore_ascii_case(b"bearer") {
        config
            .bearer_token
            .as_ref()
            .is_some_and(|token| !token.expose().is_empty() && bool::from(credentials.ct_eq(token.expose().as_bytes())))
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        config.basic_auth.as_ref().is_some_and(|basic| {
            let expected = STANDARD.encode(format!("{}:{}", basic.user, basic.password.expose()));
            bool::from(credentials.ct_eq(expected.as_bytes()))
        })
    } else {
        false
    }
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Section;
    use crate::config::http::HttpPatch;

    fn config(json: &str) -> HttpConfig {
        let patch: HttpPatch = serde_json::from_str(json).unwrap();
        HttpConfig::default().apply(patch).unwrap()
    }

    #[test]
    fn without_credentials_everything_is_served() {
        let open = HttpConfig::default();
        assert!(authorized(&open, None));
        assert!(authorized(&open, Some(b"Bearer whatever")));
        assert!(challenges(&open).is_empty());
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let config = config(r#"{"bearer_token": "s3cr3t"}"#);
        assert!(authorized(&config, Some(b"Bearer s3cr3t")));
        assert!(authorized(&config, Some(b"bearer  s3cr3t ")));
        for wrong in [
            &b"Bearer s3cr3"[..],
            b"Bearer s3cr3tt",
            b"Bearer",
            b"Bearer ",
            b"Basic s3cr3t",
            b"s3cr3t",
            b"",
        ] {
            assert!(!authorized(&config, Some(wrong)), "{wrong:?}");
        }
        assert!(!authorized(&config, None));
        assert_eq!(challenges(&config), [r#"Bearer realm="cache-monitor""#]);
    }

    #[test]
    fn basic_credentials_and_either_scheme() {
        let config = config(r#"{"bearer_token": "tok", "basic_auth": {"user": "Aladdin", "password": "open sesame"}}"#);
        // RFC 7617's example.
        assert!(authorized(&config, Some(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")));
        assert!(authorized(&config, Some(b"Bearer tok")));
        assert!(!authorized(&config, Some(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==")));
        assert_eq!(challenges(&config).len(), 2);
    }

    #[test]
    fn a_configuration_released_at_unload_serves_nobody() {
        let mut released = crate::config::Config::default()
            .with_json(r#"{"http": {"bearer_token": "tok"}}"#)
            .unwrap();
        released.release_heap();
        for header in [&b"Bearer "[..], b"Bearer", b"Bearer tok", b"Basic "] {
            assert!(!authorized(&released.http, Some(header)), "{header:?}");
        }
        assert!(!authorized(&released.http, None));
    }
}
