//! Every public name this crate renamed still compiles, and means what its replacement means (see
//! CHANGELOG.md). Code written against the old names, such as cuenv's, keeps building with a deprecation
//! warning; this file allows them.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Duration;

use cache_monitor::{
    Cache, CacheError, CacheStatistics, Clock, ManualClock, MetricsEndpoint, Monitor, MonitorHandle, MonitorRef,
    MonitoredCacheBuilder, Operation, Outcome,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A cache that holds nothing: enough to build a `MonitoredCache` without a runtime or a feature.
struct Nothing;

impl Cache for Nothing {
    async fn get<T: DeserializeOwned + Send + 'static>(&self, _: &str) -> Result<Option<T>, CacheError> {
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

/// A monitor on a clock that does not move, with a few records and sampling on, so two renders agree.
fn monitor() -> Arc<Monitor> {
    let monitor = Arc::new(Monitor::with_clock(Clock::Manual(ManualClock::starting_at(1_000))));
    monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
    monitor.record(Operation::GET, Outcome::Hit, 1_500, b"user:1").unwrap();
    monitor.record(Operation::GET, Outcome::Miss, 2_500, b"user:2").unwrap();
    monitor
}

/// A JSON report without the time it was made.
fn report(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["generated_at_unix_seconds"] = serde_json::Value::Null;
    value
}

#[test]
fn monitored_cache_renders_keep_their_seed_names() {
    let cache = MonitoredCacheBuilder::new(Nothing)
        .with_monitor(monitor())
        .build()
        .unwrap();
    assert_eq!(cache.metrics_text(), cache.render_prometheus());
    assert!(cache.metrics_text().contains(r#"operation="get",result="hit"} 1"#));
    assert_eq!(cache.flamegraph_data(), cache.render_flamegraph_folded());
    assert!(cache.flamegraph_data().contains(";cache_monitor::get "));
}

#[test]
fn metrics_endpoint_renders_keep_their_seed_names() {
    let endpoint = MetricsEndpoint::for_monitor(monitor());
    assert_eq!(endpoint.prometheus_metrics(), endpoint.render_prometheus());
    assert_eq!(endpoint.openmetrics(), endpoint.render_openmetrics());
    assert_eq!(
        report(&endpoint.hit_rate_json().unwrap()),
        report(&endpoint.render_hit_rate_json())
    );
    assert_eq!(
        report(&endpoint.stats_json().unwrap()),
        report(&endpoint.render_stats_json())
    );
    assert_eq!(endpoint.flamegraph(), endpoint.render_flamegraph_folded());
    assert!(endpoint.flamegraph_svg().unwrap().contains("</svg>"));
}

#[test]
fn monitor_ref_is_the_monitor_handle() {
    let shared = monitor();
    let old: MonitorRef = MonitorRef::Shared(Arc::clone(&shared));
    let new: MonitorHandle = old.clone();
    assert!(std::ptr::eq(&*new, &*shared));
    assert!(std::ptr::eq(&*MonitorRef::Global, Monitor::global()));
    let endpoint = MetricsEndpoint::for_monitor(old);
    assert_eq!(endpoint.render_prometheus(), shared.render_prometheus());
}

#[cfg(feature = "exporter")]
#[test]
fn shared_monitor_is_the_monitor_handle() {
    use cache_monitor::exporter::{Exporter, SharedMonitor};

    let shared = monitor();
    let old = SharedMonitor::Shared(Arc::clone(&shared));
    let exporter = Exporter::start(old, "127.0.0.1:0").unwrap();
    exporter.stop();
    let handle: MonitorHandle = SharedMonitor::from(shared);
    assert!(matches!(handle, MonitorHandle::Shared(_)));
}
