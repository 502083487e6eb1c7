//! [`MonitoredCache`]: any [`Cache`] with every operation recorded, timed and traced, and its builder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::api::cache::{Cache, CacheError, CacheStatistics};
use crate::config::operations::Operation;
use crate::error::Error;
use crate::monitor::{Monitor, MonitorHandle};
use crate::recording::operation::{Gauge, Outcome};
use crate::render::json::{HitRateReport, StatsReport};

/// Samples one operation in this many when profiling is on without a rate of its own.
pub const DEFAULT_SAMPLING_RATE: u32 = 100;

/// The monitor a cache records into: [`MonitorHandle`], one type for every API that holds a monitor.
#[deprecated(note = "use MonitorHandle (cache_monitor::MonitorHandle)")]
pub type MonitorRef = MonitorHandle;

/// Where a [`MonitoredCache`] finds the trace id of an operation (see
/// [`MonitoredCacheBuilder::with_trace_id`]).
pub type TraceIdSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// A cache whose operations are recorded (operation, result, duration, key), counted in flight and
/// traced (a `tracing` span per operation), with the wrapped cache's API unchanged.
pub struct MonitoredCache<C> {
    cache: C,
    monitor: MonitorHandle,
    service_name: Arc<str>,
    /// Evictions the wrapped cache reported last, so each is recorded once.
    evictions_seen: Arc<AtomicU64>,
    /// Gives the trace id an operation's exemplar carries, if any.
    trace_id: Option<TraceIdSource>,
}

impl<C: Clone> Clone for MonitoredCache<C> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            monitor: self.monitor.clone(),
            service_name: self.service_name.clone(),
            evictions_seen: self.evictions_seen.clone(),
            trace_id: self.trace_id.clone(),
        }
    }
}

impl<C> std::fmt::Debug for MonitoredCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoredCache")
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

impl<C: Cache> MonitoredCache<C> {
    /// Wraps `cache` with a monitor of its own.
    pub fn new(cache: C, service_name: impl Into<String>) -> Self {
        Self::with_monitor(cache, service_name, MonitorHandle::Shared(Arc::new(Monitor::new())))
    }

    fn with_monitor(cache: C, service_name: impl Into<String>, monitor: MonitorHandle) -> Self {
        // Calibrate the operation timer now rather than on the first operation.
        crate::monitor::stopwatch::calibrate();
        Self {
            cache,
            monitor,
            service_name: service_name.into().into(),
            evictions_seen: Arc::new(AtomicU64::new(0)),
            trace_id: None,
        }
    }

    /// The monitor this cache records into.
    pub fn monitor(&self) -> &MonitorHandle {
        &self.monitor
    }

    /// The wrapped cache.
    pub fn inner(&self) -> &C {
        &self.cache
    }

    /// The service name on every span.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    super::renders::render_methods!();

    /// Hit rates by window, operation and key pattern.
    pub fn hit_rate_report(&self) -> HitRateReport {
        self.monitor.hit_rate_report()
    }

    /// In flight, rates, latencies and alerts.
    pub fn stats_report(&self) -> StatsReport {
        self.monitor.stats_report()
    }

    /// Prometheus text exposition of the monitor.
    #[deprecated(note = "use render_prometheus")]
    pub fn metrics_text(&self) -> String {
        self.render_prometheus()
    }

    /// The sampled stacks as folded stacks, empty unless profiling is on.
    #[deprecated(note = "use render_flamegraph_folded")]
    pub fn flamegraph_data(&self) -> String {
        self.render_flamegraph_folded()
    }

    /// Runs `operation` on the wrapped cache inside a span, counted in flight, and records it with the
    /// outcome `classify` reads from its result, and with the trace id of
    /// [`with_trace_id`](MonitoredCacheBuilder::with_trace_id) as its exemplar when that gives one. With monitoring switched off
    /// ([`Monitor::set_enabled`]), `observed!` runs only the operation instead: no clock read, no span, no
    /// in-flight count.
    async fn observe<T>(
        &self,
        operation: Operation,
        key: &str,
        classify: impl FnOnce(&Result<T, CacheError>) -> Outcome,
        call: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        let name = operation.builtin_name().unwrap_or("custom");
        let span = tracing::debug_span!(
            "cache",
            otel.name = name,
            service = %self.service_name,
            key,
            result = tracing::field::Empty
        );
        let in_flight = self.monitor.start(operation)?;
        // Without a subscriber listening, skip the span's enter and exit on every poll.
        let result = if span.is_disabled() {
            call.await
        } else {
            call.instrument(span.clone()).await
        };
        let outcome = classify(&result);
        span.record("result", outcome.name());
        match self.trace_id.as_ref().and_then(|source| source()) {
            // A trace id that is not a valid exemplar (over 120 characters) costs the exemplar only.
            Some(trace_id) => {
                let _ = in_flight.finish_with_exemplar(outcome, key.as_bytes(), &[("trace_id", &trace_id)]);
            }
            None => in_flight.finish(outcome, key.as_bytes()),
        }
        result
    }
}

/// Hit when found, miss when not, error on failure.
fn lookup<T>(result: &Result<T, CacheError>, found: impl FnOnce(&T) -> bool) -> Outcome {
    match result {
        Ok(value) if found(value) => Outcome::Hit,
        Ok(_) => Outcome::Miss,
        Err(_) => Outcome::Error,
    }
}

/// Ok on success, error on failure.
fn done<T>(result: &Result<T, CacheError>) -> Outcome {
    if result.is_ok() { Outcome::Ok } else { Outcome::Error }
}

