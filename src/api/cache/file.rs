//! [`FileCache`]: a cache of one JSON file per entry in a directory, surviving restarts.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Cache, CacheConfig, CacheError, CacheStatistics};
use crate::sync::Mutex;

/// File name extension of entries.
const EXTENSION: &str = "entry";

/// What an entry file holds: the key (file names are hashes, so collisions are detected), the expiry,
/// and the value.
#[derive(Serialize, Deserialize)]
struct Stored<V> {
    key: String,
    expires_at_unix_ms: Option<u64>,
    value: V,
}

/// A cache of one file per entry under a directory. Limits are enforced on `put` by removing the least
/// recently written entries (a directory scan: meant for tests, examples and small caches). Cloning
/// shares the cache.
#[derive(Clone)]
pub struct FileCache {
    dir: Arc<PathBuf>,
    config: Arc<CacheConfig>,
    statistics: Arc<Mutex<CacheStatistics>>,
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// FNV-1a: a stable file name for a key, whatever its bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl FileCache {
    /// A cache in `dir` (created if missing) with these limits.
    pub async fn new(dir: impl Into<PathBuf>, config: CacheConfig) -> Result<Self, CacheError> {
        let dir = dir.into();
        tokio::fs::create_dir_all(&dir).await?;
        Ok(Self {
            dir: Arc::new(dir),
            config: Arc::new(config),
            statistics: Arc::new(Mutex::new(CacheStatistics::default())),
        })
    }

    /// The directory holding the entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{:016x}-{}.{EXTENSION}", fnv1a(key.as_bytes()), key.len()))
    }

    /// The live entry under `key`, removing it if it expired.
    async fn read<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, CacheError> {
        let path = self.path(key);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let stored: Stored<V> = serde_json::from_slice(&bytes)?;
        if stored.key != key {
            return Ok(None);
        }
        if stored
            .expires_at_unix_ms
            .is_some_and(|at| at <= unix_ms(SystemTime::now()))
        {
            remove_file(&path).await?;
            return Ok(None);
        }
        Ok(Some(stored.value))
    }

    /// Entries as `(path, bytes, modified)`.
    async fn entries(&self) -> Result<Vec<(PathBuf, u64, SystemTime)>, CacheError> {
        let mut entries = Vec::new();
        let mut dir = tokio::fs::read_dir(&*self.dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == EXTENSION) {
                let metadata = entry.metadata().await?;
                entries.push((path, metadata.len(), metadata.modified()?));
            }
        }
        Ok(entries)
    }

    async fn enforce_limits(&self) -> Result<(), CacheError> {
        let mut entries = self.entries().await?;
        entries.sort_by_key(|(_, _, modified)| std::cmp::Reverse(*modified));
        let (mut count, mut bytes) = (0usize, 0u64);
        for (path, size, _) in entries {
            count += 1;
            bytes += size;
            let over = count > self.config.max_entries.max(1) || (bytes > self.config.max_size_bytes && count > 1);
            if over && remove_file(&path).await? {
                self.statistics.lock().evictions += 1;
            }
        }
        Ok(())
    }
}

/// Removes a file; whether it was there.
async fn remove_file(path: &Path) -> Result<bool, CacheError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Cache for FileCache {
    async fn get<T>(&self, key: &str) -> Result<Option<T>, CacheError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let value = self.read::<T>(key).await?;
        let mut statistics = self.statistics.lock();
        match value {
            Some(_) => statistics.hits += 1,
            None => statistics.misses += 1,
        }
        Ok(value)
    }

    async fn put<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<(), CacheError>
    where
        T: Serialize + Send + Sync,
    {
        let expires = ttl.or(self.config.ttl).map(|ttl| unix_ms(SystemTime::now() + ttl));
        let bytes = serde_json::to_vec(&Stored {
            key: key.to_owned(),
            expires_at_unix_ms: expires,
            value,
        })?;
        let path = self.path(key);
        // Write then rename, so a reader never sees half an entry.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, &path).await?;
        self.statistics.lock().writes += 1;
        self.enforce_limits().await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed = self.read::<serde_json::Value>(key).await?.is_some() && remove_file(&self.path(key)).await?;
        if removed {
            self.statistics.lock().removals += 1;
        }
        Ok(removed)
    }

    async fn contains(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.read::<serde_json::Value>(key).await?.is_some())
    }

    async fn clear(&self) -> Result<(), CacheError> {
        for (path, _, _) in self.entries().await? {
            remove_file(&path).await?;
        }
        Ok(())
    }

    async fn statistics(&self) -> Result<CacheStatistics, CacheError> {
        let entries = self.entries().await?;
        let statistics = *self.statistics.lock();
        Ok(CacheStatistics {
            entry_count: entries.len() as u64,
            total_bytes: entries.iter().map(|(_, size, _)| size).sum(),
            ..statistics
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cache::tests::block_on;

    #[test]
    fn entries_survive_a_new_cache_on_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let cache = FileCache::new(dir.path(), CacheConfig::default()).await.unwrap();
            cache.put("path/a/b", &("x", 1), None).await.unwrap();
            let reopened = FileCache::new(dir.path(), CacheConfig::default()).await.unwrap();
            assert_eq!(
                reopened.get::<(String, i32)>("path/a/b").await.unwrap(),
                Some(("x".into(), 1))
            );
            assert!(reopened.delete("path/a/b").await.unwrap());
            assert_eq!(reopened.get::<(String, i32)>("path/a/b").await.unwrap(), None);
        });
    }

    #[test]
    fn expiry_limits_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let config = CacheConfig {
                max_entries: 3,
                ..CacheConfig::default()
            };
            let cache = FileCache::new(dir.path(), config).await.unwrap();
            cache.put("gone", &1, Some(Duration::ZERO)).await.unwrap();
            assert!(!cache.contains("gone").await.unwrap());
            for i in 0..5 {
                cache.put(&format!("k{i}"), &i, None).await.unwrap();
            }
            let stats = cache.statistics().await.unwrap();
            assert_eq!(stats.entry_count, 3);
            assert!(stats.evictions >= 2, "{stats:?}");
            cache.clear().await.unwrap();
            assert_eq!(cache.statistics().await.unwrap().entry_count, 0);
        });
    }

    #[test]
    fn hostile_keys_are_safe_file_names() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let cache = FileCache::new(dir.path(), CacheConfig::default()).await.unwrap();
            for key in ["../../etc/passwd", "a\nb", "", "\u{fffd}/x"] {
                cache.put(key, &key, None).await.unwrap();
                assert_eq!(cache.get::<String>(key).await.unwrap().as_deref(), Some(key));
            }
            assert!(
                cache
                    .entries()
                    .await
                    .unwrap()
                    .iter()
                    .all(|(path, _, _)| path.parent() == Some(dir.path()))
            );
        });
    }
}
