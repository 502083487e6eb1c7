//! The demo host: loads `libcache_monitor.so` with `dlopen`, runs a realistic cache workload against it,
//! serves `/metrics`, and prints a live one-line summary every second.
//!
//! ```sh
//! cargo run --release --example demo -- --duration 60
//! curl -s http://127.0.0.1:9464/metrics
//! ```
//!
//! Options:
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `--duration SECONDS` | until Ctrl-C | stop after this long |
//! | `--listen ADDR` | `127.0.0.1:9464` | where the exporter listens (`IP:port`; port 0 picks one) |
//! | `--threads N` | 4 | worker threads |
//! | `--rate N` | 20000 | cache requests per second over all workers, 0 for flat out; a missed get also records a load, a put and perhaps an eviction, so more operations are recorded |
//! | `--capacity N` | 5000 | cache entries |
//! | `--library PATH` | `target/<profile>/libcache_monitor.so` | the library to load |
//! | `--bearer-token TOKEN` | none | require `Authorization: Bearer TOKEN` (the `"http"` configuration) |
//! | `--no-profiling` | profiling on | do not sample; by default 1 record in 100 on each thread is sampled (`{"profiler": {"sample_every": 100}}`), so `/flamegraph.svg` shows where operations come from |
//!
//! `--help` prints these options.
//!
//! It prints `serving http://ADDR/metrics` once the exporter listens, and exits non-zero if the library
//! refused any call.

mod cache;
mod library;
mod summary;
mod workload;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cache_monitor::ffi::CacheMonitorGauge;

use cache::Cache;
use library::Api;
use summary::Snapshot;
use workload::{Keys, Tally, Worker};

/// Largest value the cache accepts.
const MAX_VALUE_BYTES: usize = 256 * 1024;
/// The metric namespace (the library's default).
const NAMESPACE: &str = "cuenv_cache";

struct Options {
    duration: Option<Duration>,
    listen: String,
    threads: usize,
    rate: f64,
    capacity: usize,
    library: Option<PathBuf>,
    bearer_token: Option<String>,
    /// Sample 1 record in [`SAMPLE_EVERY`] for the flamegraphs (`--no-profiling` turns it off).
    profiling: bool,
}

const USAGE: &str = "usage: demo [--duration SECONDS] [--listen IP:PORT] [--threads N] [--rate REQUESTS] [--capacity N] [--library PATH] [--bearer-token TOKEN] [--no-profiling]";

/// What `--help` prints.
const HELP: &str = "\
Runs a cache workload against libcache_monitor.so (loaded with dlopen) and serves what the library sees:
metrics, hit rates, latencies and a flamegraph of where operations come from, at http://IP:PORT/.