/// `$self.observe(...)` awaited, or with monitoring switched off only the wrapped cache's call: the switch is
/// checked before `observe`'s future is made, so that a switched-off operation builds and moves nothing but
/// the wrapped cache's own future.
macro_rules! observed {
    ($self:ident, $operation:expr, $key:expr, $classify:expr, $call:expr) => {
        if $self.monitor.is_enabled() {
            $self.observe($operation, $key, $classify, $call).await
        } else {
            $call.await
        }
    };
}

impl<C: Cache> Cache for MonitoredCache<C> {
    async fn get<T>(&self, key: &str) -> Result<Option<T>, CacheError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        observed!(
            self,
            Operation::GET,
            key,
            |r| lookup(r, Option::is_some),
            self.cache.get(key)
        )
    }

    async fn put<T>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<(), CacheError>
    where
        T: Serialize + Send + Sync,
    {
        observed!(self, Operation::PUT, key, done, self.cache.put(key, value, ttl))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        observed!(self, Operation::DELETE, key, done, self.cache.delete(key))
    }

    async fn contains(&self, key: &str) -> Result<bool, CacheError> {
        observed!(
            self,
            Operation::CONTAINS,
            key,
            |r| lookup(r, |found| *found),
            self.cache.contains(key)
        )
    }

    async fn clear(&self) -> Result<(), CacheError> {
        observed!(self, Operation::CLEAR, "", done, self.cache.clear())
    }

    /// The wrapped cache's statistics; also sets the size and entry gauges and counts the evictions it
    /// reports since the last call as `evict` operations without a duration ([`Monitor::count`]): they
    /// are in `operations_total`, not in the duration histogram or the latency quantiles.
    async fn statistics(&self) -> Result<CacheStatistics, CacheError> {
        let statistics = self.cache.statistics().await?;
        self.monitor.set_gauge(Gauge::SizeBytes, statistics.total_bytes);
        self.monitor.set_gauge(Gauge::Entries, statistics.entry_count);
        let seen = self.evictions_seen.fetch_max(statistics.evictions, Ordering::Relaxed);
        self.monitor
            .count(Operation::EVICT, Outcome::Ok, statistics.evictions.saturating_sub(seen))?;
        Ok(statistics)
    }
}

/// Builds a [`MonitoredCache`]: `MonitoredCacheBuilder::new(cache).with_service_name("api").build()`.
pub struct MonitoredCacheBuilder<C> {
    cache: C,
    service_name: String,
    monitor: Option<MonitorHandle>,
    sampling_rate: Option<u32>,
    configuration: Vec<String>,
    trace_id: Option<TraceIdSource>,
}

impl<C: Cache> MonitoredCacheBuilder<C> {
    /// Starts from the cache to wrap.
    pub fn new(cache: C) -> Self {
        Self {
            cache,
            service_name: "cuenv-cache".to_owned(),
            monitor: None,
            sampling_rate: None,
            configuration: Vec::new(),
            trace_id: None,
        }
    }

    /// The service name on every span (default `cuenv-cache`).
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Records into `monitor`, shared with whoever else holds it, instead of a monitor of its own.
    pub fn with_monitor(mut self, monitor: Arc<Monitor>) -> Self {
        self.monitor = Some(MonitorHandle::Shared(monitor));
        self
    }

    /// Records into the process-wide monitor (the one the C ABI and the HTTP exporter serve).
    pub fn with_global_monitor(mut self) -> Self {
        self.monitor = Some(MonitorHandle::Global);
        self
    }

    /// Turns on the sampling profiler, one operation in [`DEFAULT_SAMPLING_RATE`] unless
    /// [`with_sampling_rate`](Self::with_sampling_rate) says otherwise.
    pub fn with_profiling(mut self) -> Self {
        self.sampling_rate.get_or_insert(DEFAULT_SAMPLING_RATE);
        self
    }

    /// Samples one operation in `every` for flamegraphs (turning profiling on).
    pub fn with_sampling_rate(mut self, every: u32) -> Self {
        self.sampling_rate = Some(every);
        self
    }

    /// Applies a configuration object (as `cache_monitor_configure` takes) to the monitor at build time.
    pub fn with_config(mut self, json: impl Into<String>) -> Self {
        self.configuration.push(json.into());
        self
    }

    /// Attaches the trace id `source` gives to every operation's record, as its exemplar
    /// `{trace_id="..."}` (see [`Monitor::record_with_exemplar`]); an operation for which it gives `None`
    /// is recorded without one.
    ///
    /// `source` runs once per operation, on the caller's task, after the operation, so
    /// `tracing::Span::current()` is the caller's span there. `tracing` itself has no trace ids, and a
    /// library cannot read a field a span recorded (only the subscriber's layers see them), so the trace
    /// id comes from whoever has one: with `tracing-opentelemetry`, for example,
    /// `|| { let context = tracing::Span::current().context(); let span = context.span();
    /// let ids = span.span_context(); ids.is_valid().then(|| ids.trace_id().to_string()) }`.
    /// A trace id longer than 120 characters (OpenMetrics' 128 less the label name) costs the exemplar,
    /// never the record.
    pub fn with_trace_id(mut self, source: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        self.trace_id = Some(Arc::new(source));
        self
    }

    /// The monitored cache, or the first configuration error.
    pub fn build(self) -> Result<MonitoredCache<C>, Error> {
        let monitor = self
            .monitor
            .unwrap_or_else(|| MonitorHandle::Shared(Arc::new(Monitor::new())));
        for json in &self.configuration {
            monitor.configure(json)?;
        }
        if let Some(every) = self.sampling_rate {
            monitor.configure(&format!(r#"{{"profiler": {{"sample_every": {every}}}}}"#))?;
        }
        let mut cache = MonitoredCache::with_monitor(self.cache, self.service_name, monitor);
        cache.trace_id = self.trace_id;
        Ok(cache)
    }
}
