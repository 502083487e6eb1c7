//! `cache-monitor push`: one PUT of the metrics to a Prometheus Pushgateway.
//!
//! `PUT /metrics/job/NAME[/instance/I]` with the text format replaces every metric of that group, which
//! is what a batch job wants (the gateway keeps the last push until it is replaced or deleted). Label
//! values with a `/` (or empty) go base64url-encoded, as the gateway's `job@base64/...` form takes them;
//! others are percent-encoded.
//!
//! The client is hyper's HTTP/1 client on a current-thread tokio runtime: the HTTP stack the exporter
//! already builds, so the command adds no other. It speaks plain `http://` only (no TLS): a gateway
//! behind TLS needs a local proxy, or the job can write a textfile instead.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;

use super::{Failure, open, print_out, thousands};

/// The content type of the Prometheus text format the gateway parses.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where to push: from `--gateway`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Gateway {
    /// The host as written (a name, an IPv4 address or a bracketed IPv6 address), for the connection.
    host: String,
    port: u16,
    /// The `Host` header: the host, with the port if the URL gave one.
    authority: String,
    /// The path before `/metrics`, without a trailing `/` (`""` for none).
    prefix: String,
    /// `Basic ...` from the URL's `user:password@`, if any.
    authorization: Option<String>,
}

impl Gateway {
    /// Parses `http://[user:password@]HOST[:PORT][/PREFIX]`.
    fn parse(url: &str) -> Result<Self, Failure> {
        let bad = |why: &str| Failure::Usage(format!("--gateway {url:?}: {why}"));
        let Some(scheme_end) = url.find("://") else {
            return Err(bad("expected http://HOST[:PORT][/PREFIX]"));
        };
        let scheme = url[..scheme_end].to_ascii_lowercase();
        if scheme == "https" {
            return Err(bad(
                "https is not supported (no TLS in this build's client): use http:// to a local proxy, \
                 or `cache-monitor textfile` for node_exporter",
            ));
        }
        if scheme != "http" {
            return Err(bad("expected an http:// URL"));
        }
        let rest = &url[scheme_end + 3..];
        if rest.contains(['?', '#']) {
            return Err(bad("a gateway URL has no query or fragment"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing `]`"))?;
            let after = &v6[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(bad("expected :PORT after the IPv6 address")),
            };
            (format!("[{}]", &v6[..end]), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        let port_number = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
            None => 80,
        };
        let authorization = userinfo.map(|userinfo| {
            let decoded = percent_decode(userinfo);
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(decoded))
        });
        Ok(Self {
            authority: match port {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            },
            host,
            port: port_number,
            prefix: path.trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// The URL without credentials, for messages.
    fn display(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    /// Where the host resolves to (a name is looked up here, before anything is sent).
    fn addresses(&self) -> Result<Vec<SocketAddr>, Failure> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|error| Failure::Runtime(format!("cannot resolve {}: {error}", self.host)))
    }
}

/// The group's path: `PREFIX/metrics/job/NAME[/instance/I]`.
fn group_path(prefix: &str, job: &str, instance: Option<&str>) -> String {
    let mut path = format!("{prefix}/metrics");
    for (label, value) in std::iter::once(("job", job)).chain(instance.map(|value| ("instance", value))) {
        if value.is_empty() || value.contains('/') {
            // base64url; the gateway takes `=` for an empty value.
            let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
            let encoded = if encoded.is_empty() { "=".to_owned() } else { encoded };
            path.push_str(&format!("/{label}@base64/{encoded}"));
        } else {
            path.push_str(&format!("/{label}/{}", percent_encode(value)));
        }
    }
    path
}

/// Everything but RFC 3986's unreserved characters, percent-encoded.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

pub(super) fn run(path: &Path, gateway: &str, job: &str, instance: Option<&str>, timeout: u64) -> Result<(), Failure> {
    if job.is_empty() {
        return Err(Failure::Usage("--job: the job label must not be empty".to_owned()));
    }
    let gateway = Gateway::parse(gateway)?;
    let group = group_path(&gateway.prefix, job, instance);
    let url = gateway.display(&group);
    let text = open(path)?.render_prometheus();
    let addresses = gateway.addresses()?;
    eprintln!(
        "cache-monitor: pushing {} bytes to {url} (at most {timeout} s)",
        thousands(text.len() as u64)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Runtime(format!("cannot start the HTTP client: {error}")))?;
    let bytes = text.len() as u64;
    let exchange = put(&gateway, &addresses, &group, text);
    let (status, body) = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(timeout), exchange).await })
        .map_err(|_| Failure::Runtime(format!("{url}: no answer within {timeout} s")))?
        .map_err(|error| Failure::Runtime(format!("{url}: {error}")))?;
    let status_text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body);
        let body: String = body.trim().chars().take(1000).collect();
        return Err(Failure::Runtime(format!(
            "{url}: the Pushgateway answered {}{}",
            status_text.trim_end(),
            if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            }
        )));
    }
    print_out(&format!(
        "pushed {} bytes to {url}: {}\n",
        thousands(bytes),
        status_text.trim_end()
    ))?;
    Ok(())
}

/// Sends the PUT over a new connection to the first address that answers; the status and body.
async fn put(
    gateway: &Gateway,
    addresses: &[SocketAddr],
    path: &str,
    text: String,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let mut last_error = format!("{} resolves to no address", gateway.host);
    let mut stream = None;
    for address in addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(error) => last_error = format!("cannot connect to {address}: {error}"),
        }
    }
    let stream = stream.ok_or(last_error)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake: {error}"))?;
    let driver = tokio::spawn(connection);
    let mut request = Request::put(path)
        .header(HOST, &gateway.authority)
        .header(CONTENT_TYPE, TEXT_FORMAT)
        .header(USER_AGENT, concat!("cache-monitor/", env!("CARGO_PKG_VERSION")));
    if let Some(authorization) = &gateway.authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    let request = request
        .body(Full::new(Bytes::from(text)))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("sending the metrics: {error}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("reading the answer: {error}"))?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_parse() {
        let gateway = Gateway::parse("http://127.0.0.1:9091").unwrap();
        assert_eq!((gateway.host.as_str(), gateway.port), ("127.0.0.1", 9091));
        assert_eq!(gateway.prefix, "");
        let gateway = Gateway::parse("HTTP://user:p%40ss@push.example:8080/gw/").unwrap();
        assert_eq!(gateway.authority, "push.example:8080");
        assert_eq!(gateway.prefix, "/gw");
        assert_eq!(gateway.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        let gateway = Gateway::parse("http://[::1]:9091").unwrap();
        assert_eq!((gateway.host.as_str(), gateway.port), ("[::1]", 9091));
        assert_eq!(Gateway::parse("http://gateway").unwrap().port, 80);
        for bad in [
            "https://x",
            "ftp://x",
            "x:9091",
            "http://",
            "http://x:port",
            "http://x/?a=b",
            "http://[::1",
        ] {
            assert!(matches!(Gateway::parse(bad), Err(Failure::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn label_values_are_encoded_as_the_gateway_reads_them() {
        assert_eq!(group_path("", "nightly", None), "/metrics/job/nightly");
        assert_eq!(
            group_path("/gw", "a b", Some("host:1")),
            "/gw/metrics/job/a%20b/instance/host%3A1"
        );
        assert_eq!(
            group_path("", "ci/build", Some("")),
            "/metrics/job@base64/Y2kvYnVpbGQ=/instance@base64/="
        );
    }
}
