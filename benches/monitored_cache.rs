//! What `MonitoredCache` adds to a real cache: `get` and `put` on the in-memory LRU `MemoryCache` (values
//! serialised, as a shared cache keeps them), bare and through the wrapper (and through the wrapper with
//! monitoring switched off), in one run. The directory-backed `FileCache` has a paired benchmark of its
//! own, `file_cache_overhead`.

mod support;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cache_monitor::{Cache, MemoryCache, Monitor, MonitoredCache, MonitoredCacheBuilder};
use criterion::{Criterion, criterion_group, criterion_main};

/// Polls a future that completes without waiting (the in-memory cache never does).
fn ready<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the in-memory cache completes at once"),
    }
}

fn overhead(c: &mut Criterion) {
    let bare = MemoryCache::default();
    let monitored = MonitoredCache::new(MemoryCache::default(), "bench");
    for cache_key in ["user:1", "user:2", "session:3"] {
        ready(bare.put(cache_key, &"a cached value of some length", None)).expect("put");
        ready(monitored.put(cache_key, &"a cached value of some length", None)).expect("put");
    }

    let mut group = c.benchmark_group("monitored_cache");
    group.bench_function("get_hit/bare", |b| {
        b.iter(|| ready(bare.get::<String>(black_box("user:1"))))
    });
    group.bench_function("get_hit/monitored", |b| {
        b.iter(|| ready(monitored.get::<String>(black_box("user:1"))))
    });
    // Monitoring switched off: the wrapper only runs the cache (no clock, span or in-flight count).
    let monitor = std::sync::Arc::new(Monitor::new());
    monitor.set_enabled(false);
    let switched_off = MonitoredCacheBuilder::new(MemoryCache::default())
        .with_monitor(monitor)
        .build()
        .expect("a monitored cache");
    ready(switched_off.put("user:1", &"a cached value of some length", None)).expect("put");
    group.bench_function("get_hit/monitored_disabled", |b| {
        b.iter(|| ready(switched_off.get::<String>(black_box("user:1"))))
    });
    group.bench_function("put/bare", |b| {
        b.iter(|| ready(bare.put(black_box("user:2"), &"new value", None)))
    });
    group.bench_function("put/monitored", |b| {
        b.iter(|| ready(monitored.put(black_box("user:2"), &"new value", None)))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = overhead
}
criterion_main!(benches);
