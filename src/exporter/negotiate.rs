//! Content negotiation: which exposition format (`Accept`) and whether to gzip (`Accept-Encoding`).
//!
//! Both headers are lists of `value;param=..;q=weight` items. Prometheus asks for OpenMetrics with
//! `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::render::text::Format;

/// One item of an `Accept`-style list: its value (lower-cased) and weight.
struct Item<'a> {
    value: String,
    params: Vec<(&'a str, &'a str)>,
    q: f64,
}

fn items(header: &str) -> impl Iterator<Item = Item<'_>> {
    header.split(',').filter_map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let value = parts.next().filter(|v| !v.is_empty())?.to_ascii_lowercase();
        let mut q = 1.0;
        let mut params = Vec::new();
        for param in parts {
            let (name, val) = param.split_once('=').unwrap_or((param, ""));
            let (name, val) = (name.trim(), val.trim().trim_matches('"'));
            if name.eq_ignore_ascii_case("q") {
                // An unparsable weight makes the item unusable rather than preferred.
                q = val.parse::<f64>().ok().filter(|q| (0.0..=1.0).contains(q))?;
            } else {
                params.push((name, val));
            }
        }
        Some(Item { value, params, q })
    })
}

/// The exposition format for an `Accept` header: OpenMetrics 1.0.0 when the client weighs it at least
/// as high as the text format, the text format otherwise (also without a header).
pub(crate) fn exposition_format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let (mut openmetrics, mut text) = (0.0f64, 0.0f64);
    for item in items(accept) {
        match item.value.as_str() {
            "application/openmetrics-text" => {
                let version = item
                    .params
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("version"))
                    .map(|(_, v)| *v);
                // We write 1.0.0; 0.0.1 is the draft Prometheus also accepts under the same grammar.
                if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                    openmetrics = openmetrics.max(item.q);
                }
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(item.q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether an `Accept-Encoding` header allows gzip: listed with a non-zero weight, or covered by `*`.
pub(crate) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let (mut gzip, mut any) = (None, None);
    for item in items(header) {
        match item.value.as_str() {
            "gzip" | "x-gzip" => gzip = Some(item.q),
            "*" => any = Some(item.q),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// `body` gzip-compressed (fast level: scrapes are frequent, bodies small and repetitive).
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_others_get_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(exposition_format(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            exposition_format(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        for text in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain;version=0.0.4, application/openmetrics-text;q=0.5"),
            Some("application/openmetrics-text;q=0"),
            Some("application/openmetrics-text;version=9.9.9"),
            Some("application/openmetrics-text;q=high"),
            Some(",,;;"),
        ] {
            assert_eq!(exposition_format(text), Format::Text, "{text:?}");
        }
    }

    #[test]
    fn gzip_when_allowed() {
        for yes in ["gzip", "deflate, gzip;q=0.5", "*", "br;q=1, GZIP", "x-gzip"] {
            assert!(accepts_gzip(Some(yes)), "{yes}");
        }
        for no in ["", "identity", "gzip;q=0", "*;q=0", "gzip;q=0, *", "deflate"] {
            assert!(!accepts_gzip(Some(no)), "{no}");
        }
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn gzip_round_trips() {
        let body = "cuenv_cache_operations_total 1\n".repeat(100);
        let compressed = gzip(body.as_bytes()).unwrap();
        assert!(compressed.len() < body.len() / 4);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }
}
