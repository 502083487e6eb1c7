//! What the fuzz targets share: strict checks of every render, a fingerprint of a monitor's whole state
//! (to show that a refused call changed nothing), and the switch for the invariants issue 14 restores.
//!
//! Every check panics on a violation: libFuzzer reports the panic as a crash and keeps the input.

use std::collections::BTreeMap;

use cache_monitor::{Clock, Config, ManualClock, Monitor};

/// The strict reader of the Prometheus text format the integration tests use.
#[path = "../../tests/support/exposition.rs"]
#[allow(dead_code, clippy::all)]
pub mod exposition;

use exposition::Exposition;

/// Whether the invariants that issue 14 ("No count ever vanishes") restored are checked too (the
/// `strict` feature, on by default). Without it, a violation that matches one of that issue's former
/// defects is tolerated; every other invariant is always checked.
pub const STRICT: bool = cfg!(feature = "strict");

/// Checks an invariant that a known defect of issue 14 breaks: panics when it does not hold, but only
/// with [`STRICT`]. `defect` names the item of issue 14.
pub fn known_defect(holds: bool, defect: &str, details: impl FnOnce() -> String) {
    if STRICT && !holds {
        panic!("issue 14, {defect}: {}", details());
    }
}

/// The clock every fuzzed monitor runs on: fixed, so that two renders of an unchanged monitor are equal.
pub fn fixed_clock() -> Clock {
    Clock::Manual(ManualClock::starting_at(1_000_000))
}

/// A fresh monitor on [`fixed_clock`].
pub fn monitor() -> Monitor {
    Monitor::with_clock(fixed_clock())
}

/// Everything observable about a monitor: its configuration, its snapshot (counts, imports, patterns,
/// stacks, gauges) and its Prometheus text. Equal fingerprints mean nothing changed (on a fixed clock).
#[derive(PartialEq)]
pub struct Fingerprint {
    /// [`Monitor::config`], credentials included.
    pub config: Config,
    /// [`Monitor::export_state`].
    pub export: String,
    /// [`Monitor::render_prometheus`].
    pub text: String,
}

impl Fingerprint {
    /// The fingerprint of `monitor` now.
    pub fn of(monitor: &Monitor) -> Self {
        Self {
            config: monitor.config(),
            export: monitor.export_state(),
            text: monitor.render_prometheus(),
        }
    }

    /// What differs between `self` (before) and `after`, in a few lines.
    pub fn difference(&self, after: &Self) -> String {
        let mut out = String::new();
        if self.config != after.config {
            out.push_str(&format!("config: {:?}\n    -> {:?}\n", self.config, after.config));
        }
        if self.export != after.export {
            out.push_str(&format!("export: {}\n", first_difference(&self.export, &after.export)));
        }
        if self.text != after.text {
            out.push_str(&format!("text: {}\n", first_difference(&self.text, &after.text)));
        }
        out
    }
}

/// Where `a` and `b` first differ, with some context from each.
pub fn first_difference(a: &str, b: &str) -> String {
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let excerpt = |s: &str| {
        let start = s.floor_char_boundary(at.saturating_sub(80));
        let end = s.ceil_char_boundary((at + 80).min(s.len()));
        s[start..end].to_owned()
    };
    format!("at byte {at}: {:?}\n    -> {:?}", excerpt(a), excerpt(b))
}

/// Checks every render of `monitor` and returns the parsed Prometheus text:
/// - the Prometheus text and OpenMetrics parse strictly (every line a comment or a well-formed sample of
///   a declared family, label values escaped), OpenMetrics ends with `# EOF`;
/// - histograms are consistent (see [`histogram_problems`]) unless `histograms_known_broken` says a
///   known defect of issue 14 applies;
/// - no raw NUL in either text (issue 14, item 13: tolerated unless [`STRICT`]);
/// - the JSON reports are JSON.
pub fn check_renders(monitor: &Monitor, histograms_known_broken: Option<&str>) -> Exposition {
    let text = monitor.render_prometheus();
    let parsed = check_text(&text, histograms_known_broken);
    let open = monitor.render_openmetrics();
    assert!(open.ends_with("# EOF\n"), "OpenMetrics without # EOF:\n{open}");
    check_text(&open, histograms_known_broken);
    for json in [monitor.render_hit_rate_json(), monitor.render_stats_json()] {
        if let Err(error) = serde_json::from_str::<serde_json::Value>(&json) {
            panic!("a JSON report is not JSON ({error}):\n{json}");
        }
    }
    parsed
}

/// Checks one exposition text (see [`check_renders`]) and returns it parsed.
pub fn check_text(text: &str, histograms_known_broken: Option<&str>) -> Exposition {
    known_defect(!text.contains('\0'), "13 (raw NUL in the text)", || {
        let at = text.find('\0').unwrap_or(0);
        let line = text[..at].rsplit('\n').next().unwrap_or("");
        format!("a NUL byte after {line:?}")
    });
    // Lines are read as the parser reads them; a NUL inside a label value is not a line break.
    let parsed = exposition::parse(text);
    let problems = histogram_problems(&parsed);
    match histograms_known_broken {
        Some(defect) => known_defect(problems.is_empty(), defect, || problems.join("\n")),
        None => assert!(problems.is_empty(), "{}\n{text}", problems.join("\n")),
    }
    parsed
}

