//! Exemplars: a record's label set (a trace id) shown on the OpenMetrics line of the bucket it counted in
//! and in that protobuf bucket; the latest per bucket; forgotten by a reset; refused label sets record
//! nothing; the Prometheus text format is unchanged.

mod support;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cache_monitor::render::protobuf::{self, Histogram};
use cache_monitor::{Error, Monitor, Operation, Outcome};
use support::exposition::{self, Exemplar};

const BUCKET: &str = "cuenv_cache_operation_duration_seconds_bucket";

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The exemplars of the `get`/`hit` bucket lines of an OpenMetrics render, by `le`.
fn exemplars(monitor: &Monitor, operation: &str, result: &str) -> BTreeMap<String, Exemplar> {
    let parsed = exposition::parse(&monitor.render_openmetrics());
    parsed
        .named(BUCKET)
        .filter(|s| s.labels["operation"] == operation && s.labels["result"] == result)
        .filter_map(|s| Some((s.labels["le"].clone(), s.exemplar.clone()?)))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

/// The `get`/`hit` series' histogram in the protobuf exposition.
fn protobuf_histogram(monitor: &Monitor) -> Histogram {
    let families = protobuf::decode(&monitor.render_protobuf()).expect("length-delimited messages");
    let family = families
        .iter()
        .find(|f| f.name.as_deref() == Some("cuenv_cache_operation_duration_seconds"))
        .expect("the duration family");
    let metric = family
        .metric
        .iter()
        .find(|m| {
            m.label
                .iter()
                .any(|l| l.name.as_deref() == Some("result") && l.value.as_deref() == Some("hit"))
        })
        .expect("the get/hit series");
    metric.histogram.clone().expect("a histogram")
}

#[test]
fn an_exemplar_shows_on_the_bucket_line_its_record_counted_in() {
    let monitor = Monitor::new();
    let before = now_secs();
    // 1.2 ms: the (0.001, 0.0025] bucket of the default bounds.
    monitor
        .record_with_exemplar(
            Operation::GET,
            Outcome::Hit,
            1_200_000,
            b"user:1",
            &[("trace_id", "abc123")],
        )
        .unwrap();
    monitor.record(Operation::GET, Outcome::Hit, 3_000, b"user:2").unwrap();
    let after = now_secs();

    let found = exemplars(&monitor, "get", "hit");
    assert_eq!(found.keys().collect::<Vec<_>>(), ["0.0025"], "{found:?}");
    let exemplar = &found["0.0025"];
    assert_eq!(exemplar.labels, labels(&[("trace_id", "abc123")]));
    assert_eq!(exemplar.value, 0.0012);
    let timestamp = exemplar.timestamp.expect("a timestamp");
    // Written with milliseconds: compare at that resolution.
    assert!(
        timestamp >= (before * 1e3).floor() / 1e3 && timestamp <= after,
        "{before} <= {timestamp} <= {after}"
    );
    let text = monitor.render_openmetrics();
    let line = text.lines().find(|l| l.contains(" # {")).expect("an exemplar line");
    assert!(
        line.starts_with(&format!(
            "{BUCKET}{{operation=\"get\",result=\"hit\",le=\"0.0025\"}} 2 # {{trace_id=\"abc123\"}} 0.0012 "
        )),
        "{line}"
    );
    assert!(text.ends_with("# EOF\n"));

    let plain = monitor.render_prometheus();
    assert!(
        !plain.contains('#') || plain.lines().all(|l| !l.contains(" # ")),
        "text 0.0.4 has no exemplars"
    );
    support::assert_promtool_accepts(&plain);
}

#[test]
fn the_latest_exemplar_per_bucket_is_kept_on_every_bucket_and_inf() {
    let monitor = Monitor::new();
    let record = |duration_ns: u64, labels: &[(&str, &str)]| {
        monitor
            .record_with_exemplar(Operation::GET, Outcome::Hit, duration_ns, b"", labels)
            .unwrap();
    };
    record(1_500_000, &[("trace_id", "first")]);
    record(2_000_000, &[("trace_id", "second"), ("span_id", "s2")]);
    record(40_000_000, &[("trace_id", "slow")]);
    record(20_000_000_000, &[("trace_id", "beyond")]);
    record(500, &[]);
    // Another series keeps its own.
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Miss, 1_500_000, b"", &[("trace_id", "miss")])
        .unwrap();

    let found = exemplars(&monitor, "get", "hit");
    let traces: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|(le, e)| (le.as_str(), e.labels.get("trace_id").map(String::as_str)))
        .collect();
    assert_eq!(
        traces,
        [
            ("+Inf", Some("beyond")),
            ("0.000001", None),
            ("0.0025", Some("second")),
            ("0.05", Some("slow"))
        ]
    );
    assert_eq!(
        found["0.0025"].labels,
        labels(&[("trace_id", "second"), ("span_id", "s2")])
    );
    assert_eq!(found["+Inf"].value, 20.0);
    assert_eq!(
        found["0.000001"].value, 5e-7,
        "an empty label set carries the value and time alone"
    );
    assert_eq!(exemplars(&monitor, "get", "miss")["0.0025"].labels["trace_id"], "miss");
}

