//! [`MemoryCache`]: an in-memory LRU cache with TTLs and entry and byte limits.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, CacheConfig, CacheError, CacheStatistics};
use crate::sync::Mutex;

struct Entry {
    bytes: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn size(&self, key: &str) -> u64 {
        (key.len() + self.bytes.len()) as u64
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

struct State {
    entries: LruCache<String, Entry>,
    bytes: u64,
    statistics: CacheStatistics,
}

impl State {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.pop(key)?;
        self.bytes -= entry.size(key);
        Some(entry)
    }

    /// The live entry under `key` (marking it recently used), dropping it if expired.
    fn live(&mut self, key: &str) -> Option<&Entry> {
        if self.entries.peek(key)?.expired(Instant::now()) {
            self.remove(key);
            return None;
        }
        self.entries.get(key)
    }
}

/// An in-memory LRU cache: values are stored serialised (JSON), as a shared cache would.
/// Cloning shares the cache.
#[derive(Clone)]
pub struct MemoryCache {
    state: Arc<Mutex<State>>,
    config: Arc<CacheConfig>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl MemoryCache {
    /// An empty cache with these limits.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                entries: LruCache::unbounded(),
                bytes: 0,
                statistics: CacheStatistics::default(),
            })),
            config: Arc::new(config),
        }
    }

    fn store(&self, key: &str, bytes: Vec<u8>, ttl: Option<Duration>) {
        let expires = ttl.or(self.config.ttl).map(|ttl| Instant::now() + ttl);
        let entry = Entry { bytes, expires };
        let mut state = self.state.lock();
        state.remove(key);
        state.bytes += entry.size(key);
        state.entries.put(key.to_owned(), entry);
        state.statistics.writes += 1;
        let max_entries = NonZeroUsize::new(self.config.max_entries).map_or(1, NonZeroUsize::get);
        while state.entries.len() > max_entries || (state.bytes > self.config.max_size_bytes && state.entries.len() > 1)
        {
            let Some((evicted_key, evicted)) = state.entries.pop_lru() else {
                break;
            };
            state.bytes -= evicted.size(&evicted_key);
            state.statistics.evictions += 1;
        }
    }
}

impl Cache for MemoryCache {
    async fn get<T>(&self, key: &str) -> Result<Option<T>, CacheError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let bytes = {
            let mut state = self.state.lock();
            let bytes = state.live(key).map(|entry| entry.bytes.clone());
            match bytes {
                Some(_) => state.statistics.hits += 1,
                None => state.statistics.misses += 1,
            }
            bytes
        };
        Ok(bytes.map(|bytes| serde_json::from_slice(&bytes)).transpose()?)
    }

    async fn put<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<(), CacheError>
    where
        T: Serialize + Send + Sync,
    {
        self.store(key, serde_json::to_vec(value)?, ttl);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let mut state = self.state.lock();
        let removed = state.remove(key).is_some();
        if removed {
            state.statistics.removals += 1;
        }
        Ok(removed)
    }

    async fn contains(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.state.lock().live(key).is_some())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        let mut state = self.state.lock();
        state.entries.clear();
        state.bytes = 0;
        Ok(())
    }

    async fn statistics(&self) -> Result<CacheStatistics, CacheError> {
        let state = self.state.lock();
        Ok(CacheStatistics {
            entry_count: state.entries.len() as u64,
            total_bytes: state.bytes,
            ..state.statistics
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cache::tests::block_on;

    #[test]
    fn values_round_trip_and_count() {
        block_on(async {
            let cache = MemoryCache::default();
            cache.put("user:1", &vec![1, 2, 3], None).await.unwrap();
            assert_eq!(cache.get::<Vec<i32>>("user:1").await.unwrap(), Some(vec![1, 2, 3]));
            assert_eq!(cache.get::<Vec<i32>>("user:2").await.unwrap(), None);
            assert!(cache.contains("user:1").await.unwrap());
            assert!(cache.delete("user:1").await.unwrap());
            assert!(!cache.delete("user:1").await.unwrap());
            let stats = cache.statistics().await.unwrap();
            assert_eq!((stats.hits, stats.misses, stats.writes, stats.removals), (1, 1, 1, 1));
            assert_eq!((stats.entry_count, stats.total_bytes), (0, 0));
        });
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted() {
        block_on(async {
            let cache = MemoryCache::new(CacheConfig {
                max_entries: 2,
                ..CacheConfig::default()
            });
            cache.put("a", &1, None).await.unwrap();
            cache.put("b", &2, None).await.unwrap();
            let _ = cache.get::<i32>("a").await.unwrap();
            cache.put("c", &3, None).await.unwrap();
            assert!(cache.contains("a").await.unwrap());
            assert!(!cache.contains("b").await.unwrap(), "b was least recently used");
            let stats = cache.statistics().await.unwrap();
            assert_eq!((stats.evictions, stats.entry_count), (1, 2));
        });
    }

    #[test]
    fn expired_entries_are_misses() {
        block_on(async {
            let cache = MemoryCache::default();
            cache.put("k", &"v", Some(Duration::ZERO)).await.unwrap();
            assert_eq!(cache.get::<String>("k").await.unwrap(), None);
            assert_eq!(cache.statistics().await.unwrap().entry_count, 0);
        });
    }

    #[test]
    fn the_byte_limit_holds() {
        block_on(async {
            let cache = MemoryCache::new(CacheConfig {
                max_size_bytes: 100,
                ..CacheConfig::default()
            });
            for i in 0..50 {
                cache.put(&format!("key{i}"), &"0123456789", None).await.unwrap();
            }
            let stats = cache.statistics().await.unwrap();
            assert!(stats.total_bytes <= 100, "{stats:?}");
            assert!(stats.evictions > 0);
        });
    }
}