/// Inconsistent histograms: a bucket below the previous one, bounds not increasing, no `+Inf` bucket,
/// or `+Inf` different from `_count`.
pub fn histogram_problems(parsed: &Exposition) -> Vec<String> {
    // (bucket metric name, labels without `le`) -> (le, value) of its buckets in text order
    type Series = (String, BTreeMap<String, String>);
    let mut histograms: BTreeMap<Series, Vec<(f64, f64)>> = BTreeMap::new();
    for sample in parsed.samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let mut labels = sample.labels.clone();
        let Some(le) = labels.remove("le") else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        histograms
            .entry((sample.name.clone(), labels))
            .or_default()
            .push((le, sample.value));
    }
    let mut problems = Vec::new();
    for ((name, labels), buckets) in &histograms {
        let series = format!("{name}{labels:?}");
        for pair in buckets.windows(2) {
            if pair[1].0.partial_cmp(&pair[0].0) != Some(std::cmp::Ordering::Greater) {
                problems.push(format!("{series}: bounds {} then {}", pair[0].0, pair[1].0));
            }
            if pair[1].1 < pair[0].1 {
                problems.push(format!(
                    "{series}: bucket le={} holds {} but le={} holds {}",
                    pair[0].0, pair[0].1, pair[1].0, pair[1].1
                ));
            }
        }
        let infinite = buckets.last().filter(|(le, _)| *le == f64::INFINITY).map(|(_, v)| *v);
        let count_name = format!("{}_count", name.trim_end_matches("_bucket"));
        let count = parsed.named(&count_name).find(|s| &s.labels == labels).map(|s| s.value);
        match (infinite, count) {
            (Some(infinite), Some(count)) if infinite == count => {}
            (infinite, count) => problems.push(format!("{series}: +Inf bucket {infinite:?}, _count {count:?}")),
        }
    }
    problems
}

/// The sum of every sample of `name` in `parsed`.
pub fn total(parsed: &Exposition, name: &str) -> f64 {
    parsed.named(name).map(|s| s.value).sum()
}

/// A snapshot worth importing: what a monitor that recorded a bit of everything exports (custom
/// operations, custom buckets, key patterns, an operation in flight, gauges, sampled stacks with host
/// frames, window histories over a few seconds), on its own fixed clock.
pub fn sample_export() -> String {
    use cache_monitor::{Gauge, Operation, Outcome};
    let clock = ManualClock::starting_at(1_000_000);
    let monitor = Monitor::with_clock(Clock::Manual(clock.clone()));
    monitor
        .configure(
            r#"{"namespace": "swap", "operations": ["compact"], "buckets": [0.0001, 0.001, 0.01],
                "profiler": {"sample_every": 1}, "patterns": {"depth": 2}}"#,
        )
        .expect("a valid configuration");
    let keys: [&[u8]; 4] = [b"user:1", b"user:2", b"path/a/b", b"\x01\xff:bytes"];
    for second in 0..12u64 {
        for (i, key) in keys.iter().enumerate() {
            let (operation, outcome) = match (second + i as u64) % 4 {
                0 => (Operation::GET, Outcome::Hit),
                1 => (Operation::GET, Outcome::Miss),
                2 => (Operation::PUT, Outcome::Ok),
                _ => (Operation::from_code(7), Outcome::Error),
            };
            let duration = 10_u64.pow((second % 8) as u32 + 2);
            monitor
                .record_with_frames(operation, outcome, duration, key, "host.main;host.serve")
                .expect("a configured operation");
        }
        clock.advance(if second == 6 { 20 } else { 1 });
    }
    monitor.begin(Operation::LOAD).expect("a built-in operation");
    monitor.set_gauge(Gauge::Entries, 42);
    monitor.set_gauge(Gauge::SizeBytes, 4096);
    monitor.export_state()
}

/// Whether `value` holds an integer of 2^40 or more anywhere: counts that large can overflow when an
/// import adds them up (issue 14, item 6), which panics in a fuzz build. (Negative or fractional counts
/// are refused by the parser.)
pub fn has_huge_numbers(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) => number.as_u64().is_some_and(|n| n >= 1 << 40),
        serde_json::Value::Array(items) => items.iter().any(has_huge_numbers),
        serde_json::Value::Object(map) => map.values().any(has_huge_numbers),
        _ => false,
    }
}

