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
//! `totals` sums shards; `config` parses configuration; `render` writes expositions; `ffi` is the C ABI;
//! `exporter` is the optional HTTP server.

pub mod buckets;
pub mod config;
pub mod error;
pub mod exporter;
pub mod ffi;
pub mod latency;
mod monitor;
pub mod operation;
pub mod patterns;
mod recorder;
pub mod render;
mod shard;
pub mod totals;

pub use config::Config;
pub use error::Error;
pub use monitor::{InFlight, Monitor};
pub use operation::{Gauge, Operation, Outcome};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
