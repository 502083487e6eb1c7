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
//! Module map: `shard` and `recorder` are the hot path; `latency` and `buckets` the histogram layouts;
//! `totals` sums shards; `windows` (over `seqlock` and `clock`) keeps rolling windows; `patterns` reduces
//! keys to patterns; `alerts` judges them; `profiler` samples stacks for flamegraphs; `view` reads
//! everything once for the renderers in `render` (Prometheus text, OpenMetrics, JSON); `state` exports and
//! imports snapshots for hot swaps; `config` parses configuration; `ffi` is the C ABI; `cache`,
//! `monitored` and `endpoint` are the Rust API for cache systems; `exporter` is the
//! optional HTTP server.

#![warn(missing_docs)]

pub mod alerts;
pub mod buckets;
pub mod cache;
pub mod clock;
mod collector;
pub mod config;
mod endpoint;
pub mod error;
pub mod exporter;
pub mod ffi;
mod history;
pub mod latency;
mod lifecycle;
pub mod module;
mod monitor;
pub mod monitored;
pub mod operation;
pub mod patterns;
pub mod profiler;
mod recorder;
pub mod render;
mod seqlock;
mod shard;
pub mod state;
mod storage;
mod sync;
pub mod totals;
pub mod view;
pub mod windows;

pub use cache::{Cache, CacheConfig, CacheError, CacheStatistics, FileCache, MemoryCache};
pub use clock::{Clock, ManualClock};
pub use collector::MonitorCollector;
pub use config::Config;
pub use endpoint::MetricsEndpoint;
pub use error::Error;
pub use monitor::{InFlight, Monitor};
pub use monitored::{MonitorRef, MonitoredCache, MonitoredCacheBuilder};
pub use operation::{Gauge, Operation, Outcome};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
