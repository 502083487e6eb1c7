//! The renders every facade offers, under the names [`Monitor`](crate::Monitor) gives them, so that
//! `Monitor`, `MonitoredCache` and `MetricsEndpoint` name each render the same way.

/// Expands, inside an `impl` block of a type with a `monitor(&self)` method that reaches a `Monitor`,
/// to the seven renders: `render_prometheus`, `render_openmetrics`, `render_protobuf`, `render_hit_rate_json`,
/// `render_stats_json`, `render_flamegraph_folded` and `render_flamegraph_svg`.
macro_rules! render_methods {
    () => {
        /// Prometheus text exposition (format 0.0.4) of every metric family.
        pub fn render_prometheus(&self) -> String {
            self.monitor().render_prometheus()
        }

        /// OpenMetrics 1.0.0 exposition of every metric family.
        pub fn render_openmetrics(&self) -> String {
            self.monitor().render_openmetrics()
        }

        /// The protobuf exposition (length-delimited `io.prometheus.client.MetricFamily` messages), the
        /// only one with native histograms.
        pub fn render_protobuf(&self) -> Vec<u8> {
            self.monitor().render_protobuf()
        }

        /// The hit-rate report (rolling windows, operations, key patterns) as JSON.
        pub fn render_hit_rate_json(&self) -> String {
            self.monitor().render_hit_rate_json()
        }

        /// The real-time stats report (in flight, rates, latencies, alerts) as JSON.
        pub fn render_stats_json(&self) -> String {
            self.monitor().render_stats_json()
        }

        /// The sampled stacks as folded stacks (`frame;frame;frame weight` lines), empty unless profiling
        /// is on.
        pub fn render_flamegraph_folded(&self) -> String {
            self.monitor().render_flamegraph_folded()
        }

        /// The sampled stacks as an SVG flamegraph, or a small SVG saying why there is none yet and how
        /// to turn sampling on.
        pub fn render_flamegraph_svg(&self) -> Result<String, $crate::error::Error> {
            self.monitor().render_flamegraph_svg()
        }
    };
}

pub(crate) use render_methods;
