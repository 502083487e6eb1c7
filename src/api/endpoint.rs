//! [`MetricsEndpoint`]: everything a monitored cache exposes, as text, for a host's own HTTP handlers.

use crate::api::monitored::MonitoredCache;
use crate::error::Error;
use crate::monitor::{Monitor, MonitorHandle};

/// The monitor's renders: Prometheus, JSON reports and flamegraphs.
#[derive(Clone)]
pub struct MetricsEndpoint {
    monitor: MonitorHandle,
}

impl MetricsEndpoint {
    /// The endpoint of a monitored cache.
    pub fn new<C>(cache: MonitoredCache<C>) -> Self
    where
        C: crate::api::cache::Cache,
    {
        Self {
            monitor: cache.monitor().clone(),
        }
    }

    /// The endpoint of a monitor.
    pub fn for_monitor(monitor: impl Into<MonitorHandle>) -> Self {
        Self {
            monitor: monitor.into(),
        }
    }

    fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Prometheus text exposition (format 0.0.4).
    pub fn prometheus_metrics(&self) -> String {
        self.monitor().render_prometheus()
    }

    /// OpenMetrics 1.0.0 exposition.
    pub fn openmetrics(&self) -> String {
        self.monitor().render_openmetrics()
    }

    /// The hit-rate report as JSON.
    pub fn hit_rate_json(&self) -> Result<String, Error> {
        Ok(self.monitor().render_hit_rate_json())
    }

    /// The real-time stats report as JSON.
    pub fn stats_json(&self) -> Result<String, Error> {
        Ok(self.monitor().render_stats_json())
    }

    /// The sampled stacks as folded stacks (`frame;frame;frame weight` lines), empty unless profiling is
    /// on (`MonitoredCacheBuilder::with_profiling`).
    pub fn flamegraph(&self) -> String {
        self.monitor().render_flamegraph_folded()
    }

    /// The sampled stacks as an SVG flamegraph.
    pub fn flamegraph_svg(&self) -> Result<String, Error> {
        self.monitor().render_flamegraph_svg()
    }
}
