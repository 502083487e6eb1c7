//! A million distinct keys across ten thousand prefixes: the pattern count stays at the cap, memory does
//! not grow with the keys, and the render stays valid. Alone in its binary so the memory reading is this
//! test's own.

mod support;

use std::fmt::Write;

use cache_monitor::{Monitor, Operation, Outcome};
use support::{assert_promtool_accepts, exposition, resident_bytes};

const PREFIXES: u64 = 10_000;

fn record_keys(monitor: &Monitor, keys: std::ops::Range<u64>) {
    let mut key = String::with_capacity(32);
    for i in keys {
        key.clear();
        let _ = write!(key, "tenant{}:{i}", i % PREFIXES);
        // Every prefix sees keys i, i + 10,000, ...: a quarter of them miss.
        let outcome = if (i / PREFIXES).is_multiple_of(4) {
            Outcome::Miss
        } else {
            Outcome::Hit
        };
        monitor
            .record(Operation::GET, outcome, 1_000 + i % 5_000, key.as_bytes())
            .expect("get is built in");
    }
}

#[test]
fn a_million_distinct_keys_keep_the_pattern_count_at_the_cap_and_memory_flat() {
    let monitor = Monitor::new();
    record_keys(&monitor, 0..100_000);
    let after_100k = resident_bytes();
    record_keys(&monitor, 100_000..1_000_000);
    let after_1m = resident_bytes();
    let growth = after_1m.saturating_sub(after_100k);
    assert!(
        growth < 1 << 20,
        "900,000 more distinct keys grew resident memory by {growth} bytes ({after_100k} -> {after_1m})"
    );

    let view = monitor.view();
    assert_eq!(view.config.patterns.max, 64);
    assert_eq!(view.patterns_tracked, 64);
    assert_eq!(view.patterns.len(), 64);
    let tracked: u64 = view.patterns.iter().map(|p| p.counts.iter().sum::<u64>()).sum();
    let other: u64 = view.other_pattern.iter().sum();
    assert_eq!(
        tracked + other,
        1_000_000,
        "every keyed record counts under a pattern or other"
    );
    assert_eq!(tracked, 64 * 100, "each tracked prefix got exactly its 100 keys");

    let text = monitor.render_prometheus();
    let parsed = exposition::parse(&text);
    let series = parsed.named("cuenv_cache_pattern_operations_total").count();
    assert_eq!(series, 65 * 2, "64 patterns and other, each with hits and misses");
    assert_eq!(
        parsed.value(
            "cuenv_cache_pattern_operations_total",
            &[("pattern", "other"), ("result", "hit")]
        ),
        Some(other as f64 * 0.75)
    );
    assert_promtool_accepts(&text);
}
