//! The hot path side by side with what a user would pick instead, in one run: a bare atomic (the floor),
//! `cache_monitor` (direct, switched off, counting into a state file, through the C ABI, through `dlopen`), the `prometheus` crate (labelled and
//! pre-bound) and the `metrics` crate (registered handles). Each peer records a count and a duration,
//! as `cache_monitor_record` does. Ratios are in BENCHMARKS.md (`benches/report.py`).

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use cache_monitor::{Monitor, Operation, Outcome};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::{KEYS, SERIES, cdylib, prometheus_families};

type RecordFn = unsafe extern "C" fn(u32, u32, u64, *const u8, usize) -> i32;

static FLOOR: AtomicU64 = AtomicU64::new(0);

/// A duration that moves through the buckets, as real latencies do.
fn duration_ns(i: u64) -> u64 {
    800 + (i.wrapping_mul(2_654_435_761) & 0xffff)
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));

    group.bench_function("bare_atomic", |b| b.iter(|| FLOOR.fetch_add(black_box(1), Relaxed)));

    let monitor = Monitor::global();
    let mut i = 0u64;
    group.bench_function("cache_monitor", |b| {
        b.iter(|| {
            i += 1;
            monitor.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"")
        })
    });
    // Native histograms off changes only the protobuf exposition: the latency buckets a record updates
    // are the native ones either way (one fine-grained histogram per record), so the two should match.
    let native_off = Monitor::new();
    native_off
        .configure(r#"{"native_histograms": false}"#)
        .expect("a valid configuration");
    let native_on = Monitor::new();
    group.bench_function("cache_monitor_native_on", |b| {
        b.iter(|| {
            i += 1;
            native_on.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"")
        })
    });
    group.bench_function("cache_monitor_native_off", |b| {
        b.iter(|| {
            i += 1;
            native_off.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"")
        })
    });
    group.bench_function("cache_monitor_with_key", |b| {
        b.iter(|| {
            i += 1;
            monitor.record(
                Operation::GET,
                Outcome::Hit,
                black_box(duration_ns(i)),
                KEYS[(i & 3) as usize],
            )
        })
    });
    // Monitoring switched off (`{"enabled": false}`): the record returns after one load and a compare.
    let disabled = Monitor::new();
    disabled.set_enabled(false);
    group.bench_function("cache_monitor_disabled", |b| {
        b.iter(|| {
            i += 1;
            disabled.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"")
        })
    });
    // Counting into a state file (a shared mapping, records journaled) instead of the process's memory, on
    // a tmpfs as the README recommends.
    let state_dir = support::state_file_dir();
    let state_path = state_dir.path().join("bench.state");
    let in_file = Monitor::new();
    in_file
        .configure(&serde_json::json!({"state": {"path": state_path}}).to_string())
        .expect("attach a state file");
    group.bench_function("cache_monitor_state_file", |b| {
        b.iter(|| {
            i += 1;
            in_file.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"")
        })
    });
    group.bench_function("cache_monitor_c_abi", |b| {
        b.iter(|| {
            i += 1;
            // SAFETY: a NULL key with length 0 is the documented "no key".
            unsafe { cache_monitor::ffi::cache_monitor_record(0, 0, black_box(duration_ns(i)), std::ptr::null(), 0) }
        })
    });

    // SAFETY: loading our own library runs no initialisers besides Rust's own.
    let library = unsafe { libloading::Library::new(cdylib()) }.expect("dlopen the cdylib");
    // SAFETY: the symbol has the signature the header declares.
    let record: RecordFn = unsafe { *library.get::<RecordFn>(b"cache_monitor_record").expect("dlsym") };
    group.bench_function("cache_monitor_dlopen", |b| {
        b.iter(|| {
            i += 1;
            // SAFETY: as above.
            unsafe { record(0, 0, black_box(duration_ns(i)), std::ptr::null(), 0) }
        })
    });

    let (_registry, counter, histogram) = prometheus_families();
    group.bench_function("prometheus_with_label_values", |b| {
        b.iter(|| {
            i += 1;
            let (operation, result) = SERIES[(i & 3) as usize];
            counter.with_label_values(&[operation, result]).inc();
            histogram
                .with_label_values(&[operation, result])
                .observe(duration_ns(i) as f64 / 1e9);
        })
    });
    let (bound_counter, bound_histogram) = (
        counter.with_label_values(&["get", "hit"]),
        histogram.with_label_values(&["get", "hit"]),
    );
    group.bench_function("prometheus_prebound", |b| {
        b.iter(|| {
            i += 1;
            bound_counter.inc();
            bound_histogram.observe(black_box(duration_ns(i)) as f64 / 1e9);
        })
    });

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let (metrics_counter, metrics_histogram) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("cuenv_cache_operations_total", "operation" => "get", "result" => "hit"),
            metrics::histogram!("cuenv_cache_operation_duration_seconds", "operation" => "get", "result" => "hit"),
        )
    });
    group.bench_function("metrics_handles", |b| {
        b.iter(|| {
            i += 1;
            metrics_counter.increment(1);
            metrics_histogram.record(black_box(duration_ns(i)) as f64 / 1e9);
        })
    });
    group.finish();
    drop(library);
}

