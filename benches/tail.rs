//! The tail of a single record: 10^7 records on 4 threads (windows ticking, a scrape every second), each
//! timed on its own with two reads of the time-stamp counter (`quanta`), into a histogram per thread.
//! Reports p50, p99 and p99.9 of a record, and of the two counter reads alone (the measuring floor), and
//! writes them to `target/tail/estimates.json` for `benches/report.py`.
//!
//! Not criterion: criterion measures means of many iterations, which hide exactly the rare slow record
//! this looks for. Run with `cargo bench --bench tail`; `cargo test --benches` runs a short version.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cache_monitor::{Monitor, Operation, Outcome};

/// Records in all, split between the threads.
const RECORDS: u64 = 10_000_000;
const THREADS: u64 = 4;
/// Sub-buckets per power of two of the histogram of times: a quantile is exact to 1/16 of its octave.
const SUB_BUCKETS: u64 = 16;

/// Counts of times in ticks of the time-stamp counter, log-linear: `SUB_BUCKETS` per power of two.
struct Histogram(Vec<u64>);

impl Histogram {
    fn new() -> Self {
        Self(vec![0; (64 * SUB_BUCKETS) as usize])
    }

    fn index(ticks: u64) -> usize {
        if ticks < SUB_BUCKETS {
            return ticks as usize;
        }
        let octave = 63 - u64::from(ticks.leading_zeros());
        let sub = (ticks >> (octave - 4)) & (SUB_BUCKETS - 1);
        ((octave - 3) * SUB_BUCKETS + sub) as usize
    }

    /// The smallest time of bucket `index`, in ticks.
    fn lower_bound(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let octave = index / SUB_BUCKETS + 3;
        let sub = index % SUB_BUCKETS;
        (SUB_BUCKETS + sub) << (octave - 4)
    }

    fn add(&mut self, ticks: u64) {
        self.0[Self::index(ticks)] += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (total, count) in self.0.iter_mut().zip(&other.0) {
            *total += count;
        }
    }

    /// The time below which a fraction `q` of the observations lie (the lower bound of its bucket).
    fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.0.iter().sum();
        let rank = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (index, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank.max(1) {
                return Self::lower_bound(index);
            }
        }
        0
    }
}

/// Times `records` calls of `body` on each of `THREADS` threads, each call on its own.
fn run(records: u64, body: impl Fn(u64) + Sync) -> Histogram {
    let clock = quanta::Clock::new();
    let start = Barrier::new(THREADS as usize);
    let histograms: Vec<Histogram> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (clock, start, body) = (&clock, &start, &body);
                scope.spawn(move || {
                    let mut histogram = Histogram::new();
                    start.wait();
                    for i in 0..records / THREADS {
                        let before = clock.raw();
                        body(black_box(i * THREADS + thread));
                        let after = clock.raw();
                        histogram.add(after.saturating_sub(before));
                    }
                    histogram
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a worker"))
            .collect()
    });
    let mut all = Histogram::new();
    for histogram in &histograms {
        all.merge(histogram);
    }
    all
}

/// The quantiles in nanoseconds.
fn quantiles(histogram: &Histogram) -> [f64; 3] {
    let clock = quanta::Clock::new();
    let ns = |ticks: u64| clock.delta_as_nanos(0, ticks) as f64;
    [0.5, 0.99, 0.999].map(|q| ns(histogram.quantile(q)))
}

fn main() {
    // `cargo test --benches` passes no `--bench`: a short run there, so the benchmark cannot rot.
    let full = std::env::args().any(|arg| arg == "--bench");
    let records = if full { RECORDS } else { RECORDS / 100 };

    let monitor = Arc::new(Monitor::new());
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (monitor, stop) = (Arc::clone(&monitor), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                black_box(monitor.render_prometheus());
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let floor = run(records, |_| {});
    let recorded = run(records, |i| {
        let duration_ns = 800 + (i.wrapping_mul(2_654_435_761) & 0xffff);
        let _ = monitor.record(Operation::GET, Outcome::Hit, duration_ns, b"");
    });
    stop.store(true, Relaxed);
    scraper.join().expect("the scraper");

    let [p50, p99, p999] = quantiles(&recorded);
    let [floor_p50, floor_p99, floor_p999] = quantiles(&floor);
    println!("tail: {records} records on {THREADS} threads, a scrape every second");
    println!(
        "tail: record       p50 {p50:.1} ns  p99 {p99:.1} ns  p99.9 {p999:.1} ns  (p99.9 / p50 {:.2})",
        p999 / p50
    );
    println!("tail: clock reads  p50 {floor_p50:.1} ns  p99 {floor_p99:.1} ns  p99.9 {floor_p999:.1} ns");
    if full {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../tail");
        std::fs::create_dir_all(&dir).expect("target/tail");
        let json = serde_json::json!({
            "records": records, "threads": THREADS,
            "p50_ns": p50, "p99_ns": p99, "p999_ns": p999,
            "floor_p50_ns": floor_p50, "floor_p99_ns": floor_p99, "floor_p999_ns": floor_p999,
        });
        std::fs::write(dir.join("estimates.json"), json.to_string()).expect("write the estimates");
    }
}
