//! Reading a monitor: own counts since the reset plus imported state, turned into views and reports.

use std::collections::BTreeMap;

use super::{Monitor, since_reset};
use crate::analysis::view::{MetricsView, PatternTotals};
use crate::analysis::windows::{self, ReadScope, Resolution, WINDOWS, oldest_window_start, recent_latency_start};
use crate::error::Error;
use crate::profiler::{FoldedStack, ProfilerStats};
use crate::recording::exemplars::Exemplar;
use crate::recording::operation::{OUTCOMES, Outcome};
use crate::recording::shard::OTHER_PATTERN_ID;
use crate::recording::totals::Totals;
use crate::render::json::{self, HitRateReport, StatsReport};
use crate::render::protobuf;
use crate::render::text::{self, Format};
use crate::state::counts::CountsSinceReset;

impl Monitor {
    /// Everything since the last reset, own and imported, at `now`, with `operations` operations and
    /// `buckets` finite bounds. [`ReadScope::Everything`] also symbolises the sampled stacks (for an
    /// export).
    pub(crate) fn counts_since_reset(
        &self,
        now: u64,
        operations: usize,
        buckets: usize,
        scope: ReadScope,
    ) -> CountsSinceReset {
        let (raw, baseline) = self.raw_and_baseline();
        let (deltas, pending) = self.recorder.window_deltas(oldest_window_start(now), now);
        let (histories, latency) = windows::histories(&deltas, &pending, &raw.outcome_counts(), &raw.latency);
        let floor = baseline.as_ref().map(Totals::outcome_counts).unwrap_or_default();
        let windows = histories.iter().map(|history| history.above(&floor)).collect();
        let latency = match &baseline {
            Some(baseline) => latency.above(&baseline.latency),
            None => latency,
        }
        .map(|ops| ops[..operations.min(ops.len())].to_vec());
        let totals = since_reset(raw, baseline.as_ref()).shaped(operations, buckets);
        let stacks = match scope {
            // Symbolising is a render of its own (the flamegraph); the views leave it out.
            ReadScope::Windows => Vec::new(),
            ReadScope::Everything => self.profiler.stacks(&self.config.read()),
        };
        let mut counts = CountsSinceReset {
            totals,
            windows,
            latency,
            history_start: deltas.first_second,
            stacks,
        };
        for imported in self.imported.lock().values() {
            counts.add(&imported.counts);
        }
        counts
    }

    /// A consistent read of everything the renderers need.
    pub fn view(&self) -> MetricsView {
        let now = self.recorder.now();
        let config = self.config();
        let operations = config.operation_count();
        let CountsSinceReset {
            totals,
            windows: histories,
            latency,
            history_start,
            ..
        } = self.counts_since_reset(now, operations, config.buckets.nanos().len(), ReadScope::Windows);

        let windows = WINDOWS
            .iter()
            .map(|(_, seconds)| {
                let (resolution, from) = Resolution::for_window(*seconds, now);
                let index = Resolution::ALL.iter().position(|r| *r == resolution).unwrap_or(0);
                histories[index].since(from)
            })
            .collect();
        let history_secs = history_start.map_or(0, |start| now.saturating_sub(start) + 1);
        let recent_start = recent_latency_start(now);
        let mut recent_latency = latency.since(recent_start);
        recent_latency.resize(operations, Default::default());

        let mut patterns: BTreeMap<String, [u64; OUTCOMES]> = BTreeMap::new();
        for (mut label, id) in self.patterns().learned() {
            label.push(b'*');
            let counts = patterns
                .entry(String::from_utf8_lossy(&label).into_owned())
                .or_default();
            for (count, add) in counts.iter_mut().zip(totals.patterns[id]) {
                *count += add;
            }
        }
        let exemplars = self.exemplars_of(&totals, config.buckets.nanos());
        MetricsView {
            exemplars,
            gauges: self.recorder.gauges(),
            windows,
            recent_latency,
            recent_latency_secs: (now - recent_start).min(history_secs),
            history_secs,
            patterns: patterns
                .into_iter()
                .filter(|(_, counts)| counts.iter().any(|c| *c > 0))
                .map(|(pattern, counts)| PatternTotals { pattern, counts })
                .collect(),
            other_pattern: totals.patterns[OTHER_PATTERN_ID],
            patterns_tracked: self.patterns().tracked(),
            totals,
            config,
            summaries: Default::default(),
        }
    }

