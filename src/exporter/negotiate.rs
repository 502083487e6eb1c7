//! Content negotiation: which exposition format (`Accept`) and whether to gzip (`Accept-Encoding`).
//!
//! Both headers are lists of `value;param=..;q=weight` items. Prometheus asks for OpenMetrics with
//! `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`, and with
//! native histograms on (`--enable-feature=native-histograms`) for protobuf first:
//! `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,...`.

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

/// What `/metrics` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exposition {
    /// One of the text formats.
    Text(Format),
    /// Length-delimited `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

/// The exposition for an `Accept` header: protobuf when the client asks for delimited
/// `io.prometheus.client.MetricFamily` messages and weighs them at least as high as every text format,
/// else OpenMetrics 1.0.0 when weighed at least as high as the text format, else the text format (also
/// without a header).
pub(crate) fn exposition(accept: Option<&str>) -> Exposition {
    let Some(accept) = accept else {
        return Exposition::Text(Format::Text);
    };
    let (mut protobuf, mut openmetrics, mut text) = (0.0f64, 0.0f64, 0.0f64);
    for item in items(accept) {
        let param = |name: &str| {
            item.params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| *value)
        };
        match item.value.as_str() {
            "application/vnd.google.protobuf"
                if param("proto") == Some("io.prometheus.client.MetricFamily")
                    && param("encoding") == Some("delimited") =>
            {
                protobuf = protobuf.max(item.q);
            }
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
    if protobuf > 0.0 && protobuf >= openmetrics && protobuf >= text {
        Exposition::Protobuf
    } else if openmetrics > 0.0 && openmetrics >= text {
        Exposition::Text(Format::OpenMetrics)
    } else {
        Exposition::Text(Format::Text)
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

    fn exposition_format(accept: Option<&str>) -> Format {
        match exposition(accept) {
            Exposition::Text(format) => format,
            Exposition::Protobuf => panic!("protobuf for {accept:?}"),
        }
    }

    #[test]
    fn prometheus_with_native_histograms_gets_protobuf() {
        let prometheus = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(exposition(Some(prometheus)), Exposition::Protobuf);
        for not in [
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4,text/plain",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
        ] {
            assert_ne!(exposition(Some(not)), Exposition::Protobuf, "{not}");
        }
    }

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
