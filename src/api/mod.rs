//! The Rust API for cache systems: the `Cache` interface, `MonitoredCache` and its builder,
//! `MetricsEndpoint` (both render under `Monitor`'s names, `renders.rs`), and, each behind a Cargo
//! feature, two caches (`caches`), the `prometheus` collector (`prometheus-collector`) and the
//! `abi_stable` module for hosts that load the library at run time (`abi-stable`).

pub mod cache;
#[cfg(feature = "prometheus-collector")]
pub(crate) mod collector;
pub(crate) mod endpoint;
#[cfg(feature = "abi-stable")]
pub mod module;
pub mod monitored;
mod renders;
