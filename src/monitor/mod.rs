//! [`Monitor`]: one set of counters with its configuration, the type every API (Rust, C, HTTP) goes through.
//!
//! This file holds the recording side; `reading` reads the counts since the last reset and builds views,
//! reports and renders from them, `transfer` exports and imports state snapshots, `handle` is
//! [`MonitorHandle`], the one way to hold on to a monitor.

pub(crate) mod fork;
mod handle;
#[cfg(test)]
mod profiler_tests;
mod reading;
mod transfer;

pub use handle::MonitorHandle;
use quanta::Instant;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::analysis::clock::Clock;
use crate::analysis::patterns::{PatternTable, Patterns};
use crate::analysis::windows::Windows;
use crate::config::http::HttpConfig;
use crate::config::{Config, Section};
use crate::error::Error;
use crate::profiler::Profiler;
use crate::recording::backing::Backing;
use crate::recording::operation::{Gauge, Operation, Outcome};
use crate::recording::recorder::{Record, Recorder};
use crate::recording::shard::Shards;
use crate::recording::totals::Totals;
use crate::state::counts::CountsSinceReset;
use crate::sync::{Mutex, RwLock};

/// The process-wide monitor's large parts: static, zero-initialised atomics (see `backing`).
static GLOBAL_SHARDS: Shards = Shards::new();
static GLOBAL_WINDOWS: Windows = Windows::new();
static GLOBAL_PATTERN_TABLE: PatternTable = PatternTable::new();

static GLOBAL: OnceLock<Monitor> = OnceLock::new();

/// Records cache operations and renders what it has seen.
///
/// [`Monitor::global`] is the monitor behind the C ABI; [`Monitor::new`] makes independent ones (tests, or
/// several caches in one program that must not share counts). Recording is lock-free and allocation-free;
/// everything else takes short locks and is meant for configuration and scrapes.
pub struct Monitor {
    recorder: Recorder,
    clock: Clock,
    windows: Backing<Windows>,
    patterns: Patterns,
    config: RwLock<Config>,
    /// Totals at the last [`Monitor::reset`], subtracted from every read (the shards themselves are only
    /// ever written by recording threads).
    reset_baseline: Mutex<Option<Totals>>,
    /// A random identity, so an importer can tell our snapshots from others'.
    instance: u64,
    /// State imported from other monitors (library copies), by their identity.
    imported: Mutex<BTreeMap<u64, CountsSinceReset>>,
    /// Sampled stacks for flamegraphs (off unless configured).
    profiler: Profiler,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// A monitor with its own counters and the default configuration.
    pub fn new() -> Self {
        Self::with_clock(Clock::Monotonic)
    }

    /// A monitor with its own counters whose windows follow `clock` (a
    /// [`ManualClock`](crate::analysis::clock::ManualClock) in tests).
    pub fn with_clock(clock: Clock) -> Self {
        Self::with_parts(Backing::heap(), Backing::heap(), Backing::heap(), clock)
    }

