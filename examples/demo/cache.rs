//! The cache the demo monitors: a sharded, fixed-capacity in-memory cache with CLOCK eviction (the
//! second-chance approximation of LRU that many real caches use), tracking its size in bytes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

/// Why a put was refused.
#[derive(Debug)]
pub enum PutError {
    /// The value is larger than one entry may be.
    TooLarge,
}

/// An entry removed to make room.
pub struct Evicted {
    pub key: String,
}

struct Slot {
    key: String,
    value: Vec<u8>,
    /// Set on every hit; the clock hand clears it once before evicting.
    referenced: bool,
}

struct Shard {
    index: HashMap<String, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    hand: usize,
    capacity: usize,
}

/// A cache of byte values keyed by strings.
pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    max_value_bytes: usize,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl Cache {
    /// A cache of at most `capacity` entries (split over 16 shards), refusing values over
    /// `max_value_bytes`.
    pub fn new(capacity: usize, max_value_bytes: usize) -> Self {
        const SHARDS: usize = 16;
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        index: HashMap::with_capacity(per_shard),
                        slots: Vec::with_capacity(per_shard),
                        free: Vec::new(),
                        hand: 0,
                        capacity: per_shard,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            max_value_bytes,
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value's length if `key` is cached; marks it recently used.
    pub fn get(&self, key: &str) -> Option<usize> {
        let mut shard = self.shard(key);
        let slot = *shard.index.get(key)?;
        let entry = shard.slots[slot].as_mut()?;
        entry.referenced = true;
        Some(entry.value.len())
    }

    /// Whether `key` is cached, without marking it used.
    pub fn contains(&self, key: &str) -> bool {
        self.shard(key).index.contains_key(key)
    }

    /// Inserts or replaces `key`; when the shard is full, evicts an entry and returns it.
    pub fn put(&self, key: &str, value: Vec<u8>) -> Result<Option<Evicted>, PutError> {
        if value.len() > self.max_value_bytes {
            return Err(PutError::TooLarge);
        }
        let added = value.len() as u64;
        let mut shard = self.shard(key);
        if let Some(&slot) = shard.index.get(key)
            && let Some(entry) = shard.slots[slot].as_mut()
        {
            let old = std::mem::replace(&mut entry.value, value);
            entry.referenced = true;
            self.bytes.fetch_add(added, Relaxed);
            self.bytes.fetch_sub(old.len() as u64, Relaxed);
            return Ok(None);
        }
        let mut evicted = None;
        if shard.index.len() >= shard.capacity {
            evicted = self.evict_one(&mut shard);
        }
        let entry = Some(Slot {
            key: key.to_owned(),
            value,
            referenced: false,
        });
        let slot = match shard.free.pop() {
            Some(slot) => {
                shard.slots[slot] = entry;
                slot
            }
            None => {
                shard.slots.push(entry);
                shard.slots.len() - 1
            }
        };
        shard.index.insert(key.to_owned(), slot);
        self.bytes.fetch_add(added, Relaxed);
        self.entries.fetch_add(1, Relaxed);
        Ok(evicted)
    }

    /// The CLOCK sweep: skip (and clear) referenced entries, evict the first unreferenced one.
    fn evict_one(&self, shard: &mut Shard) -> Option<Evicted> {
        if shard.slots.is_empty() {
            return None;
        }
        // Two turns are enough: the first clears every reference bit.
        for _ in 0..2 * shard.slots.len() {
            let hand = shard.hand;
            shard.hand = (hand + 1) % shard.slots.len();
            let Some(entry) = shard.slots[hand].as_mut() else {
                continue;
            };
            if entry.referenced {
                entry.referenced = false;
                continue;
            }
            let entry = shard.slots[hand].take()?;
            shard.index.remove(&entry.key);
            shard.free.push(hand);
            self.bytes.fetch_sub(entry.value.len() as u64, Relaxed);
            self.entries.fetch_sub(1, Relaxed);
            return Some(Evicted { key: entry.key });
        }
        None
    }

    /// Removes `key`; whether it was cached.
    pub fn delete(&self, key: &str) -> bool {
        let mut shard = self.shard(key);
        let Some(slot) = shard.index.remove(key) else {
            return false;
        };
        if let Some(entry) = shard.slots[slot].take() {
            self.bytes.fetch_sub(entry.value.len() as u64, Relaxed);
            self.entries.fetch_sub(1, Relaxed);
        }
        shard.free.push(slot);
        true
    }

    /// Bytes held in values.
    pub fn size_bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Entries held.
    pub fn entries(&self) -> u64 {
        self.entries.load(Relaxed)
    }
}