/// Worker threads that live for a whole benchmark, as a host's thread pool does (a thread's first record
/// claims its shard; fresh threads for every sample would measure thread start-up, not recording).
struct Pool {
    work: Vec<mpsc::Sender<u64>>,
    done: mpsc::Receiver<Duration>,
}

impl Pool {
    fn new(threads: usize, record: impl Fn(u64) + Send + Sync + Clone + 'static) -> Self {
        let (done_tx, done) = mpsc::channel();
        let barrier = Arc::new(Barrier::new(threads));
        let work = (0..threads)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<u64>();
                let (record, done_tx, barrier) = (record.clone(), done_tx.clone(), barrier.clone());
                std::thread::spawn(move || {
                    for iters in rx {
                        barrier.wait();
                        let start = Instant::now();
                        for i in 0..iters {
                            record(i);
                        }
                        if done_tx.send(start.elapsed()).is_err() {
                            break;
                        }
                    }
                });
                tx
            })
            .collect();
        Self { work, done }
    }

    /// Every thread runs `iters` records, started together; the time of the slowest.
    fn run(&self, iters: u64) -> Duration {
        for worker in &self.work {
            worker.send(iters).expect("worker alive");
        }
        (0..self.work.len())
            .map(|_| self.done.recv().expect("worker reports"))
            .max()
            .unwrap_or_default()
    }
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    let monitor = Arc::new(Monitor::new());
    let shared_floor = Arc::new(AtomicU64::new(0));
    let (_registry, counter, histogram) = prometheus_families();
    let (bound_counter, bound_histogram) = (
        counter.with_label_values(&["get", "hit"]),
        histogram.with_label_values(&["get", "hit"]),
    );
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        let pool = Pool::new(threads, {
            let monitor = monitor.clone();
            move |i| _ = monitor.record(Operation::GET, Outcome::Hit, duration_ns(i), b"")
        });
        group.bench_function(format!("cache_monitor/{threads}"), |b| {
            b.iter_custom(|iters| pool.run(iters))
        });
        let pool = Pool::new(threads, {
            let floor = shared_floor.clone();
            move |i| _ = floor.fetch_add(black_box(i), Relaxed)
        });
        group.bench_function(format!("shared_atomic/{threads}"), |b| {
            b.iter_custom(|iters| pool.run(iters))
        });
        let pool = Pool::new(threads, {
            let (counter, histogram) = (bound_counter.clone(), bound_histogram.clone());
            move |i| {
                counter.inc();
                histogram.observe(duration_ns(i) as f64 / 1e9);
            }
        });
        group.bench_function(format!("prometheus_prebound/{threads}"), |b| {
            b.iter_custom(|iters| pool.run(iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = single_thread, scaling
}
criterion_main!(benches);