    /// The process-wide monitor, the one the C ABI records into.
    #[inline]
    pub fn global() -> &'static Self {
        GLOBAL.get_or_init(|| {
            let statics = (&GLOBAL_SHARDS, &GLOBAL_WINDOWS, &GLOBAL_PATTERN_TABLE);
            Self::with_parts(
                Backing::Static(statics.0),
                Backing::Static(statics.1),
                Backing::Static(statics.2),
                Clock::Monotonic,
            )
        })
    }

    /// The process-wide monitor if anything has used it.
    pub(crate) fn global_if_used() -> Option<&'static Self> {
        GLOBAL.get()
    }

    fn with_parts(
        shards: Backing<Shards>,
        windows: Backing<Windows>,
        pattern_table: Backing<PatternTable>,
        clock: Clock,
    ) -> Self {
        let config = Config::default();
        Self {
            recorder: Recorder::new(shards, &config.buckets),
            clock,
            windows,
            patterns: Patterns::new(&config.patterns, pattern_table),
            config: RwLock::new(config),
            reset_baseline: Mutex::new(None),
            instance: transfer::random_instance(),
            imported: Mutex::new(BTreeMap::new()),
            profiler: Profiler::new(),
        }
    }

    /// Records one finished operation. `key` may be empty when the operation has none.
    ///
    /// Lock-free and allocation-free. Fails only for an operation code that is not registered.
    #[inline]
    pub fn record(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) -> Result<(), Error> {
        self.record_with_frames(operation, outcome, duration_ns, key, "")
    }

    /// [`Monitor::record`] for hosts whose stacks cannot be unwound (Go through cgo): when the profiler
    /// samples this record, `frames` (`;`-separated, outermost first, such as
    /// `"main.main;main.serve;cache.(*Cache).Get"`) become the leaf frames of its stack, under the native
    /// frames and above the operation. Bounded: see [`crate::profiler::HOST_FRAMES_BYTES`].
    #[inline]
    pub fn record_with_frames(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        frames: &str,
    ) -> Result<(), Error> {
        self.check_operation(operation)?;
        self.tick_if_due(self.clock.now_secs());
        self.recorder.record(Record {
            operation,
            outcome,
            duration_ns,
            pattern_id: self.patterns.id_of(key),
        });
        self.profiler.observe(operation, duration_ns, frames);
        Ok(())
    }

    /// Accepts `operation` if it is built in or registered.
    #[inline(always)]
    fn check_operation(&self, operation: Operation) -> Result<(), Error> {
        if self.recorder.accepts(operation) {
            Ok(())
        } else {
            Err(Error::UnknownOperation(operation.code()))
        }
    }

    /// Snapshots the counters for the rolling windows at the first record (or render) of each second.
    #[inline(always)]
    fn tick_if_due(&self, now: u64) {
        if self.windows.needs_tick(now) {
            self.windows.tick(now, self.recorder.operation_count(), &self.recorder);
        }
    }

    /// [`Monitor::record`] from raw codes, as the C ABI receives them.
    #[inline]
    pub fn record_codes(&self, operation: u32, result: u32, duration_ns: u64, key: &[u8]) -> Result<(), Error> {
        self.record_codes_with_frames(operation, result, duration_ns, key, "")
    }

    /// [`Monitor::record_with_frames`] from raw codes, as the C ABI receives them.
    #[inline]
    pub fn record_codes_with_frames(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
        frames: &str,
    ) -> Result<(), Error> {
        let outcome = Outcome::from_code(result).ok_or(Error::UnknownResult(result))?;
        self.record_with_frames(Operation::from_code(operation), outcome, duration_ns, key, frames)
    }

    /// Counts an operation as in flight until the matching [`Monitor::end`].
    pub fn begin(&self, operation: Operation) -> Result<(), Error> {
        self.check_operation(operation)?;
        self.recorder.begin(operation);
        Ok(())
    }

    /// Stops counting an operation begun with [`Monitor::begin`] (on any thread) as in flight. Recording
    /// it is a separate [`Monitor::record`].
    pub fn end(&self, operation: Operation) -> Result<(), Error> {
        self.check_operation(operation)?;
        self.recorder.end(operation);
        Ok(())
    }

    /// Begins `operation` and times it: [`InFlight::finish`] records it with the elapsed time, and
    /// dropping the guard unfinished just ends it. Timing reads the CPU's time-stamp counter through
    /// `quanta` (calibrated once per process), a few nanoseconds against twenty for the system clock here.
    pub fn start(&self, operation: Operation) -> Result<InFlight<'_>, Error> {
        self.begin(operation)?;
        Ok(InFlight {
            monitor: self,
            operation,
            started: Instant::now(),
            finished: false,
        })
    }

    /// Sets a host gauge (cache size, entries).
    pub fn set_gauge(&self, gauge: Gauge, value: u64) {
        self.recorder.set_gauge(gauge, value);
    }

    /// Applies a JSON configuration object (see [`Section::with_json`]); on error nothing changes.
    ///
    /// Histogram buckets can only change while nothing is recorded (at start-up or right after
    /// [`Monitor::reset`]), so no bucket ever mixes two sets of bounds.
    pub fn configure(&self, json: &str) -> Result<(), Error> {
        let mut config = self.config.write();
        let next = config.with_json(json)?;
        if next.buckets != config.buckets {
            let recorded = self.totals_with(&config).series.iter().flatten().any(|s| s.count > 0);
            if recorded {
                return Err(Error::Busy(
                    "histogram buckets can only change before the first record or right after a reset".to_owned(),
                ));
            }
            self.recorder.set_bounds(&next.buckets);
        }
        self.recorder.set_operation_count(next.operation_count());
        self.patterns.configure(&next.patterns);
        self.profiler.configure(&next.profiler);
        *config = next;
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config.read().clone()
    }

    /// The `"http"` section of the configuration in force, for the exporter.
    pub fn http_config(&self) -> HttpConfig {
        self.config.read().http.clone()
    }

    /// Forgets everything recorded, imported or sampled and zeroes the host gauges. Operations in flight
    /// stay in flight, and learned key patterns keep their ids (the cap counts patterns since start).
    pub fn reset(&self) {
        self.imported.lock().clear();
        let config = self.config.read();
        let mut raw = self.raw_totals(config.operation_count(), config.buckets.nanos().len());
        raw.begun.iter_mut().chain(raw.ended.iter_mut()).for_each(|c| *c = 0);
        *self.reset_baseline.lock() = Some(raw);
        for gauge in Gauge::ALL {
            self.recorder.set_gauge(gauge, 0);
        }
        self.profiler.reset();
    }

    /// Drops the heap this monitor holds beside its counters (imported state, the reset baseline, the
    /// profiler's table), as the library is unloaded. Counts read afterwards are those since the monitor
    /// started, and sampling is off.
    pub(crate) fn release_heap(&self) {
        self.imported.lock().clear();
        self.reset_baseline.lock().take();
        self.profiler.release();
        // Under the write lock, so no reader holds the old heap; readers after this see a configuration
        // without heap (see `Config::release_heap` for what that changes, and why it is harmless).
        self.config.write().release_heap();
    }

    /// Everything recorded (or imported) since the last reset.
    pub fn totals(&self) -> Totals {
        self.totals_with(&self.config.read())
    }

    /// Everything the shards hold, for the operations and buckets given: no reset, no imports.
    fn raw_totals(&self, operations: usize, buckets: usize) -> Totals {
        self.recorder.totals(operations, buckets, self.patterns.ids_in_use())
    }

    fn totals_with(&self, config: &Config) -> Totals {
        let raw = self.raw_totals(config.operation_count(), config.buckets.nanos().len());
        let mut totals = since_reset(raw, self.reset_baseline.lock().as_ref());
        for imported in self.imported.lock().values() {
            totals.merge(&imported.totals);
        }
        totals
    }
}

