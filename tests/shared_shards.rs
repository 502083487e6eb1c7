//! More live threads than owned shards: 64 threads own a shard each, the ones after them share 16 shards
//! with atomic adds. 100 threads recording at once in this process (its own, so no other test took
//! shards first) take both paths, and every record counts exactly once.

use std::sync::Barrier;

use cache_monitor::{Monitor, Operation, Outcome};

const THREADS: usize = 100;
const RECORDS: u64 = 20_000;

#[test]
fn a_hundred_threads_owners_and_sharers_alike_count_every_record_once() {
    let monitor = Monitor::new();
    // Every thread records its first record only when all are alive: no pointer is reused, so 36 of
    // them find the owned shards taken and share.
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (monitor, start) = (&monitor, &start);
            scope.spawn(move || {
                start.wait();
                for i in 0..RECORDS {
                    let outcome = if (i + thread as u64).is_multiple_of(4) {
                        Outcome::Miss
                    } else {
                        Outcome::Hit
                    };
                    monitor
                        .record(
                            Operation::GET,
                            outcome,
                            1_000 + i,
                            format!("t{}:{i}", thread % 7).as_bytes(),
                        )
                        .unwrap();
                }
                // Wait for every thread to finish before exiting: no thread pointer is freed for reuse
                // while others still record.
                start.wait();
            });
        }
    });
    let totals = monitor.totals();
    let get = &totals.series[Operation::GET.code() as usize];
    let (hits, misses) = (
        get[Outcome::Hit.code() as usize].count,
        get[Outcome::Miss.code() as usize].count,
    );
    assert_eq!(hits + misses, THREADS as u64 * RECORDS, "every record counted once");
    assert_eq!(misses, THREADS as u64 * RECORDS / 4);
    for series in get {
        assert_eq!(
            series.count,
            series.buckets.iter().sum::<u64>(),
            "each record in one bucket"
        );
    }
    let parsed = monitor.render_prometheus();
    assert!(
        parsed.contains(&format!(
            "cuenv_cache_operations_total{{operation=\"get\",result=\"hit\"}} {hits}\n"
        )),
        "the render agrees"
    );
}