#[test]
fn the_protobuf_exposition_carries_them_in_its_buckets() {
    let monitor = Monitor::new();
    let before = now_secs();
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 1_200_000, b"", &[("trace_id", "abc")])
        .unwrap();
    monitor
        .record_with_exemplar(
            Operation::GET,
            Outcome::Hit,
            20_000_000_000,
            b"",
            &[("trace_id", "inf")],
        )
        .unwrap();
    let after = now_secs();

    let histogram = protobuf_histogram(&monitor);
    let with: Vec<(f64, &str)> = histogram
        .bucket
        .iter()
        .filter_map(|b| {
            let exemplar = b.exemplar.as_ref()?;
            Some((b.upper_bound?, exemplar.label[0].value.as_deref()?))
        })
        .collect();
    assert_eq!(with, [(0.0025, "abc"), (f64::INFINITY, "inf")]);
    let inf = histogram.bucket.last().unwrap();
    assert_eq!(
        inf.cumulative_count, histogram.sample_count,
        "the explicit +Inf bucket counts everything"
    );
    let exemplar = histogram.bucket.iter().find_map(|b| b.exemplar.clone()).unwrap();
    assert_eq!(exemplar.label[0].name.as_deref(), Some("trace_id"));
    assert_eq!(exemplar.value, Some(0.0012));
    let timestamp = exemplar.timestamp.expect("a timestamp");
    let seconds = timestamp.seconds as f64 + f64::from(timestamp.nanos) / 1e9;
    assert!(
        before <= seconds && seconds <= after,
        "{before} <= {seconds} <= {after}"
    );
    // Native histograms list them too.
    let values: Vec<f64> = histogram.exemplars.iter().filter_map(|e| e.value).collect();
    assert_eq!(values, [0.0012, 20.0]);

    // Without native histograms, only the buckets carry them.
    monitor.configure(r#"{"native_histograms": false}"#).unwrap();
    let histogram = protobuf_histogram(&monitor);
    assert!(histogram.exemplars.is_empty());
    assert_eq!(histogram.bucket.iter().filter(|b| b.exemplar.is_some()).count(), 2);
}

#[test]
fn a_reset_forgets_exemplars_and_new_ones_come_back() {
    let monitor = Monitor::new();
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 1_200_000, b"", &[("trace_id", "old")])
        .unwrap();
    monitor.reset();
    monitor.record(Operation::GET, Outcome::Hit, 1_200_000, b"").unwrap();
    assert!(exemplars(&monitor, "get", "hit").is_empty(), "forgotten");
    assert!(protobuf_histogram(&monitor).bucket.iter().all(|b| b.exemplar.is_none()));

    // New bounds after the reset: an exemplar is shown on the bucket of the bounds in force.
    monitor.reset();
    monitor.configure(r#"{"buckets": [0.001, 0.01]}"#).unwrap();
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 1_200_000, b"", &[("trace_id", "new")])
        .unwrap();
    let found = exemplars(&monitor, "get", "hit");
    assert_eq!(found.keys().collect::<Vec<_>>(), ["0.01"]);
    assert_eq!(found["0.01"].labels["trace_id"], "new");
}