/// `raw` without what was counted before the last reset.
fn since_reset(raw: Totals, baseline: Option<&Totals>) -> Totals {
    match baseline {
        Some(baseline) => raw.since(baseline),
        None => raw,
    }
}

/// An operation in flight, from [`Monitor::start`].
#[must_use = "dropping the guard ends the operation without recording it"]
pub struct InFlight<'a> {
    monitor: &'a Monitor,
    operation: Operation,
    started: Instant,
    finished: bool,
}

impl InFlight<'_> {
    /// Ends the operation and records it with its outcome, key and the time since it started.
    pub fn finish(mut self, outcome: Outcome, key: &[u8]) {
        self.finished = true;
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Both calls can only fail for an unregistered operation, which `start` already refused.
        let _ = self.monitor.end(self.operation);
        let _ = self.monitor.record(self.operation, outcome, elapsed, key);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.monitor.end(self.operation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_counters_and_histograms() {
        let monitor = Monitor::new();
        monitor.record(Operation::GET, Outcome::Hit, 2_000, b"user:1").unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 3_000_000, b"").unwrap();
        monitor.record(Operation::PUT, Outcome::Ok, 500, b"").unwrap();
        let text = monitor.render_prometheus();
        assert!(
            text.contains("cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("cuenv_cache_operations_total{operation=\"put\",result=\"ok\"} 1\n"));
        assert!(text.contains(
            "cuenv_cache_operation_duration_seconds_bucket{operation=\"get\",result=\"hit\",le=\"0.0025\"} 1\n"
        ));
        assert!(text.contains(
            "cuenv_cache_operation_duration_seconds_bucket{operation=\"get\",result=\"hit\",le=\"+Inf\"} 2\n"
        ));
        assert!(
            text.contains("cuenv_cache_operation_duration_seconds_sum{operation=\"get\",result=\"hit\"} 0.003002\n")
        );
        assert!(text.contains("cuenv_cache_stats{metric=\"hit_rate\"} 1\n"));
        assert!(!text.contains("result=\"miss\""), "series appear at their first record");
    }

    #[test]
    fn reset_forgets_counts_but_not_in_flight() {
        let monitor = Monitor::new();
        monitor.begin(Operation::GET).unwrap();
        monitor.record(Operation::GET, Outcome::Miss, 10, b"").unwrap();
        monitor.set_gauge(Gauge::Entries, 5);
        monitor.reset();
        let totals = monitor.totals();
        assert!(totals.series.iter().flatten().all(|s| s.count == 0));
        assert_eq!(totals.in_flight(), 1);
        assert_eq!(monitor.view().gauges, [0, 0]);
        monitor.record(Operation::GET, Outcome::Miss, 10, b"").unwrap();
        assert_eq!(monitor.totals().series[0][1].count, 1);
    }

    #[test]
    fn buckets_change_only_while_empty() {
        let monitor = Monitor::new();
        monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 2_000_000, b"").unwrap();
        let busy = monitor.configure(r#"{"buckets": [0.01]}"#);
        assert!(matches!(busy, Err(Error::Busy(_))));
        assert_eq!(
            monitor.config().buckets.seconds(),
            &[0.001],
            "previous configuration stays"
        );
        monitor.reset();
        monitor.configure(r#"{"buckets": [0.01]}"#).unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 2_000_000, b"").unwrap();
        let series = &monitor.totals().series[0][0];
        assert_eq!((series.count, series.buckets.as_slice()), (1, [1, 0].as_slice()));
    }

    #[test]
    fn in_flight_guards_end_when_finished_or_dropped() {
        let monitor = Monitor::new();
        let first = monitor.start(Operation::PUT).unwrap();
        let second = monitor.start(Operation::GET).unwrap();
        assert_eq!(monitor.totals().in_flight(), 2);
        first.finish(Outcome::Ok, b"k");
        drop(second);
        let totals = monitor.totals();
        assert_eq!(totals.in_flight(), 0);
        assert_eq!(totals.series[Operation::PUT.index()][Outcome::Ok.index()].count, 1);
        assert_eq!(
            totals.series[Operation::GET.index()]
                .iter()
                .map(|s| s.count)
                .sum::<u64>(),
            0
        );
        assert_eq!(
            monitor.begin(Operation::from_code(12)),
            Err(Error::UnknownOperation(12))
        );
    }

    #[test]
    fn custom_operations_render_by_name() {
        let monitor = Monitor::new();
        let compact = Operation::from_code(Operation::FIRST_CUSTOM);
        assert!(monitor.record(compact, Outcome::Ok, 1, b"").is_err());
        monitor
            .configure(r#"{"operations": ["compact"], "namespace": "edge"}"#)
            .unwrap();
        monitor.record(compact, Outcome::Ok, 1, b"").unwrap();
        assert!(
            monitor
                .render_prometheus()
                .contains("edge_operations_total{operation=\"compact\",result=\"ok\"} 1\n")
        );
    }
}
