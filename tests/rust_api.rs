//! The Rust API as a cache system links it (no `.so` involved): the seed's example, `MonitoredCache` over
//! real caches, spans, in-flight tracking, the builder, `MetricsEndpoint`, and the `prometheus` collector
//! inside a host's own registry.

mod support;

#[path = "../examples/monitored_cache.rs"]
mod seed_example;

use std::sync::Arc;
use std::time::Duration;

use cache_monitor::{
    Cache, CacheConfig, CacheError, CacheStatistics, FileCache, MemoryCache, MetricsEndpoint, Monitor,
    MonitorCollector, MonitorHandle, MonitoredCache, MonitoredCacheBuilder, Operation, Outcome,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use support::{assert_promtool_accepts, exposition};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn count(monitor: &Monitor, operation: Operation, outcome: Outcome) -> u64 {
    monitor.totals().series[operation.code() as usize][outcome as usize].count
}

#[test]
fn the_seed_example_runs() {
    seed_example::main().expect("the seed's example runs to completion");
}

/// A cache whose every operation fails.
struct Broken;

impl Cache for Broken {
    async fn get<T: DeserializeOwned + Send + 'static>(&self, _: &str) -> Result<Option<T>, CacheError> {
        Err(std::io::Error::other("disk on fire").into())
    }
    async fn put<T: Serialize + Send + Sync>(&self, _: &str, _: &T, _: Option<Duration>) -> Result<(), CacheError> {
        Err(std::io::Error::other("disk on fire").into())
    }
    async fn delete(&self, _: &str) -> Result<bool, CacheError> {
        Err(std::io::Error::other("disk on fire").into())
    }
    async fn contains(&self, _: &str) -> Result<bool, CacheError> {
        Err(std::io::Error::other("disk on fire").into())
    }
    async fn clear(&self) -> Result<(), CacheError> {
        Err(std::io::Error::other("disk on fire").into())
    }
    async fn statistics(&self) -> Result<CacheStatistics, CacheError> {
        Ok(CacheStatistics::default())
    }
}

#[test]
fn every_operation_is_recorded_with_its_outcome_and_key_pattern() {
    runtime().block_on(async {
        let cache = MonitoredCache::new(MemoryCache::default(), "test");
        cache.put("user:1", &"alice", None).await.unwrap();
        assert_eq!(cache.get::<String>("user:1").await.unwrap().as_deref(), Some("alice"));
        assert_eq!(cache.get::<String>("user:2").await.unwrap(), None);
        assert!(cache.contains("user:1").await.unwrap());
        assert!(!cache.contains("session:9").await.unwrap());
        assert!(cache.delete("user:1").await.unwrap());
        cache.clear().await.unwrap();
        let monitor = cache.monitor();
        for (operation, outcome) in [
            (Operation::PUT, Outcome::Ok),
            (Operation::GET, Outcome::Hit),
            (Operation::GET, Outcome::Miss),
            (Operation::CONTAINS, Outcome::Hit),
            (Operation::CONTAINS, Outcome::Miss),
            (Operation::DELETE, Outcome::Ok),
            (Operation::CLEAR, Outcome::Ok),
        ] {
            assert_eq!(count(monitor, operation, outcome), 1, "{operation:?} {outcome:?}");
        }
        let report = cache.hit_rate_report();
        let user = report
            .key_patterns
            .iter()
            .find(|p| p.pattern == "user:*")
            .expect("user pattern");
        assert_eq!((user.rate.hits, user.rate.misses, user.total_accesses), (2, 1, 5));

        let broken = MonitoredCache::new(Broken, "broken");
        assert!(broken.get::<String>("k:1").await.is_err());
        assert!(broken.put("k:1", &1, None).await.is_err());
        assert_eq!(count(broken.monitor(), Operation::GET, Outcome::Error), 1);
        assert_eq!(count(broken.monitor(), Operation::PUT, Outcome::Error), 1);
    });
}

/// A cache whose `get` waits until the test lets it finish.
struct Gate(Arc<tokio::sync::Notify>);

impl Cache for Gate {
    async fn get<T: DeserializeOwned + Send + 'static>(&self, _: &str) -> Result<Option<T>, CacheError> {
        self.0.notified().await;
        Ok(None)
    }
    async fn put<T: Serialize + Send + Sync>(&self, _: &str, _: &T, _: Option<Duration>) -> Result<(), CacheError> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<bool, CacheError> {
        Ok(false)
    }
    async fn contains(&self, _: &str) -> Result<bool, CacheError> {
        Ok(false)
    }
    async fn clear(&self) -> Result<(), CacheError> {
        Ok(())
    }
    async fn statistics(&self) -> Result<CacheStatistics, CacheError> {
        Ok(CacheStatistics::default())
    }
}

