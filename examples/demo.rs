//! A small host: records a mixed workload into the process-wide monitor and prints the exposition.
//!
//! `cargo run --example demo`

use cache_monitor::{Gauge, Monitor, Operation, Outcome};

fn main() {
    let monitor = Monitor::global();
    for i in 0..10_000u64 {
        let key = format!("user:{}", i % 100);
        let outcome = if i % 5 == 0 { Outcome::Miss } else { Outcome::Hit };
        monitor
            .record(Operation::GET, outcome, 800 + i % 2_000, key.as_bytes())
            .expect("built-in operations are always registered");
        if outcome == Outcome::Miss {
            monitor
                .record(Operation::PUT, Outcome::Ok, 3_000 + i % 5_000, key.as_bytes())
                .expect("built-in operations are always registered");
        }
    }
    monitor.set_gauge(Gauge::Entries, 100);
    print!("{}", monitor.render_prometheus());
}