    /// The exemplars of every recorded series of `totals` that has any, each checked against the bucket it
    /// is shown on (`nanos`: the bounds in force), so none can sit under a bound it does not belong to.
    fn exemplars_of(&self, totals: &Totals, nanos: &[u64]) -> BTreeMap<(u32, u32), Vec<Option<Exemplar>>> {
        let epoch = self.exemplars.epoch();
        let generation = self.recorder.region().core.baseline.generation();
        let in_bucket = |bucket: usize, duration: u64| {
            (bucket == 0 || duration > nanos[bucket - 1]) && nanos.get(bucket).is_none_or(|bound| duration <= *bound)
        };
        let mut found = BTreeMap::new();
        for (operation, series) in totals.series.iter().enumerate() {
            for (outcome, counts) in Outcome::ALL.into_iter().zip(series) {
                if counts.count == 0 {
                    continue;
                }
                let buckets: Vec<Option<Exemplar>> = (0..=nanos.len())
                    .map(|bucket| {
                        self.exemplars
                            .read(operation, outcome.index(), bucket, epoch, generation)
                            .filter(|exemplar| in_bucket(bucket, exemplar.duration_ns))
                    })
                    .collect();
                if buckets.iter().any(Option::is_some) {
                    found.insert((operation as u32, outcome.code()), buckets);
                }
            }
        }
        found
    }

    /// Prometheus text exposition (format 0.0.4) of every metric family.
    pub fn render_prometheus(&self) -> String {
        text::render(&self.view(), Format::Text)
    }

    /// OpenMetrics 1.0.0 exposition of every metric family.
    pub fn render_openmetrics(&self) -> String {
        text::render(&self.view(), Format::OpenMetrics)
    }

    /// The protobuf exposition: every metric family as length-delimited
    /// `io.prometheus.client.MetricFamily` messages, the duration histogram with its native buckets
    /// (unless `{"native_histograms": false}`). Content type
    /// [`PROTOBUF_CONTENT_TYPE`](crate::render::protobuf::PROTOBUF_CONTENT_TYPE).
    pub fn render_protobuf(&self) -> Vec<u8> {
        protobuf::render(&self.view())
    }

    /// The hit-rate report: rolling windows, operations, key patterns.
    pub fn hit_rate_report(&self) -> HitRateReport {
        HitRateReport::new(&self.view())
    }

    /// The real-time stats report: in flight, rates, latencies, alerts.
    pub fn stats_report(&self) -> StatsReport {
        StatsReport::new(&self.view())
    }

    /// [`Monitor::hit_rate_report`] as JSON.
    pub fn render_hit_rate_json(&self) -> String {
        json::to_json(&self.hit_rate_report())
    }

    /// [`Monitor::stats_report`] as JSON.
    pub fn render_stats_json(&self) -> String {
        json::to_json(&self.stats_report())
    }

    /// The sampled stacks as folded stacks (`frame;frame;frame weight` lines, as `flamegraph.pl` and
    /// `inferno-flamegraph` read), weighted as the `profiler.weight` configuration says. Empty until
    /// sampling is configured.
    pub fn render_flamegraph_folded(&self) -> String {
        self.profiler.render_folded(&self.config(), &self.imported_stacks())
    }

    /// The sampled stacks as an SVG flamegraph. With no stack to draw it is a small SVG that says why
    /// (sampling off, no sample yet) and how to turn sampling on (`{"profiler": {"sample_every": 100}}`).
    pub fn render_flamegraph_svg(&self) -> Result<String, Error> {
        self.profiler.render_svg(&self.config(), &self.imported_stacks())
    }

    /// Stacks sampled by the library copies whose state was imported.
    fn imported_stacks(&self) -> Vec<FoldedStack> {
        self.imported
            .lock()
            .values()
            .flat_map(|imported| imported.counts.stacks.iter().cloned())
            .collect()
    }

    /// What the profiler holds: samples, distinct stacks, capacity, overflow.
    pub fn profiler_stats(&self) -> ProfilerStats {
        self.profiler.stats()
    }
}