#[test]
fn an_operation_counts_in_flight_until_it_finishes() {
    runtime().block_on(async {
        let gate = Arc::new(tokio::sync::Notify::new());
        let cache = Arc::new(MonitoredCache::new(Gate(gate.clone()), "gated"));
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get::<String>("slow:1").await }
        });
        while cache.stats_report().operations_in_flight == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.stats_report().operations_in_flight, 1);
        gate.notify_one();
        assert_eq!(waiting.await.unwrap().unwrap(), None);
        assert_eq!(cache.stats_report().operations_in_flight, 0);
        assert_eq!(count(cache.monitor(), Operation::GET, Outcome::Miss), 1);
    });
}

/// An operation's duration is the time from its start to its finish, in nanoseconds: at least the time it was
/// held open, and within the time measured around it (the stopwatch's calibration is good to well under
/// the 5% allowed).
#[test]
fn an_operation_is_timed_from_its_start_to_its_finish_in_nanoseconds() {
    runtime().block_on(async {
        let gate = Arc::new(tokio::sync::Notify::new());
        let cache = Arc::new(MonitoredCache::new(Gate(gate.clone()), "gated"));
        let around = std::time::Instant::now();
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get::<String>("slow:1").await }
        });
        while cache.stats_report().operations_in_flight == 0 {
            tokio::task::yield_now().await;
        }
        let held = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let held = held.elapsed();
        gate.notify_one();
        assert_eq!(waiting.await.unwrap().unwrap(), None);
        let around = around.elapsed();
        let series = &cache.monitor().totals().series[Operation::GET.code() as usize][Outcome::Miss as usize];
        assert_eq!(series.count, 1);
        let (recorded, held, around) = (series.sum_ns, held.as_nanos() as u64, around.as_nanos() as u64);
        assert!(
            recorded >= held,
            "recorded {recorded} ns for an operation held open {held} ns"
        );
        assert!(
            recorded <= around + around / 20,
            "recorded {recorded} ns for an operation inside {around} ns"
        );
    });
}

#[test]
fn statistics_set_the_gauges_and_evictions_become_evict_operations() {
    runtime().block_on(async {
        let inner = MemoryCache::new(CacheConfig {
            max_entries: 2,
            ..CacheConfig::default()
        });
        let cache = MonitoredCache::new(inner, "small");
        for i in 0..5 {
            cache.put(&format!("k:{i}"), &i, None).await.unwrap();
        }
        let stats = cache.statistics().await.unwrap();
        assert_eq!((stats.evictions, stats.entry_count), (3, 2));
        assert_eq!(count(cache.monitor(), Operation::EVICT, Outcome::Ok), 3);
        let _ = cache.statistics().await.unwrap();
        assert_eq!(
            count(cache.monitor(), Operation::EVICT, Outcome::Ok),
            3,
            "each eviction once"
        );
        let view = cache.monitor().view();
        assert_eq!(view.gauges, [stats.total_bytes, 2]);
        let evictions = &cache.monitor().totals().series[Operation::EVICT.code() as usize][Outcome::Ok.code() as usize];
        assert_eq!(
            (evictions.timed(), evictions.untimed),
            (0, 3),
            "evictions have no duration: they stay out of the histogram and the quantiles"
        );
        let text = cache.render_prometheus();
        assert!(
            text.contains("operations_total{operation=\"evict\",result=\"ok\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("operation_duration_seconds_count{operation=\"evict\",result=\"ok\"} 0\n"),
            "{text}"
        );
    });
}

#[test]
fn a_file_cache_is_monitored_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let inner = FileCache::new(dir.path(), CacheConfig::default()).await.unwrap();
        let cache = MonitoredCacheBuilder::new(inner).build().unwrap();
        cache
            .put("path/a/b", &vec![1u8, 2, 3], Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(cache.get::<Vec<u8>>("path/a/b").await.unwrap(), Some(vec![1, 2, 3]));
        let view = cache.monitor().view();
        assert!(
            view.patterns
                .iter()
                .any(|p| p.pattern == "path/*" && p.counts == [1, 0, 1, 0])
        );
    });
}

