//! The workload: worker threads that use the cache as an application would, and record every
//! operation through the C ABI.
//!
//! Keys are Zipf-distributed (a few hot keys, a long tail) under three prefixes: `user:<id>` profiles,
//! `session:<hex>` tokens and `path/<dir>/<file>` documents. Each operation is a get (85%: on a miss the
//! value is loaded from a simulated backing store, in flight meanwhile, then put), an update (8%), a
//! delete of a session (4%, as on logout) or a presence check (3%). Loads usually take 50 to 250 us; one
//! in a hundred is slow (5 to 40 ms) and one in two hundred fails. Puts evict when the cache is full
//! and fail for documents over the cache's value limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cache_monitor::ffi::{CacheMonitorOperation as Op, CacheMonitorOutcome as Res};

use crate::cache::Cache;
use crate::library::Api;

/// xoshiro256** (Blackman and Vigna): small, fast, good enough for a workload.
pub struct Rng([u64; 4]);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        // SplitMix64 spreads the seed over the state, as the authors recommend.
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }
}

/// Zipf's law over ranks 1..=n with exponent s: P(k) proportional to 1 / k^s. Sampled exactly by
/// binary search in the cumulative distribution.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        cdf.iter_mut().for_each(|p| *p /= total);
        Self { cdf }
    }

    /// A rank from 0 (the hottest) to n - 1.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&p| p < u).min(self.cdf.len() - 1)
    }
}

/// The key spaces.
pub struct Keys {
    users: Zipf,
    sessions: Zipf,
    paths: Zipf,
}

impl Keys {
    pub fn new() -> Self {
        Self {
            users: Zipf::new(20_000, 1.1),
            sessions: Zipf::new(50_000, 0.9),
            paths: Zipf::new(8_000, 1.2),
        }
    }
}

/// What kind of thing a key names, which decides its value size.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    User,
    Session,
    Path,
}

fn pick_key(keys: &Keys, rng: &mut Rng, key: &mut String) -> Kind {
    use std::fmt::Write;
    key.clear();
    let roll = rng.unit();
    if roll < 0.5 {
        let _ = write!(key, "user:{}", keys.users.sample(rng));
        Kind::User
    } else if roll < 0.8 {
        let id = keys.sessions.sample(rng) as u64;
        let _ = write!(key, "session:{:016x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Kind::Session
    } else {
        let rank = keys.paths.sample(rng);
        let _ = write!(key, "path/{}/{}.json", rank % 97, rank);
        Kind::Path
    }
}

fn value_size(kind: Kind, rng: &mut Rng) -> usize {
    match kind {
        Kind::User => rng.range(256, 2_048) as usize,
        Kind::Session => rng.range(128, 512) as usize,
        // Documents: mostly small, one in 500 larger than the cache's 256 KiB value limit.
        Kind::Path if rng.unit() < 0.002 => 512 * 1024,
        Kind::Path => rng.range(1_024, 65_536) as usize,
    }
}

/// Counters the main thread reads for its summary's error line.
#[derive(Default)]
pub struct Tally {
    /// Calls the library refused (should stay 0).
    pub refused: AtomicU64,
    /// The first refusal's message.
    pub first_refusal: std::sync::Mutex<Option<String>>,
}

/// One worker's share of the run.
pub struct Worker {
    pub api: Arc<Api>,
    pub cache: Arc<Cache>,
    pub keys: Arc<Keys>,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
    pub seed: u64,
    /// Requests per second for this worker; 0 for as fast as possible.
    pub rate: f64,
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Worker {
    fn note(&self, result: Result<(), crate::library::CallError>) {
        if let Err(error) = result
            && self.tally.refused.fetch_add(1, Relaxed) == 0
            && let Ok(mut first) = self.tally.first_refusal.lock()
        {
            *first = Some(error.0);
        }
    }

    /// Runs operations until `stop` is set.
    pub fn run(self) {
        let mut rng = Rng::seeded(self.seed);
        let mut key = String::with_capacity(64);
        let started = Instant::now();
        let mut done = 0u64;
        while !self.stop.load(Relaxed) {
            self.one_operation(&mut rng, &mut key);
            done += 1;
            // Pace to the target rate: sleep off any lead over the schedule, checked every 32 ops.
            if self.rate > 0.0 && done.is_multiple_of(32) {
                let due = Duration::from_secs_f64(done as f64 / self.rate);
                if let Some(lead) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(lead.min(Duration::from_millis(100)));
                }
            }
        }
    }

    fn one_operation(&self, rng: &mut Rng, key: &mut String) {
        let kind = pick_key(&self.keys, rng, key);
        let roll = rng.unit();
        if roll < 0.85 {
            self.get(rng, key, kind);
        } else if roll < 0.93 {
            self.put(rng, key, kind);
        } else if roll < 0.97 {
            // Sessions end; users and documents are rarely deleted.
            if kind == Kind::Session || roll < 0.935 {
                let start = Instant::now();
                self.cache.delete(key);
                let elapsed = nanos(start);
                self.note(
                    self.api
                        .record(Op::Delete as u32, Res::Ok as u32, elapsed, key.as_bytes()),
                );
            }
        } else {
            let start = Instant::now();
            let present = self.cache.contains(key);
            let elapsed = nanos(start);
            let result = if present { Res::Hit } else { Res::Miss };
            self.note(
                self.api
                    .record(Op::Contains as u32, result as u32, elapsed, key.as_bytes()),
            );
        }
    }

    fn get(&self, rng: &mut Rng, key: &str, kind: Kind) {
        let start = Instant::now();
        let found = self.cache.get(key);
        let elapsed = nanos(start);
        let result = if found.is_some() { Res::Hit } else { Res::Miss };
        self.note(self.api.record(Op::Get as u32, result as u32, elapsed, key.as_bytes()));
        if found.is_none() && self.load(rng, key) {
            self.put(rng, key, kind);
        }
    }

    /// Simulates a read from the backing store; whether it succeeded.
    fn load(&self, rng: &mut Rng, key: &str) -> bool {
        self.note(self.api.begin(Op::Load as u32));
        let start = Instant::now();
        let roll = rng.unit();
        let pause = if roll < 0.01 {
            Duration::from_micros(rng.range(5_000, 40_000))
        } else {
            Duration::from_micros(rng.range(50, 250))
        };
        std::thread::sleep(pause);
        let ok = rng.unit() >= 0.005;
        let result = if ok { Res::Ok } else { Res::Error };
        self.note(
            self.api
                .end(Op::Load as u32, result as u32, nanos(start), key.as_bytes()),
        );
        ok
    }

    fn put(&self, rng: &mut Rng, key: &str, kind: Kind) {
        let value = vec![0x5a; value_size(kind, rng)];
        let start = Instant::now();
        let outcome = self.cache.put(key, value);
        let elapsed = nanos(start);
        match outcome {
            Ok(evicted) => {
                self.note(self.api.record(Op::Put as u32, Res::Ok as u32, elapsed, key.as_bytes()));
                if let Some(evicted) = evicted {
                    self.note(
                        self.api
                            .record(Op::Evict as u32, Res::Ok as u32, elapsed, evicted.key.as_bytes()),
                    );
                }
            }
            Err(_too_large) => {
                self.note(
                    self.api
                        .record(Op::Put as u32, Res::Error as u32, elapsed, key.as_bytes()),
                );
            }
        }
    }
}
