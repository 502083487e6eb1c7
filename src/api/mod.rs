//! The Rust API for cache systems: the `Cache` interface and two caches, `MonitoredCache` and its builder,
//! `MetricsEndpoint`, the `prometheus` collector, and the `abi_stable` module for hosts that load the
//! library at run time.

pub mod cache;
#[cfg(feature = "prometheus-collector")]
pub(crate) mod collector;
pub(crate) mod endpoint;
#[cfg(feature = "abi-stable")]
pub mod module;
pub mod monitored;
mod renders;