#[test]
fn the_builder_shares_monitors_configures_and_profiles() {
    runtime().block_on(async {
        let shared = Arc::new(Monitor::new());
        let first = MonitoredCacheBuilder::new(MemoryCache::default())
            .with_monitor(shared.clone())
            .with_config(r#"{"namespace": "shop"}"#)
            .with_sampling_rate(1)
            .build()
            .unwrap();
        let second = MonitoredCacheBuilder::new(MemoryCache::default())
            .with_monitor(shared.clone())
            .build()
            .unwrap();
        first.put("a:1", &1, None).await.unwrap();
        second.put("a:2", &2, None).await.unwrap();
        assert_eq!(
            count(&shared, Operation::PUT, Outcome::Ok),
            2,
            "both caches record into one monitor"
        );
        let endpoint = MetricsEndpoint::new(first.clone());
        assert!(
            endpoint
                .render_prometheus()
                .contains("shop_operations_total{operation=\"put\",result=\"ok\"} 2")
        );
        let folded = endpoint.render_flamegraph_folded();
        assert!(
            folded.contains("the_builder_shares_monitors_configures_and_profiles"),
            "{folded}"
        );
        assert!(
            folded.lines().all(|line| line.contains("cache_monitor::put")),
            "{folded}"
        );
        assert!(endpoint.render_flamegraph_svg().unwrap().contains("</svg>"));
        let json: serde_json::Value = serde_json::from_str(&endpoint.render_stats_json()).unwrap();
        assert_eq!(json["latency"][1]["operation"], "put");

        let refused = MonitoredCacheBuilder::new(MemoryCache::default())
            .with_config(r#"{"colour": 1}"#)
            .build();
        assert!(refused.is_err(), "a bad configuration fails the build");

        let global = MonitoredCacheBuilder::new(MemoryCache::default())
            .with_global_monitor()
            .build()
            .unwrap();
        global.put("g:1", &1, None).await.unwrap();
        assert!(count(Monitor::global(), Operation::PUT, Outcome::Ok) >= 1);
    });
}

#[test]
fn the_collector_joins_a_host_registry_beside_its_own_metrics() {
    let monitor = Arc::new(Monitor::new());
    monitor.record(Operation::GET, Outcome::Hit, 1_500, b"user:1").unwrap();
    monitor
        .record(Operation::GET, Outcome::Miss, 2_500_000, b"user:2")
        .unwrap();
    let registry = prometheus::Registry::new();
    let host_requests = prometheus::IntCounter::new("host_requests_total", "The host's own requests.").unwrap();
    host_requests.inc_by(3);
    registry.register(Box::new(host_requests.clone())).unwrap();
    registry
        .register(Box::new(
            MonitorCollector::new(MonitorHandle::Shared(monitor.clone())).unwrap(),
        ))
        .unwrap();

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    let parsed = exposition::parse(&text);
    assert_eq!(parsed.value("host_requests_total", &[]), Some(3.0));
    let labels = [("operation", "get"), ("result", "hit")];
    assert_eq!(parsed.value("cuenv_cache_operations_total", &labels), Some(1.0));
    let bucket = [("operation", "get"), ("result", "miss"), ("le", "0.001")];
    assert_eq!(
        parsed.value("cuenv_cache_operation_duration_seconds_bucket", &bucket),
        Some(0.0)
    );
    let bucket = [("operation", "get"), ("result", "miss"), ("le", "0.0025")];
    assert_eq!(
        parsed.value("cuenv_cache_operation_duration_seconds_bucket", &bucket),
        Some(1.0),
        "2.5 ms <= 2.5 ms"
    );
    assert_eq!(
        parsed.value(
            "cuenv_cache_pattern_operations_total",
            &[("pattern", "user:*"), ("result", "hit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        parsed.families.get("cuenv_cache_latency_seconds").map(String::as_str),
        Some("summary")
    );

    // Every sample our own renderer writes, the registry's encoder writes with the same value.
    let own = exposition::parse(&monitor.render_prometheus());
    for sample in &own.samples {
        let labels: Vec<(&str, &str)> = sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let theirs = parsed.value(&sample.name, &labels);
        let same = theirs.is_some_and(|v| v == sample.value || (v.is_nan() && sample.value.is_nan()));
        assert!(
            same,
            "{} {:?}: ours {}, registry {:?}",
            sample.name, sample.labels, sample.value, theirs
        );
    }
    assert_promtool_accepts(&text);
}

#[test]
fn linking_the_crate_involves_no_shared_library() {
    Monitor::global().record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        !maps.contains("libcache_monitor.so"),
        "the test binary links the rlib statically"
    );
}
