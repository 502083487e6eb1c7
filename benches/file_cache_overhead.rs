//! What `MonitoredCache` adds to a `get` on the directory-backed `FileCache` (the seed claims under 1%),
//! measured paired: a bare `FileCache`, a second bare one and the monitored one, all three over the same
//! directory and reading the same entry, take turns round after round in one process. The overhead is the
//! median of the rounds' ratios of monitored to bare, with a 95% confidence interval; the same ratio for
//! the second bare cache is the method's null (what it reads when nothing is added). Writes both to
//! `target/file_cache_overhead/estimates.json` for `benches/report.py`.
//!
//! Not criterion: criterion estimates each benchmark in its own period of the run, and on a shared
//! machine a `get` that opens, reads and closes a file drifts by more than 1% between periods (measured:
//! the gap between two separate benchmarks followed their order, not the wrapper). Pairing cancels the
//! drift: the gets of a round see the same machine, and their order goes through every permutation. One
//! directory for all: two directories alone differed by up to 1% (measured). Run with
//! `cargo bench --bench file_cache_overhead`; `cargo test --benches` runs a short version.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cache_monitor::{Cache, CacheConfig, FileCache, MonitoredCache};

/// Rounds in a full run, and gets of each cache per round (about a millisecond of each).
const ROUNDS: usize = 6000;
const GETS_PER_ROUND: u32 = 32;
/// The cached entry every get reads.
const KEY: &str = "user:1";

/// What a round times.
#[derive(Clone, Copy)]
enum Leg {
    /// The bare cache.
    Bare,
    /// A second bare cache: the method's null.
    BareAgain,
    /// The bare cache, then [`SPIN`] of spinning after each get: what the loop makes of a known cost.
    BareThenSpin,
    /// The cache through `MonitoredCache`.
    Monitored,
}

const LEGS: [Leg; 4] = [Leg::Bare, Leg::BareAgain, Leg::BareThenSpin, Leg::Monitored];

/// The known cost the calibration leg adds to each get: about what the wrapper's work takes with the
/// caches cold from the file system's work in between.
const SPIN: Duration = Duration::from_nanos(100);

/// The order of round `index`'s legs: rotated by one each round and reversed every other cycle, so that
/// each leg is first, second, third and last equally often, and before and after each other leg.
fn order(index: usize) -> [Leg; 4] {
    let mut order = LEGS;
    order.rotate_left(index % LEGS.len());
    if (index / LEGS.len()) % 2 == 1 {
        order.reverse();
    }
    order
}

/// The caches over one directory holding the entry.
struct Caches {
    bare: FileCache,
    bare_again: FileCache,
    monitored: MonitoredCache<FileCache>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Caches {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (bare, bare_again, monitored) = runtime.block_on(async {
            let open = || FileCache::new(dir.path(), CacheConfig::default());
            let bare = open().await.expect("cache dir");
            bare.put(KEY, &"a cached value of some length", None)
                .await
                .expect("put");
            let bare_again = open().await.expect("cache dir");
            let monitored = MonitoredCache::new(open().await.expect("cache dir"), "bench");
            (bare, bare_again, monitored)
        });
        Self {
            bare,
            bare_again,
            monitored,
            runtime,
            _dir: dir,
        }
    }

    /// The time of `GETS_PER_ROUND` gets through `leg`.
    fn time(&self, leg: Leg) -> Duration {
        let start = Instant::now();
        for _ in 0..GETS_PER_ROUND {
            let value = match leg {
                Leg::Bare => self.runtime.block_on(self.bare.get::<String>(black_box(KEY))),
                Leg::BareAgain => self.runtime.block_on(self.bare_again.get::<String>(black_box(KEY))),
                Leg::BareThenSpin => {
                    let value = self.runtime.block_on(self.bare.get::<String>(black_box(KEY)));
                    let spun = Instant::now();
                    while spun.elapsed() < SPIN {
                        std::hint::spin_loop();
                    }
                    value
                }
                Leg::Monitored => self.runtime.block_on(self.monitored.get::<String>(black_box(KEY))),
            };
            assert!(black_box(value).expect("get").is_some(), "the entry is cached");
        }
        start.elapsed()
    }

    /// One round's times, in nanoseconds, in the order of [`LEGS`].
    fn round(&self, index: usize) -> [f64; 4] {
        let mut times = [0.0; 4];
        for leg in order(index) {
            times[leg as usize] = self.time(leg).as_nanos() as f64;
        }
        times
    }
}

/// The median of `values` and a distribution-free 95% confidence interval for it: the order statistics
/// whose ranks lie 1.96 standard deviations of a Binomial(n, 1/2) either side of the middle.
fn median_with_interval(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let half_width = (1.96 * (n as f64).sqrt() / 2.0).ceil() as usize;
    let middle = n / 2;
    [
        values[middle],
        values[middle.saturating_sub(half_width)],
        values[(middle + half_width).min(n - 1)],
    ]
}

fn main() {
    // `cargo test --benches` passes no `--bench`: a short run there, so the benchmark cannot rot.
    let full = std::env::args().any(|arg| arg == "--bench");
    let rounds = if full { ROUNDS } else { 4 * LEGS.len() };
    let caches = Caches::new();
    for index in 0..rounds / 10 {
        caches.round(index); // warm up: the entry's pages and directory cached, code paged in
    }
    let times: Vec<[f64; 4]> = (0..rounds).map(|index| caches.round(index)).collect();
    let per_get = |leg: Leg| {
        median_with_interval(times.iter().map(|round| round[leg as usize]).collect())[0] / f64::from(GETS_PER_ROUND)
    };
    // Each leg's time over the bare one's in the same round, minus 1: what the leg adds, relative.
    let added = |leg: Leg| {
        median_with_interval(
            times
                .iter()
                .map(|round| round[leg as usize] / round[Leg::Bare as usize] - 1.0)
                .collect(),
        )
    };
    let bare_ns = per_get(Leg::Bare);
    let [overhead, overhead_lower, overhead_upper] = added(Leg::Monitored);
    let [control, control_lower, control_upper] = added(Leg::BareAgain);
    let [spin, spin_lower, spin_upper] = added(Leg::BareThenSpin);
    let percent = |fraction: f64| format!("{:+.2}%", fraction * 100.0);
    println!("file_cache_overhead: {rounds} rounds of {GETS_PER_ROUND} gets each, a bare get {bare_ns:.0} ns (median)");
    println!(
        "file_cache_overhead: monitored / bare - 1: {} (95% CI {} to {}), {:.0} ns a get",
        percent(overhead),
        percent(overhead_lower),
        percent(overhead_upper),
        overhead * bare_ns
    );
    println!(
        "file_cache_overhead: null, a second bare cache: {} ({} to {})",
        percent(control),
        percent(control_lower),
        percent(control_upper)
    );
    println!(
        "file_cache_overhead: {} ns of spinning after each bare get: {} ({} to {}), {:.0} ns a get",
        SPIN.as_nanos(),
        percent(spin),
        percent(spin_lower),
        percent(spin_upper),
        spin * bare_ns
    );
    if full {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../file_cache_overhead");
        std::fs::create_dir_all(&dir).expect("target/file_cache_overhead");
        let json = serde_json::json!({
            "rounds": rounds, "gets_per_round": GETS_PER_ROUND, "bare_ns": bare_ns,
            "monitored": [overhead, overhead_lower, overhead_upper],
            "null": [control, control_lower, control_upper],
            "spin_ns": SPIN.as_nanos() as u64, "spin": [spin, spin_lower, spin_upper],
        });
        std::fs::write(dir.join("estimates.json"), json.to_string()).expect("write the estimates");
    }
}