#[test]
fn refused_label_sets_record_nothing() {
    let monitor = Monitor::new();
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 1_200_000, b"", &[("trace_id", "kept")])
        .unwrap();
    let totals = monitor.totals();
    let openmetrics = exemplars(&monitor, "get", "hit");

    let long = "x".repeat(121);
    let at_limit = "x".repeat(120);
    let wide = "\u{1F600}".repeat(120);
    let refused: [&[(&str, &str)]; 6] = [
        &[("trace_id", &long)],
        &[("trace-id", "a")],
        &[("__name__", "a")],
        &[("9", "a")],
        &[("a", "1"), ("a", "2")],
        &[("trace_id", &wide), ("b", "c")],
    ];
    for labels in refused {
        let error = monitor
            .record_with_exemplar(Operation::GET, Outcome::Hit, 5, b"user:1", labels)
            .unwrap_err();
        assert!(matches!(error, Error::InvalidExemplar(_)), "{labels:?}: {error:?}");
    }
    let too_long = monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 5, b"", &[("trace_id", &long)])
        .unwrap_err();
    assert_eq!(
        too_long.to_string(),
        "invalid exemplar: exemplar labels hold 129 characters in their names and values, more than \
         OpenMetrics' 128"
    );
    // A bad operation or outcome with good labels is refused too, and keeps nothing.
    let unknown = monitor.record_with_exemplar(Operation::from_code(12), Outcome::Hit, 5, b"", &[("trace_id", "no")]);
    assert_eq!(unknown, Err(Error::UnknownOperation(12)));

    assert_eq!(monitor.totals().series, totals.series, "nothing counted");
    assert_eq!(exemplars(&monitor, "get", "hit"), openmetrics, "nothing kept");

    // 128 characters exactly is allowed.
    monitor
        .record_with_exemplar(Operation::GET, Outcome::Hit, 5, b"", &[("trace_id", &at_limit)])
        .unwrap();
    assert_eq!(
        exemplars(&monitor, "get", "hit")["0.000001"].labels["trace_id"],
        at_limit
    );
}

#[test]
fn label_values_are_escaped_and_switched_off_nothing_is_kept() {
    let monitor = Monitor::new();
    monitor
        .record_with_exemplar(
            Operation::PUT,
            Outcome::Ok,
            1_200_000,
            b"",
            &[("note", "a \"quoted\"\nline\\ # {x=\"1\"} 2")],
        )
        .unwrap();
    let found = exemplars(&monitor, "put", "ok");
    assert_eq!(found["0.0025"].labels["note"], "a \"quoted\"\nline\\ # {x=\"1\"} 2");

    monitor.set_enabled(false);
    monitor
        .record_with_exemplar(Operation::PUT, Outcome::Ok, 40_000_000, b"", &[("trace_id", "off")])
        .unwrap();
    monitor.set_enabled(true);
    assert_eq!(exemplars(&monitor, "put", "ok").len(), 1, "off: nothing kept");
    assert_eq!(
        monitor.totals().series[Operation::PUT.code() as usize][Outcome::Ok.code() as usize].count,
        1
    );
}

#[test]
fn many_threads_record_exemplars_and_every_record_counts() {
    let monitor = Monitor::new();
    let threads = 4;
    let per_thread = 20_000u64;
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let monitor = &monitor;
            scope.spawn(move || {
                for i in 0..per_thread {
                    let trace = format!("{thread:x}{i:08x}");
                    monitor
                        .record_with_exemplar(Operation::GET, Outcome::Hit, 1_200_000, b"", &[("trace_id", &trace)])
                        .unwrap();
                }
            });
        }
        // A reader renders while they write: every render parses and its exemplar is one thread's whole.
        for _ in 0..50 {
            if let Some(exemplar) = exemplars(&monitor, "get", "hit").get("0.0025") {
                assert_eq!(exemplar.labels["trace_id"].len(), 9, "{exemplar:?}");
            }
        }
    });
    let counted = monitor.totals().series[0][0].count;
    assert_eq!(counted, threads * per_thread, "an exemplar never costs a count");
    assert!(exemplars(&monitor, "get", "hit").contains_key("0.0025"));
}

#[cfg(feature = "caches")]
#[test]
fn a_monitored_cache_attaches_the_trace_id_its_source_gives() {
    use std::sync::{Arc, Mutex};

    use cache_monitor::{Cache, MemoryCache, MonitoredCacheBuilder};

    let monitor = Arc::new(Monitor::new());
    let current: Arc<Mutex<Option<String>>> = Arc::default();
    let cache = MonitoredCacheBuilder::new(MemoryCache::default())
        .with_monitor(Arc::clone(&monitor))
        .with_trace_id({
            let current = Arc::clone(&current);
            move || current.lock().unwrap().clone()
        })
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        cache.put("user:1", &1, None).await.unwrap();
        *current.lock().unwrap() = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
        let _ = cache.get::<i32>("user:1").await.unwrap();
        *current.lock().unwrap() = Some("x".repeat(121));
        let _ = cache.get::<i32>("user:2").await.unwrap();
    });
    assert!(exemplars(&monitor, "put", "ok").is_empty(), "no trace id, no exemplar");
    let hits = exemplars(&monitor, "get", "hit");
    assert_eq!(hits.len(), 1, "{hits:?}");
    let exemplar = hits.values().next().unwrap();
    assert_eq!(
        exemplar.labels,
        labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
    );
    assert!(
        exemplars(&monitor, "get", "miss").is_empty(),
        "a trace id too long costs the exemplar"
    );
    let totals = monitor.totals();
    assert_eq!(totals.series[0][1].count, 1, "... never the record");
}
