//! # cache-monitor
//!
//! Cache observability that is cheap enough to leave on: every cache operation (get, put, delete,
//! contains, clear, evict, load, and custom ones) is recorded with its result and duration into
//! per-thread, cache-line padded atomics, and rendered on demand as Prometheus metrics.
//!
//! The same crate builds a dynamic library with a stable C ABI ([`ffi`], header `include/cache_monitor.h`),
//! a static library, and this Rust library, whose entry point is [`Monitor`]:
//!
//! ```
//! use cache_monitor::{Monitor, Operation, Outcome};
//!
//! let monitor = Monitor::new();
//! monitor.record(Operation::GET, Outcome::Hit, 1_500, b"user:42").unwrap();
//! let text = monitor.render_prometheus();
//! assert!(text.contains(r#"cuenv_cache_operations_total{operation="get",result="hit"} 1"#));
//! ```
//!
//! Module map, in layers: a module uses only the modules listed before it (`ARCHITECTURE.md`;
//! `tests/layering.rs` checks every file).
//!
//! - [`config`]: the configuration, one file per section; uses nothing else of the crate;
//! - [`recording`]: the hot path (per-thread `shard`s written by the `recorder`), the histogram layouts
//!   (`buckets`, `latency`) and `totals`, the shards summed; uses `config` (and the atomics of `sync`) only;
//! - [`error`]: the Rust API's [`Error`];
//! - [`analysis`]: rolling `windows` (over sequence-locked rings and a `clock`), key `patterns`, the hit
//!   rate, `alerts`, and the `view` every renderer reads;
//! - [`profiler`]: sampled stacks for flamegraphs;
//! - [`state`]: the read model (counts since the last reset) and the wire format of state snapshots;
//! - [`render`]: Prometheus text, OpenMetrics and JSON, pure functions of a view;
//! - `monitor`: [`Monitor`], tying the above together, [`MonitorHandle`], and [`check`], which checks a
//!   state file without using it;
//! - `exporter`: the HTTP server (Cargo feature `exporter`);
//! - [`ffi`]: the C ABI; [`api`]: the Rust API for cache systems ([`MonitoredCache`], [`MetricsEndpoint`],
//!   the caches of feature `caches`, the `prometheus` collector of feature `prometheus-collector`, the
//!   `abi_stable` module of feature `abi-stable`).
//!
//! Every feature is on by default; `default-features = false` leaves out the exporter (hyper, tokio), the
//! two caches (lru, tokio), the `abi_stable` module and the `prometheus` collector.

#![warn(missing_docs)]

pub mod analysis;
pub mod api;
pub mod config;
pub mod error;
#[cfg(feature = "exporter")]
pub mod exporter;
pub mod ffi;
mod lifecycle;
mod monitor;
mod os_thread;
pub mod profiler;
pub mod recording;
pub mod render;
pub mod state;
mod sync;

pub use analysis::{alerts, view, windows};
#[cfg(feature = "abi-stable")]
pub use api::module;
pub use api::{cache, monitored};
pub use recording::{buckets, latency, operation, totals};
pub use recording::{clock, patterns};

#[cfg(feature = "prometheus-collector")]
pub use api::collector::MonitorCollector;
pub use api::endpoint::MetricsEndpoint;
pub use cache::{Cache, CacheConfig, CacheError, CacheStatistics};
#[cfg(feature = "caches")]
pub use cache::{FileCache, MemoryCache};
pub use clock::{Clock, ManualClock};
pub use config::Config;
pub use error::Error;
pub use monitor::check;
pub use monitor::{InFlight, Monitor, MonitorHandle};
#[allow(deprecated)]
pub use monitored::MonitorRef;
pub use monitored::{MonitoredCache, MonitoredCacheBuilder};
pub use operation::{Gauge, Operation, Outcome};

// The README's examples use the exporter and the caches.
#[cfg(all(doctest, feature = "exporter", feature = "caches"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
