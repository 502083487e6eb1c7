//! [`Monitor`]: one set of counters with its configuration, the type every API (Rust, C, HTTP) goes through.

use std::sync::LazyLock;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::buckets::BucketBounds;
use crate::config::Config;
use crate::error::Error;
use crate::exporter::HttpConfig;
use crate::operation::{Gauge, Operation, Outcome};
use crate::recorder::{Record, Recorder};
use crate::render::MetricsView;
use crate::render::text::{self, Format};
use crate::shard::Shards;
use crate::totals::Totals;

/// The process-wide monitor's shards: static, zero-initialised, cache-line padded atomics.
static GLOBAL_SHARDS: Shards = Shards::new();

static GLOBAL: LazyLock<Monitor> = LazyLock::new(|| {
    Monitor::with_recorder(Recorder::with_static_shards(
        &GLOBAL_SHARDS,
        &BucketBounds::default(),
    ))
});

/// Records cache operations and renders what it has seen.
///
/// [`Monitor::global`] is the monitor behind the C ABI; [`Monitor::new`] makes independent ones (tests, or
/// several caches in one program that must not share counts). Recording is lock-free and allocation-free;
/// everything else takes short locks and is meant for configuration and scrapes.
pub struct Monitor {
    recorder: Recorder,
    config: RwLock<Config>,
    /// Totals at the last [`Monitor::reset`], subtracted from every read (the shards themselves are only
    /// ever written by recording threads).
    reset_baseline: Mutex<Option<Totals>>,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// A monitor with its own counters and the default configuration.
    pub fn new() -> Self {
        Self::with_recorder(Recorder::with_heap_shards(&BucketBounds::default()))
    }