/// A monitor to import into: fresh, or (`recorded`) one with a few records of its own, and optionally
/// a bearer token that no snapshot may take away.
pub fn importer(recorded: bool, token: bool) -> Monitor {
    use cache_monitor::{Operation, Outcome};
    let monitor = monitor();
    if token {
        monitor
            .configure(r#"{"http": {"bearer_token": "importer-token"}}"#)
            .expect("a valid token");
    }
    if recorded {
        monitor
            .configure(r#"{"namespace": "importer"}"#)
            .expect("a valid namespace");
        for key in [&b"user:9"[..], b"mine:1", b""] {
            monitor
                .record(Operation::GET, Outcome::Hit, 2_000, key)
                .expect("a built-in operation");
        }
    }
    monitor
}

/// Imports `snapshot` into `importer` and checks the outcome:
/// - a refused import changes nothing: configuration, snapshot and Prometheus text are identical (issue
///   14, item 3, a bad pattern prefix refused after the configuration was applied: `strict` only);
/// - an accepted one adds exactly the snapshot's counts to the totals and to the patterns (item 2,
///   when it lowers `patterns.max`: `strict` only), and keeps every render well formed with consistent
///   histograms (item 6, bucket vectors of another length than the configuration's: `strict` only);
/// - with `strict`, the importer's bearer token stays (item 6) and so does its namespace if it had
///   recorded (item 3).
///
/// Snapshots with huge numbers are skipped unless [`STRICT`]: their sums overflow (issue 14, item 6).
pub fn import_and_check(importer: &Monitor, snapshot: &[u8]) {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(snapshot).ok();
    if !STRICT && parsed.as_ref().is_some_and(has_huge_numbers) {
        return;
    }
    let before = Fingerprint::of(importer);
    let totals_before = importer.totals();
    let recorded_before = totals_before.series.iter().flatten().any(|s| s.count > 0);
    match importer.import_state(snapshot) {
        Err(error) => {
            let after = Fingerprint::of(importer);
            let unchanged = before == after;
            let details = || {
                format!(
                    "a refused import ({error}) changed the monitor:\n{}",
                    before.difference(&after)
                )
            };
            if matches!(&error, cache_monitor::Error::InvalidSnapshot(why) if why.contains("bad pattern prefix")) {
                known_defect(unchanged, "3 (a refused import applies its configuration)", details);
            } else {
                assert!(unchanged, "{}", details());
            }
        }
        Ok(()) => {
            let parsed = parsed.expect("an accepted snapshot is JSON");
            let config = importer.config();
            let totals = importer.totals();
            let series = parsed["series"].as_array().map_or(&[][..], Vec::as_slice);
            let buckets = |op: &serde_json::Value| -> Vec<Vec<u64>> {
                let outcomes = op.as_array().map_or(&[][..], Vec::as_slice);
                let counts = |o: &serde_json::Value| {
                    let counts = o["buckets"].as_array().map_or(&[][..], Vec::as_slice);
                    counts.iter().filter_map(serde_json::Value::as_u64).collect()
                };
                outcomes.iter().map(counts).collect()
            };
            let shapes_match = series
                .iter()
                .flat_map(buckets)
                .all(|b| b.len() == config.buckets.seconds().len() + 1);
            let imported: u64 = series
                .iter()
                .take(totals.series.len())
                .flat_map(buckets)
                .flatten()
                .sum();
            let all = |t: &cache_monitor::totals::Totals| t.series.iter().flatten().map(|s| s.count).sum::<u64>();
            assert_eq!(
                all(&totals),
                all(&totals_before) + imported,
                "an import added other counts than the snapshot's"
            );
            let pattern_counts = |v: &serde_json::Value| {
                v.as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter_map(serde_json::Value::as_u64)
                    .sum::<u64>()
            };
            let imported_patterns: u64 = parsed["patterns"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|p| pattern_counts(&p["counts"]))
                .sum::<u64>()
                + pattern_counts(&parsed["other_pattern"]);
            let patterns = |t: &cache_monitor::totals::Totals| t.patterns.iter().flatten().sum::<u64>();
            let max_lowered = config.patterns.max < before.config.patterns.max;
            let details = || {
                format!(
                    "patterns {} + {imported_patterns} -> {}",
                    patterns(&totals_before),
                    patterns(&totals)
                )
            };
            let added = patterns(&totals) == patterns(&totals_before) + imported_patterns;
            if max_lowered {
                known_defect(added, "2 (lowering patterns.max)", details);
            } else {
                assert!(added, "{}", details());
            }
            let broken = (!shapes_match).then_some("6 (bucket vectors of another length than the configuration's)");
            check_renders(importer, broken);
            known_defect(
                config.http.bearer_token == before.config.http.bearer_token,
                "6 (a snapshot changes the credentials)",
                || format!("{:?} -> {:?}", before.config.http, config.http),
            );
            if recorded_before {
                known_defect(
                    config.namespace == before.config.namespace,
                    "3 (a monitor that recorded adopts the snapshot's namespace)",
                    || format!("{} -> {}", before.config.namespace, config.namespace),
                );
            }
        }
    }
}
