//! Shared by the benchmarks: the peers' setups, so every benchmark compares like with like.
#![allow(dead_code)] // each benchmark uses its own subset

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The operation and result label values the benchmarks cycle through.
pub const SERIES: [(&str, &str); 4] = [("get", "hit"), ("get", "miss"), ("put", "ok"), ("load", "error")];

/// Keys under four patterns, as a host would pass them.
pub const KEYS: [&[u8]; 4] = [b"user:1234", b"session:99", b"path/a/b", b"user:77"];

/// The `prometheus` crate's counter and histogram families, as a host would declare them, with our
/// default buckets.
pub fn prometheus_families() -> (Registry, IntCounterVec, HistogramVec) {
    let registry = Registry::new();
    let counter = IntCounterVec::new(
        Opts::new("cuenv_cache_operations_total", "Cache operations."),
        &["operation", "result"],
    )
    .expect("valid counter");
    let histogram = HistogramVec::new(
        HistogramOpts::new("cuenv_cache_operation_duration_seconds", "Durations.")
            .buckets(cache_monitor::buckets::DEFAULT_BUCKETS.to_vec()),
        &["operation", "result"],
    )
    .expect("valid histogram");
    registry.register(Box::new(counter.clone())).expect("register");
    registry.register(Box::new(histogram.clone())).expect("register");
    (registry, counter, histogram)
}

/// The cdylib `cargo bench` built beside the benchmark binaries.
pub fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("bench binary path");
    let lib = exe.parent().expect("target/<profile>/deps").join("libcache_monitor.so");
    assert!(lib.exists(), "{} missing: cargo bench builds it", lib.display());
    lib
}

/// A temporary directory where the README says a state file belongs: on a tmpfs, `$XDG_RUNTIME_DIR` or
/// else `/dev/shm`; the system's temporary directory when neither is there (the benchmark says which).
pub fn state_file_dir() -> tempfile::TempDir {
    let tmpfs = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/dev/shm")])
        .find(|dir| dir.is_dir());
    let dir = match &tmpfs {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory for state files");
    eprintln!("state files in {}", dir.path().display());
    dir
}

/// Polls a future that completes without waiting (the in-memory cache never does).
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the in-memory cache completes at once"),
    }
}
