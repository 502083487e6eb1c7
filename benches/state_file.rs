//! State files (issue 11): a record into a state file against one into process memory, on 1 and 2
//! threads and in 2 processes at once; and what `cache-monitor show` does (open the file, render it) over
//! a file written by 1, 64 and 10,000 processes, which must not take longer as processes come and go.
//!
//! The processes are this benchmark's own binary, started again with `STATE_BENCH_CHILD` set: a child
//! attaches the file, records, and prints how long its records took, so that process start-up is not
//! measured. `cargo test --benches` runs a short version (100 processes instead of 10,000).
//!
//! The files live where the README puts them, on a tmpfs (`$XDG_RUNTIME_DIR`, else `/dev/shm`); one
//! more 1-thread leg records into a file in the system's temporary directory.

mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cache_monitor::{Monitor, Operation, Outcome};
use criterion::{Criterion, Throughput};

/// Set in a child: `<path> <records>`.
const CHILD: &str = "STATE_BENCH_CHILD";
/// Set in a child: the key of its records (none when unset).
const CHILD_KEY: &str = "STATE_BENCH_KEY";

fn duration_ns(i: u64) -> u64 {
    800 + (i.wrapping_mul(2_654_435_761) & 0xffff)
}

/// A monitor counting into the state file at `path`.
fn attached(path: &Path) -> Monitor {
    let monitor = Monitor::new();
    monitor
        .configure(&serde_json::json!({"state": {"path": path}}).to_string())
        .expect("attach the state file");
    monitor
}

/// `records` records on each of `threads` threads started together; the slowest thread's time (each
/// thread's first record, which claims its shard, is made before the start).
fn on_threads(monitor: &Monitor, threads: usize, records: u64) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let start = &start;
                scope.spawn(move || {
                    let _ = monitor.record(Operation::GET, Outcome::Hit, 1_000, b"");
                    start.wait();
                    let began = Instant::now();
                    for i in 0..records {
                        let _ = monitor.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), b"");
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a worker"))
            .max()
            .unwrap_or_default()
    })
}

/// Runs `processes` children at once, each recording `records` with `key` into `path`; the longest
/// child's time.
fn in_processes(path: &Path, processes: usize, records: u64, key: &str) -> Duration {
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this benchmark"))
                .env(CHILD, format!("{} {records}", path.display()))
                .env(CHILD_KEY, key)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("a child process")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("the child ran");
            assert!(output.status.success(), "a child failed");
            let nanos: u64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("the child's time");
            Duration::from_nanos(nanos)
        })
        .max()
        .unwrap_or_default()
}

/// A child process: attach, record, print the nanoseconds the records took.
fn child(spec: &str) {
    let (path, records) = spec.rsplit_once(' ').expect("<path> <records>");
    let records: u64 = records.parse().expect("a count");
    let monitor = attached(Path::new(path));
    let key = std::env::var(CHILD_KEY).unwrap_or_default();
    let key = key.as_bytes();
    // The first record claims the process's shard (a lock): not what is measured.
    let _ = monitor.record(Operation::GET, Outcome::Hit, 1_000, key);
    let began = Instant::now();
    for i in 0..records {
        let _ = monitor.record(Operation::GET, Outcome::Hit, black_box(duration_ns(i)), key);
    }
    println!("{}", began.elapsed().as_nanos());
}

/// Records into memory and into a file in `dir` (a tmpfs, where the README puts state files), and on one
/// thread into a file in the system's temporary directory (often a disk, whose writeback a mapping
/// feels).
fn record(c: &mut Criterion, dir: &Path) {
    let mut group = c.benchmark_group("state_file");
    group.throughput(Throughput::Elements(1));
    let memory = Monitor::new();
    let file = attached(&dir.join("records.state"));
    for threads in [1, 2] {
        group.bench_function(format!("record_memory/{threads}_threads"), |b| {
            b.iter_custom(|iters| on_threads(&memory, threads, iters))
        });
        group.bench_function(format!("record_file/{threads}_threads"), |b| {
            b.iter_custom(|iters| on_threads(&file, threads, iters))
        });
    }
    let temp_dir = tempfile::tempdir().expect("a temporary directory");
    let in_temp_dir = attached(&temp_dir.path().join("records.state"));
    group.bench_function("record_file_in_temp_dir/1_threads", |b| {
        b.iter_custom(|iters| on_threads(&in_temp_dir, 1, iters))
    });
    let shared = dir.join("processes.state");
    // Created and shaped once, before the children race to attach it.
    drop(attached(&shared));
    group.sample_size(10);
    group.bench_function("record_file/2_processes", |b| {
        // Each child times its own `iters` records (not its start-up); the slower one is the sample. No
        // key, as on the threads.
        b.iter_custom(|iters| in_processes(&shared, 2, iters, ""))
    });
    group.finish();
}

/// A state file that `processes` processes (one after another, 4 at a time) attached and recorded 11
/// records into (the first, which claims a shard, and 10 more), with a key, as a build tool's are.
fn written_by(dir: &Path, processes: usize) -> PathBuf {
    let path = dir.join(format!("written_by_{processes}.state"));
    drop(attached(&path));
    let mut left = processes;
    while left > 0 {
        let batch = left.min(4);
        in_processes(&path, batch, 10, "build:x");
        left -= batch;
    }
    path
}

fn show(c: &mut Criterion, dir: &Path, many: usize) {
    let mut group = c.benchmark_group("state_file");
    // An open and a render take tens of milliseconds: fewer samples, as criterion suggests.
    group.sample_size(30);
    for processes in [1, 64, many] {
        let path = written_by(dir, processes);
        let opened = Monitor::open_state_file(&path).expect("open the file");
        assert_eq!(
            opened.totals().series[0][0].count,
            11 * processes as u64,
            "every process's records in the file"
        );
        group.bench_function(format!("show/{processes}_processes"), |b| {
            b.iter(|| {
                let monitor = Monitor::open_state_file(&path).expect("open the file");
                black_box(monitor.render_prometheus())
            })
        });
    }
    group.finish();
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets a short run.
    let full = std::env::args().any(|arg| arg == "--bench");
    let dir = support::state_file_dir();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    record(&mut criterion, dir.path());
    // Writing a file with 10,000 processes takes minutes: not when a filter leaves `show` out.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    if filter.is_none_or(|filter| filter.contains("show") || "state_file/".contains(filter.as_str())) {
        show(&mut criterion, dir.path(), if full { 10_000 } else { 100 });
    }
    criterion.final_summary();
}
