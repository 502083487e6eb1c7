//! The seed's monitoring example, adapted to this crate: a file-backed cache wrapped in a
//! `MonitoredCache`, a mixed load of sequential, hot, random, batch and TTL access, then every report.
//!
//! `cargo run --example monitored_cache`
//!
//! Adaptations: the seed's `ProductionCache` is this crate's `FileCache`; `CacheConfig` has no cleanup
//! interval (expired entries go on access); hit rates are `Option<f64>` (`None` without lookups); the
//! endpoint's renders are named as `Monitor` names them (`render_prometheus()`, `render_hit_rate_json()`,
//! `render_stats_json()`, `render_flamegraph_folded()`; the seed's `prometheus_metrics()`, `hit_rate_json()`,
//! `stats_json()` and `flamegraph()` still compile, deprecated).

use std::time::Duration;

use cache_monitor::{Cache, CacheConfig, FileCache, MetricsEndpoint, MonitoredCacheBuilder};
use tokio::time::sleep;
use tracing::{info, warn};

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{:.2}%", r * 100.0))
}

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A host may already have installed a subscriber (the tests do): then keep it.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .try_init();

    info!("Starting cache monitoring example");

    let cache_dir = tempfile::tempdir()?;
    let config = CacheConfig {
        max_size_bytes: 100 * 1024 * 1024, // 100MB
        max_entries: 10_000,
        ttl: Some(Duration::from_secs(3600)),
    };
    let base_cache = FileCache::new(cache_dir.path(), config).await?;

    // A monitored cache with profiling enabled.
    let monitored_cache = MonitoredCacheBuilder::new(base_cache)
        .with_service_name("cuenv-example")
        .with_profiling()
        .build()?;

    let metrics_endpoint = MetricsEndpoint::new(monitored_cache.clone());

    info!("Generating cache load...");
    let load_handle = tokio::spawn(async move {
        info!("Pattern 1: Sequential access");
        for i in 0..100 {
            let key = format!("sequential:{}", i);
            let value = format!("value-{}", i);
            if let Err(e) = monitored_cache.put(&key, &value, None).await {
                warn!("Failed to put {}: {}", key, e);
            }
            // Read back with 80% probability (cache hits).
            if fastrand::u8(0..100) < 80 {
                let _: Option<String> = monitored_cache.get(&key).await.ok().flatten();
            }
        }

        info!("Pattern 2: Hot keys");
        let hot_keys = ["hot:popular", "hot:trending", "hot:featured"];
        for _ in 0..200 {
            let key = hot_keys[fastrand::usize(0..hot_keys.len())];
            let _: Option<String> = monitored_cache.get(key).await.ok().flatten();
            if fastrand::u8(0..100) < 10 {
                let _ = monitored_cache.put(key, &"updated-value", None).await;
            }
        }

        info!("Pattern 3: Random access");
        for _ in 0..100 {
            let key = format!("random:{}", fastrand::u32(0..1000));
            let result: Option<String> = monitored_cache.get(&key).await.ok().flatten();
            if result.is_none() {
                let _ = monitored_cache.put(&key, &"random-value", None).await;
            }
        }

        info!("Pattern 4: Batch operations");
        let batch_prefix = "batch";
        for i in 0..50 {
            let key = format!("{}:{}", batch_prefix, i);
            let _ = monitored_cache.put(&key, &format!("batch-value-{}", i), None).await;
        }
        for _ in 0..3 {
            for i in 0..50 {
                let key = format!("{}:{}", batch_prefix, i);
                let _: Option<String> = monitored_cache.get(&key).await.ok().flatten();
            }
            sleep(Duration::from_millis(100)).await;
        }

        info!("Pattern 5: TTL expiration");
        for i in 0..10 {
            let key = format!("ttl:{}", i);
            let ttl = Duration::from_secs(i + 1);
            let _ = monitored_cache.put(&key, &"expires-soon", Some(ttl)).await;
        }

        info!("Load generation complete!");
        if let Ok(stats) = monitored_cache.statistics().await {
            info!("Final cache statistics:");
            info!("  Hits: {}", stats.hits);
            info!("  Misses: {}", stats.misses);
            info!(
                "  Hit rate: {:.2}%",
                (stats.hits as f64 / (stats.hits + stats.misses) as f64) * 100.0
            );
            info!("  Writes: {}", stats.writes);
            info!("  Entries: {}", stats.entry_count);
            info!("  Size: {} bytes", stats.total_bytes);
        }

        let report = monitored_cache.hit_rate_report();
        info!("Hit rate analysis:");
        info!("  1 minute: {}", percent(report.one_minute));
        info!("  5 minutes: {}", percent(report.five_minutes));
        if !report.key_patterns.is_empty() {
            info!("Top key patterns:");
            for (i, pattern) in report.key_patterns.iter().take(5).enumerate() {
                info!(
                    "  {}. {} - {} hit rate ({} accesses)",
                    i + 1,
                    pattern.pattern,
                    percent(pattern.rate.hit_rate),
                    pattern.total_accesses
                );
            }
        }
        if !report.operation_types.is_empty() {
            info!("Operation statistics:");
            for op in &report.operation_types {
                info!(
                    "  {} - {} hit rate ({} calls)",
                    op.operation,
                    percent(op.rate.hit_rate),
                    op.total_calls
                );
            }
        }
    });
    load_handle.await?;

    info!("Cache monitoring example complete!");

    info!("=== Prometheus Metrics ===");
    let prometheus_metrics = metrics_endpoint.render_prometheus();
    println!(
        "Metrics excerpt:\n{}",
        prometheus_metrics.lines().take(10).collect::<Vec<_>>().join("\n")
    );

    info!("=== Hit Rate Analysis ===");
    let hit_rate_json = metrics_endpoint.render_hit_rate_json();
    println!("Hit rate data:\n{}", hit_rate_json);

    info!("=== Real-time Stats ===");
    let stats_json = metrics_endpoint.render_stats_json();
    println!("Stats data:\n{}", stats_json);

    info!("=== Flamegraph Data ===");
    let flamegraph = metrics_endpoint.render_flamegraph_folded();
    if !flamegraph.is_empty() {
        let lines: Vec<&str> = flamegraph.lines().take(5).collect();
        println!("Flamegraph sample:\n{}", lines.join("\n"));
    } else {
        println!("No flamegraph data available (profiling may not be active)");
    }

    info!("Monitoring data successfully collected and displayed!");
    Ok(())
}
