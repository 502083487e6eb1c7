//! Keys are data, never syntax: quotes, line feeds, braces, backslashes, invalid UTF-8 and 10 KB keys
//! render as escaped label values that parse back to exactly the pattern, in every format.

mod support;

use std::collections::BTreeSet;

use cache_monitor::{Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exposition};

/// Each key, and the pattern label it must parse back to.
fn hostile_keys() -> Vec<(Vec<u8>, String)> {
    let mut long_prefixed = b"big:".to_vec();
    long_prefixed.extend(std::iter::repeat_n(b'x', 10_240));
    vec![
        (br#"quo"te:1"#.to_vec(), r#"quo"te:*"#.to_owned()),
        (b"line\nfeed:2".to_vec(), "line\nfeed:*".to_owned()),
        (
            b"x} 1\ninjected_total 99\n# TYPE evil counter\nz:3".to_vec(),
            "x} 1\ninjected_total 99\n# TYPE evil counter\nz:*".to_owned(),
        ),
        (b"back\\slash:4".to_vec(), "back\\slash:*".to_owned()),
        (b"brace}{:5".to_vec(), "brace}{:*".to_owned()),
        (b"\xff\xfe\xfd:6".to_vec(), "\u{fffd}\u{fffd}\u{fffd}:*".to_owned()),
        (b"\xc3\x28:7".to_vec(), "\u{fffd}(:*".to_owned()),
        ("caf\u{e9}:8".as_bytes().to_vec(), "caf\u{e9}:*".to_owned()),
        (long_prefixed, "big:*".to_owned()),
        (vec![b'y'; 10_240], "*".to_owned()),
        (b"tab\there/9".to_vec(), "tab\there/*".to_owned()),
    ]
}

fn recorded_monitor() -> Monitor {
    let monitor = Monitor::new();
    for (key, _) in hostile_keys() {
        monitor
            .record(Operation::GET, Outcome::Hit, 1_000, &key)
            .expect("get is built in");
        monitor
            .record(Operation::PUT, Outcome::Ok, 2_000, &key)
            .expect("put is built in");
    }
    monitor
}

fn expected_patterns() -> BTreeSet<String> {
    hostile_keys().into_iter().map(|(_, pattern)| pattern).collect()
}

/// The `pattern` label values of an exposition, parsed back.
fn pattern_labels(parsed: &exposition::Exposition) -> BTreeSet<String> {
    parsed
        .named("cuenv_cache_pattern_operations_total")
        .map(|s| s.labels["pattern"].clone())
        .collect()
}

#[test]
fn hostile_keys_parse_back_from_the_text_format() {
    let text = recorded_monitor().render_prometheus();
    let parsed = exposition::parse(&text);
    assert_eq!(pattern_labels(&parsed), expected_patterns());
    for pattern in expected_patterns() {
        let hits = parsed.value(
            "cuenv_cache_pattern_operations_total",
            &[("pattern", &pattern), ("result", "hit")],
        );
        assert_eq!(hits, Some(1.0), "{pattern:?}");
    }
    assert!(
        parsed.families.keys().all(|f| f.starts_with("cuenv_cache_")),
        "no injected family: {:?}",
        parsed.families
    );
    assert!(
        parsed.samples.iter().all(|s| s.name.starts_with("cuenv_cache_")),
        "no injected sample"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# TYPE")).count(),
        parsed.families.len()
    );
    assert_promtool_accepts(&text);
}

#[test]
fn hostile_keys_parse_back_from_openmetrics() {
    let text = recorded_monitor().render_openmetrics();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(
        text.matches("# EOF").count(),
        1,
        "a key cannot end the exposition early"
    );
    let parsed = exposition::parse(&text);
    assert_eq!(pattern_labels(&parsed), expected_patterns());
}

#[test]
fn hostile_keys_round_trip_through_json() {
    let json: serde_json::Value = serde_json::from_str(&recorded_monitor().render_hit_rate_json()).expect("valid JSON");
    let patterns: BTreeSet<String> = json["key_patterns"]
        .as_array()
        .expect("key_patterns")
        .iter()
        .map(|p| p["pattern"].as_str().expect("string").to_owned())
        .collect();
    assert_eq!(patterns, expected_patterns());
}

#[test]
fn configured_label_text_cannot_inject_either() {
    let monitor = Monitor::new();
    for bad in [
        r#"{"namespace": "a\nb"}"#,
        r#"{"namespace": "a{b"}"#,
        r#"{"operations": ["x\"y"]}"#,
    ] {
        assert!(monitor.configure(bad).is_err(), "{bad}");
    }
}
