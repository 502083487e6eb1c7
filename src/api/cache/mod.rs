//! The cache interface a monitored host implements, and two real caches for tests and examples.
//!
//! [`Cache`] is the shape of the cuenv build cache's interface: async `get`/`put` of serde values with an
//! optional TTL, `delete`, `contains`, `clear` and `statistics`. [`MonitoredCache`](crate::MonitoredCache)
//! wraps any implementation without changing it.

#[cfg(feature = "caches")]
mod file;
#[cfg(feature = "caches")]
mod memory;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "caches")]
pub use file::FileCache;
#[cfg(feature = "caches")]
pub use memory::MemoryCache;

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The value could not be serialised or deserialised.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The storage failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The monitor refused the operation (an unregistered operation code).
    #[error("monitor: {0}")]
    Monitor(#[from] crate::error::Error),
}

/// What a cache reports about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStatistics {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing (or an expired entry).
    pub misses: u64,
    /// Entries written.
    pub writes: u64,
    /// Entries removed on request.
    pub removals: u64,
    /// Entries removed by the cache to respect its limits.
    pub evictions: u64,
    /// Entries held now.
    pub entry_count: u64,
    /// Bytes held now (keys and serialised values).
    pub total_bytes: u64,
}

/// Limits of a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// The most entries; the least recently used go first beyond it.
    pub max_entries: usize,
    /// The most bytes held; the least recently used go first beyond it.
    pub max_size_bytes: u64,
    /// The time to live of entries put without one.
    pub ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_size_bytes: 100 * 1024 * 1024,
            ttl: None,
        }
    }
}

/// An async key-value cache of serde values.
///
/// Methods return `Send` futures, so a cache can be used from any multi-threaded runtime.
pub trait Cache: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    fn get<T>(&self, key: &str) -> impl Future<Output = Result<Option<T>, CacheError>> + Send
    where
        T: DeserializeOwned + Send + 'static;

    /// Stores `value` under `key`, expiring after `ttl` (or the cache's default).
    fn put<T>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), CacheError>> + Send
    where
        T: Serialize + Send + Sync;

    /// Removes `key`; whether it was present.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, CacheError>> + Send;

    /// Whether a live entry is under `key`.
    fn contains(&self, key: &str) -> impl Future<Output = Result<bool, CacheError>> + Send;

    /// Removes every entry.
    fn clear(&self) -> impl Future<Output = Result<(), CacheError>> + Send;

    /// What the cache reports about itself.
    fn statistics(&self) -> impl Future<Output = Result<CacheStatistics, CacheError>> + Send;
}

#[cfg(all(test, feature = "caches"))]
pub(crate) mod tests {
    /// Runs a cache future to completion on a fresh single-threaded runtime (file I/O needs one).
    pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }
}
