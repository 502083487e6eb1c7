//! [`MetricsEndpoint`]: everything a monitored cache exposes, as text, for a host's own HTTP handlers.

use crate::api::monitored::MonitoredCache;
use crate::error::Error;
use crate::monitor::{Monitor, MonitorHandle};

/// The monitor's renders: Prometheus, JSON reports and flamegraphs, named as [`Monitor`] names them
/// (`render_prometheus`, `render_openmetrics`, `render_hit_rate_json`, `render_stats_json`,
/// `render_flamegraph_folded`, `render_flamegraph_svg`).
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

    super::renders::render_methods!();

    /// Prometheus text exposition (format 0.0.4).
    #[deprecated(note = "use render_prometheus")]
    pub fn prometheus_metrics(&self) -> String {
        self.render_prometheus()
    }

    /// OpenMetrics 1.0.0 exposition.
    #[deprecated(note = "use render_openmetrics")]
    pub fn openmetrics(&self) -> String {
        self.render_openmetrics()
    }

    /// The hit-rate report as JSON.
    #[deprecated(note = "use render_hit_rate_json")]
    pub fn hit_rate_json(&self) -> Result<String, Error> {
        Ok(self.render_hit_rate_json())
    }

    /// The real-time stats report as JSON.
    #[deprecated(note = "use render_stats_json")]
    pub fn stats_json(&self) -> Result<String, Error> {
        Ok(self.render_stats_json())
    }

    /// The sampled stacks as folded stacks.
    #[deprecated(note = "use render_flamegraph_folded")]
    pub fn flamegraph(&self) -> String {
        self.render_flamegraph_folded()
    }

    /// The sampled stacks as an SVG flamegraph.
    #[deprecated(note = "use render_flamegraph_svg")]
    pub fn flamegraph_svg(&self) -> Result<String, Error> {
        self.render_flamegraph_svg()
    }
}
