//! What `MonitoredCache` adds to a `put` on the in-memory LRU `MemoryCache` (values serialised, as a shared
//! cache keeps them), bare and through the wrapper, in one run. What it adds to a `get`, on `MemoryCache`
//! and on the directory-backed `FileCache`, switched on and off, is measured paired, in `cache_overhead`.

mod support;

use std::hint::black_box;
use std::time::Duration;

use cache_monitor::{Cache, MemoryCache, MonitoredCache};
use criterion::{Criterion, criterion_group, criterion_main};
use support::ready;

fn overhead(c: &mut Criterion) {
    let bare = MemoryCache::default();
    let monitored = MonitoredCache::new(MemoryCache::default(), "bench");
    for cache_key in ["user:1", "user:2", "session:3"] {
        ready(bare.put(cache_key, &"a cached value of some length", None)).expect("put");
        ready(monitored.put(cache_key, &"a cached value of some length", None)).expect("put");
    }

    let mut group = c.benchmark_group("monitored_cache");
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