options:
  --duration SECONDS    stop after this long (default: run until Ctrl-C)
  --listen IP:PORT      where the exporter listens (default 127.0.0.1:9464; port 0 picks a free one)
  --threads N           worker threads (default 4)
  --rate REQUESTS       cache requests per second over all workers, 0 for flat out (default 20000)
  --capacity N          cache entries (default 5000)
  --library PATH        the library to load (default: the one cargo built beside this program)
  --bearer-token TOKEN  require `Authorization: Bearer TOKEN` of every HTTP client
  --no-profiling        do not sample: by default 1 record in 100 on each thread is sampled
                        ({\"profiler\": {\"sample_every\": 100}}) for /flamegraph.svg and /flamegraph.folded
  -h, --help            print this help
";

/// The demo's sampling rate unless `--no-profiling`: 1 record in 100 on each thread.
const SAMPLE_EVERY: u32 = 100;

/// What the command line asks for.
enum Command {
    /// Run the demo.
    Run(Options),
    /// Print [`HELP`].
    Help,
}

fn parse_options() -> Result<Command, String> {
    let mut options = Options {
        duration: None,
        listen: "127.0.0.1:9464".to_owned(),
        threads: 4,
        rate: 20_000.0,
        capacity: 5_000,
        library: None,
        bearer_token: None,
        profiling: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--no-profiling" => {
                options.profiling = false;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{arg}: {value:?} is not {what}\n{USAGE}");
        match arg.as_str() {
            "--duration" => {
                let seconds: f64 = value.parse().map_err(|_| bad("a number of seconds"))?;
                if !(seconds > 0.0 && seconds.is_finite()) {
                    return Err(bad("a positive number of seconds"));
                }
                options.duration = Some(Duration::from_secs_f64(seconds));
            }
            "--listen" => options.listen = value,
            "--threads" => {
                options.threads = value.parse().map_err(|_| bad("a thread count"))?;
                if !(1..=256).contains(&options.threads) {
                    return Err(bad("between 1 and 256"));
                }
            }
            "--rate" => {
                options.rate = value.parse().map_err(|_| bad("requests per second"))?;
                if !(options.rate >= 0.0 && options.rate.is_finite()) {
                    return Err(bad("a non-negative rate"));
                }
            }
            "--capacity" => {
                options.capacity = value.parse().map_err(|_| bad("an entry count"))?;
                if options.capacity == 0 {
                    return Err(bad("at least 1"));
                }
            }
            "--library" => options.library = Some(PathBuf::from(value)),
            "--bearer-token" => options.bearer_token = Some(value),
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    Ok(Command::Run(options))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let options = match parse_options()? {
        Command::Run(options) => options,
        Command::Help => {
            print!("{USAGE}\n\n{HELP}");
            return Ok(());
        }
    };
    let path = match options.library.clone() {
        Some(path) => path,
        None => library::default_path()?,
    };
    let api = Arc::new(Api::load(&path)?);
    let cache = Arc::new(Cache::new(options.capacity, MAX_VALUE_BYTES));

    // Ctrl-C (SIGINT) and the end of --duration both end the run through this channel.
    let (stop_tx, stop_rx) = mpsc::channel::<&'static str>();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        ctrlc::set_handler(move || {
            if interrupted.swap(true, Relaxed) {
                // A second Ctrl-C: the user does not want to wait for a clean stop.
                std::process::exit(130);
            }
            let _ = stop_tx.send("interrupted");
        })
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    }

    if let Some(token) = &options.bearer_token {
        let section = serde_json::json!({"http": {"bearer_token": token}});
        api.configure(&section.to_string())
            .map_err(|e| format!("--bearer-token: {e}"))?;
    }
    if options.profiling {
        let section = serde_json::json!({"profiler": {"sample_every": SAMPLE_EVERY}});
        api.configure(&section.to_string())
            .map_err(|e| format!("cannot turn profiling on: {e}"))?;
    }
    let address = api
        .serve(&options.listen)
        .map_err(|e| format!("cannot serve on {}: {e} (try --listen 127.0.0.1:0)", options.listen))?;
    println!(
        "cache-monitor demo: {} (ABI {}.{}), {} workers at {} requests/s, {} entries",
        api.path.display(),
        api.version >> 16,
        api.version & 0xffff,
        options.threads,
        if options.rate > 0.0 {
            summary::thousands(options.rate as u64)
        } else {
            "max".to_owned()
        },
        summary::thousands(options.capacity as u64),
    );
    if options.profiling {
        println!(
            "profiling: 1 record in {SAMPLE_EVERY} on each thread sampled, see http://{address}/flamegraph.svg (--no-profiling turns it off)"
        );
    } else {
        println!("profiling off (--no-profiling): /flamegraph.svg explains how to turn it on");
    }
    println!("serving http://{address}/metrics (index at http://{address}/); Ctrl-C to stop");
    let _ = std::io::stdout().flush();

    let keys = Arc::new(Keys::new());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..options.threads)
        .map(|i| {
            let worker = Worker {
                api: Arc::clone(&api),
                cache: Arc::clone(&cache),
                keys: Arc::clone(&keys),
                tally: Arc::clone(&tally),
                stop: Arc::clone(&stop),
                seed: 0x5eed + i as u64,
                rate: options.rate / options.threads as f64,
            };
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker.run())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot start a worker: {e}"))?;

    let reason = report_until_stopped(&api, &cache, &options, &stop_rx);
    stop.store(true, Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    set_gauges(&api, &cache);
    api.serve_stop().map_err(|e| format!("serve_stop: {e}"))?;

    let last = Snapshot::parse(&api.render().map_err(|e| e.to_string())?, NAMESPACE);
    let hit_rate = last.get_hits as f64 / (last.get_hits + last.get_misses).max(1) as f64;
    println!(
        "stopped ({reason}): {} operations, get hit rate {:.1}%, {} errors, exporter stopped",
        summary::thousands(last.operations),
        100.0 * hit_rate,
        summary::thousands(last.errors),
    );
    let refused = tally.refused.load(Relaxed);
    if refused > 0 {
        let first = tally
            .first_refusal
            .lock()
            .map(|f| f.clone().unwrap_or_default())
            .unwrap_or_default();
        return Err(format!("the library refused {refused} calls; the first: {first}"));
    }
    Ok(())
}

fn set_gauges(api: &Api, cache: &Cache) {
    // Both codes are valid gauges, so these calls cannot be refused.
    let _ = api.set_gauge(CacheMonitorGauge::SizeBytes as u32, cache.size_bytes());
    let _ = api.set_gauge(CacheMonitorGauge::Entries as u32, cache.entries());
}

/// Prints a summary line every second until `--duration` passes or Ctrl-C; returns why it stopped.
fn report_until_stopped(
    api: &Api,
    cache: &Cache,
    options: &Options,
    stop_rx: &mpsc::Receiver<&'static str>,
) -> &'static str {
    let started = Instant::now();
    let deadline = options.duration.map(|d| started + d);
    let terminal = std::io::stdout().is_terminal();
    let mut previous = (started, Snapshot::default());
    let mut next_tick = started + Duration::from_secs(1);
    loop {
        let wake = deadline.map_or(next_tick, |d| d.min(next_tick));
        match stop_rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(reason) => return reason,
            Err(mpsc::RecvTimeoutError::Disconnected) => return "Ctrl-C handler gone",
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            if terminal {
                println!();
            }
            return "--duration reached";
        }
        if now < next_tick {
            continue;
        }
        next_tick += Duration::from_secs(1);
        set_gauges(api, cache);
        let snapshot = match api.render() {
            Ok(text) => Snapshot::parse(&text, NAMESPACE),
            Err(error) => {
                eprintln!("render: {error}");
                continue;
            }
        };
        let line = summary::line(
            now.duration_since(started).as_secs_f64(),
            now.duration_since(previous.0).as_secs_f64(),
            &previous.1,
            &snapshot,
        );
        if terminal {
            print!("\r\x1b[K{line}");
        } else {
            println!("{line}");
        }
        let _ = std::io::stdout().flush();
        previous = (now, snapshot);
    }
}