    /// The process-wide monitor, the one the C ABI records into.
    pub fn global() -> &'static Self {
        &GLOBAL
    }

    fn with_recorder(recorder: Recorder) -> Self {
        Self {
            recorder,
            config: RwLock::new(Config::default()),
            reset_baseline: Mutex::new(None),
        }
    }

    /// Records one finished operation. `key` may be empty when the operation has none.
    ///
    /// Lock-free and allocation-free. Fails only for an operation code that is not registered.
    #[inline]
    pub fn record(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
    ) -> Result<(), Error> {
        self.recorder.check_operation(operation)?;
        let _ = key;
        self.recorder.record(Record {
            operation,
            outcome,
            duration_ns,
            pattern_slot: None,
        });
        Ok(())
    }

    /// [`Monitor::record`] from raw codes, as the C ABI receives them.
    #[inline]
    pub fn record_codes(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
    ) -> Result<(), Error> {
        let outcome = Outcome::from_code(result).ok_or(Error::UnknownResult(result))?;
        self.record(Operation::from_code(operation), outcome, duration_ns, key)
    }

    /// Counts an operation as in flight until the matching [`Monitor::end`].
    pub fn begin(&self, operation: Operation) -> Result<(), Error> {
        self.recorder.check_operation(operation)?;
        self.recorder.begin(operation);
        Ok(())
    }

    /// Stops counting an operation begun with [`Monitor::begin`] (on any thread) as in flight. Recording
    /// it is a separate [`Monitor::record`].
    pub fn end(&self, operation: Operation) -> Result<(), Error> {
        self.recorder.check_operation(operation)?;
        self.recorder.end(operation);
        Ok(())
    }

    /// Begins `operation` and times it: [`InFlight::finish`] records it with the elapsed time, and
    /// dropping the guard unfinished just ends it.
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

    /// Applies a JSON configuration object (see [`Config::with_json`]); on error nothing changes.
    ///
    /// Histogram buckets can only change while nothing is recorded (at start-up or right after
    /// [`Monitor::reset`]), so no bucket ever mixes two sets of bounds.
    pub fn configure(&self, json: &str) -> Result<(), Error> {
        let mut config = self.config.write();
        let next = config.with_json(json)?;
        if next.buckets != config.buckets {
            let recorded = self
                .totals_with(&config)
                .series
                .iter()
                .flatten()
                .any(|s| s.count > 0);
            if recorded {
                return Err(Error::Busy(
                    "histogram buckets can only change before the first record or right after a reset".to_owned(),
                ));
            }
            self.recorder.set_bounds(&next.buckets);
        }
        self.recorder.set_operation_count(next.operation_count());
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

    /// Forgets everything recorded and zeroes the host gauges. Operations in flight stay in flight.
    pub fn reset(&self) {
        let config = self.config.read();
        let mut raw = self
            .recorder
            .totals(config.operation_count(), config.buckets.nanos().len());
        raw.begun
            .iter_mut()
            .chain(raw.ended.iter_mut())
            .for_each(|c| *c = 0);
        *self.reset_baseline.lock() = Some(raw);
        for gauge in Gauge::ALL {
            self.recorder.set_gauge(gauge, 0);
        }
    }

    /// Everything recorded since the last reset.
    pub fn totals(&self) -> Totals {
        self.totals_with(&self.config.read())
    }

    fn totals_with(&self, config: &Config) -> Totals {
        let raw = self
            .recorder
            .totals(config.operation_count(), config.buckets.nanos().len());
        match &*self.reset_baseline.lock() {
            Some(baseline) => raw.since(baseline),
            None => raw,
        }
    }

    /// A consistent read of configuration, totals and gauges for the renderers.
    pub fn view(&self) -> MetricsView {
        let config = self.config.read().clone();
        let totals = self.totals_with(&config);
        MetricsView {
            config,
            totals,
            gauges: self.recorder.gauges(),
        }
    }

    /// Prometheus text exposition (format 0.0.4) of every metric family.
    pub fn render_prometheus(&self) -> String {
        text::render(&self.view(), Format::Text)
    }

    /// OpenMetrics 1.0.0 exposition of every metric family.
    pub fn render_openmetrics(&self) -> String {
        text::render(&self.view(), Format::OpenMetrics)
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
        monitor
            .record(Operation::GET, Outcome::Hit, 2_000, b"user:1")
            .unwrap();
        monitor
            .record(Operation::GET, Outcome::Hit, 3_000_000, b"")
            .unwrap();
        monitor
            .record(Operation::PUT, Outcome::Ok, 500, b"")
            .unwrap();
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
        assert!(text.contains("cuenv_cache_operation_duration_seconds_sum{operation=\"get\",result=\"hit\"} 0.003002\n"));
        assert!(text.contains("cuenv_cache_stats{metric=\"hit_rate\"} 1\n"));
        assert!(
            !text.contains("result=\"miss\""),
            "series appear at their first record"
        );
    }

    #[test]
    fn reset_forgets_counts_but_not_in_flight() {
        let monitor = Monitor::new();
        monitor.begin(Operation::GET).unwrap();
        monitor
            .record(Operation::GET, Outcome::Miss, 10, b"")
            .unwrap();
        monitor.set_gauge(Gauge::Entries, 5);
        monitor.reset();
        let totals = monitor.totals();
        assert!(totals.series.iter().flatten().all(|s| s.count == 0));
        assert_eq!(totals.in_flight(), 1);
        assert_eq!(monitor.view().gauges, [0, 0]);
        monitor
            .record(Operation::GET, Outcome::Miss, 10, b"")
            .unwrap();
        assert_eq!(monitor.totals().series[0][1].count, 1);
    }

    #[test]
    fn buckets_change_only_while_empty() {
        let monitor = Monitor::new();
        monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
        monitor
            .record(Operation::GET, Outcome::Hit, 2_000_000, b"")
            .unwrap();
        let busy = monitor.configure(r#"{"buckets": [0.01]}"#);
        assert!(matches!(busy, Err(Error::Busy(_))));
        assert_eq!(
            monitor.config().buckets.seconds(),
            &[0.001],
            "previous configuration stays"
        );
        monitor.reset();
        monitor.configure(r#"{"buckets": [0.01]}"#).unwrap();
        monitor
            .record(Operation::GET, Outcome::Hit, 2_000_000, b"")
            .unwrap();
        let series = &monitor.totals().series[0][0];
        assert_eq!(
            (series.count, series.buckets.as_slice()),
            (1, [1, 0].as_slice())
        );
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
        assert_eq!(
            totals.series[Operation::PUT.index()][Outcome::Ok.index()].count,
            1
        );
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
