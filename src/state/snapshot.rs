//! The wire format of state snapshots: [`StateSnapshot`], versioned JSON, and its conversion from and to
//! [`CountsSinceReset`], the read model. The swap protocol is in the `state` module's documentation.

use serde::{Deserialize, Serialize};

use super::counts::CountsSinceReset;
use crate::analysis::history::History;
use crate::analysis::windows::Resolution;
use crate::error::Error;
use crate::profiler::{FoldedStack, MAX_STACKS_LIMIT, merge_bounded};
use crate::recording::latency::{self, LATENCY_BUCKETS, LatencyCounts};
use crate::recording::operation::{Gauge, MAX_OPERATIONS, OUTCOMES};
use crate::recording::patterns::MAX_PREFIX;
use crate::recording::totals::{OutcomeCounts, SeriesTotals, Totals};

/// The `format` of every snapshot.
pub const SNAPSHOT_FORMAT: &str = "cache-monitor-state";
/// The snapshot version this library writes. Version 2 carries each series' latency buckets (the native
/// histogram at schema 5); version 1, from earlier copies of the library, carried log-linear latency
/// buckets per operation, and is still read (its latency buckets converted on import).
pub const SNAPSHOT_VERSION: u32 = 2;
/// How many distinct monitors one monitor keeps imported state from.
pub const MAX_IMPORT_SOURCES: usize = 8;

/// The serialised snapshot. Counts are those since the exporter's last reset, own plus imported.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct StateSnapshot {
    pub(crate) format: String,
    pub(crate) version: u32,
    /// The exporting monitor's random identity, in hex; imports from one source replace each other.
    pub(crate) instance: String,
    /// The exporter's clock when exporting, in seconds.
    pub(crate) exported_at: u64,
    /// The exporter's configuration, as `cache_monitor_configure` takes it.
    pub(crate) config: serde_json::Value,
    pub(crate) gauges: Vec<u64>,
    /// Per operation code, per outcome code.
    pub(crate) series: Vec<Vec<SeriesSnapshot>>,
    /// Version 1 only: per operation code, non-zero log-linear latency buckets as `[index, count]`
    /// (version 2 keeps them per series).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) latency: SparseLatency,
    pub(crate) begun: Vec<u64>,
    pub(crate) ended: Vec<u64>,
    pub(crate) patterns: Vec<PatternSnapshot>,
    pub(crate) other_pattern: [u64; OUTCOMES],
    pub(crate) history_start: Option<u64>,
    /// Count histories in [`Resolution::ALL`] order (1 s, 10 s, 5 min).
    pub(crate) windows: Vec<HistorySnapshot>,
    pub(crate) latency_history: LatencyHistorySnapshot,
    /// Sampled stacks: `[frames, samples, total duration in ns]`, at most [`MAX_STACKS_LIMIT`].
    #[serde(default)]
    pub(crate) stacks: Vec<(Vec<String>, u64, u64)>,
}

/// One `(operation, outcome)` series.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct SeriesSnapshot {
    pub(crate) sum_ns: u64,
    pub(crate) buckets: Vec<u64>,
    /// Operations counted without a duration (absent from snapshots of earlier versions: 0).
    #[serde(default)]
    pub(crate) untimed: u64,
    /// Non-zero latency buckets (the native histogram, schema 5) as `[index, count]`; version 2.
    #[serde(default)]
    pub(crate) latency: Vec<(usize, u64)>,
}

/// One pattern: its prefix bytes in hex (keys are bytes, not text) and outcome counts.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct PatternSnapshot {
    pub(crate) prefix: String,
    pub(crate) counts: [u64; OUTCOMES],
}

/// A count history: `[period, counts per operation]` snapshots and the final counts.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct HistorySnapshot {
    pub(crate) snapshots: Vec<(u64, Vec<[u64; OUTCOMES]>)>,
    pub(crate) last: Vec<[u64; OUTCOMES]>,
}

/// Latency buckets per operation, non-zero ones only, as `[index, count]`.
pub(crate) type SparseLatency = Vec<Vec<(usize, u64)>>;

/// A latency history, buckets sparse as in [`StateSnapshot::latency`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct LatencyHistorySnapshot {
    pub(crate) snapshots: Vec<(u64, SparseLatency)>,
    pub(crate) last: SparseLatency,
}

/// What an exporter knows besides its [`CountsSinceReset`].
pub(crate) struct ExportContext {
    pub(crate) instance: u64,
    pub(crate) now: u64,
    pub(crate) config_json: String,
    pub(crate) gauges: [u64; Gauge::ALL.len()],
    /// Learned `(prefix, pattern id)` pairs.
    pub(crate) patterns: Vec<(Vec<u8>, usize)>,
}

impl StateSnapshot {
    /// The snapshot of `counts`.
    pub(crate) fn export(counts: &CountsSinceReset, context: ExportContext) -> Self {
        let totals = &counts.totals;
        let operations = totals.series.len();
        Self {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            instance: format!("{:016x}", context.instance),
            exported_at: context.now,
            config: serde_json::from_str(&context.config_json).unwrap_or(serde_json::Value::Null),
            gauges: context.gauges.to_vec(),
            series: totals
                .series
                .iter()
                .map(|series| {
                    series
                        .iter()
                        .map(|s| SeriesSnapshot {
                            sum_ns: s.sum_ns,
                            buckets: s.buckets.clone(),
                            untimed: s.untimed,
                            latency: sparse(&s.latency),
                        })
                        .collect()
                })
                .collect(),
            latency: Vec::new(),
            begun: totals.begun.clone(),
            ended: totals.ended.clone(),
            patterns: context
                .patterns
                .iter()
                .filter(|(_, id)| totals.patterns[*id].iter().any(|c| *c > 0))
                .map(|(prefix, id)| PatternSnapshot {
                    prefix: hex(prefix),
                    counts: totals.patterns[*id],
                })
                .collect(),
            other_pattern: totals.patterns[crate::recording::shard::OTHER_PATTERN_ID],
            history_start: counts.history_start,
            windows: counts
                .windows
                .iter()
                .map(|history| HistorySnapshot {
                    snapshots: history
                        .snapshots()
                        .iter()
                        .map(|(period, counts)| (*period, counts[..operations].to_vec()))
                        .collect(),
                    last: history.last()[..operations].to_vec(),
                })
                .collect(),
            stacks: merge_bounded(counts.stacks.clone(), MAX_STACKS_LIMIT)
                .into_iter()
                .map(|stack| (stack.frames, stack.samples, stack.total_ns))
                .collect(),
            latency_history: LatencyHistorySnapshot {
                snapshots: counts
                    .latency
                    .snapshots()
                    .iter()
                    .map(|(period, counts)| (*period, counts.iter().map(sparse).collect()))
                    .collect(),
                last: counts.latency.last().iter().map(sparse).collect(),
            },
        }
    }

    /// Parses and checks a snapshot: malformed input is `InvalidSnapshot`, another format or version is
    /// `ForeignSnapshot`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidSnapshot(format!("not JSON: {e}")))?;
        let format = value.get("format").and_then(serde_json::Value::as_str);
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if format != Some(SNAPSHOT_FORMAT) || !matches!(version, Some(1 | 2)) {
            return Err(Error::ForeignSnapshot(format!(
                "expected format {SNAPSHOT_FORMAT:?} version 1 or {SNAPSHOT_VERSION}, got {format:?} version {version:?}"
            )));
        }
        let mut snapshot: Self = serde_json::from_value(value).map_err(|e| Error::InvalidSnapshot(e.to_string()))?;
        if snapshot.version == 1 {
            snapshot.upgrade_from_v1().map_err(Error::InvalidSnapshot)?;
        } else if !snapshot.latency.is_empty() {
            return Err(Error::InvalidSnapshot(
                "malformed snapshot: per-operation latency buckets are version 1's".to_owned(),
            ));
        }
        snapshot.check().map_err(Error::InvalidSnapshot)?;
        Ok(snapshot)
    }

    /// Turns a version-1 snapshot into version 2: each log-linear latency bucket's count goes to the
    /// native bucket of the duration it reported (its midpoint: the distribution moves by at most a
    /// bucket, counts stay exact), and an operation's buckets are dealt to its series in index order,
    /// each series taking as many as it has timed records (what does not fit goes to the last series
    /// with records, or the first).
    fn upgrade_from_v1(&mut self) -> Result<(), String> {
        let fits = |ops: &SparseLatency| ops.iter().flatten().all(|(index, _)| *index < V1_LATENCY_BUCKETS);
        let history_fits = self.latency_history.snapshots.iter().all(|(_, ops)| fits(ops));
        if !fits(&self.latency) || !fits(&self.latency_history.last) || !history_fits {
            return Err("malformed snapshot: latency buckets".to_owned());
        }
        let convert = |ops: &SparseLatency| -> SparseLatency {
            ops.iter()
                .map(|op| {
                    let mut counts = LatencyCounts::default();
                    for (index, count) in op {
                        counts.add(latency::index_of(v1_latency_value(*index)), *count);
                    }
                    counts.nonzero()
                })
                .collect()
        };
        let operations = std::mem::take(&mut self.latency);
        for (buckets, series) in convert(&operations).into_iter().zip(self.series.iter_mut()) {
            let wants: Vec<u64> = series
                .iter()
                .map(|s| s.buckets.iter().fold(0u64, |sum, c| sum.saturating_add(*c)))
                .collect();
            let rest = wants.iter().rposition(|w| *w > 0).unwrap_or(0);
            let mut outcome = 0;
            let mut taken = 0u64;
            for (index, mut count) in buckets {
                while count > 0 {
                    while outcome < rest && taken >= wants[outcome] {
                        outcome += 1;
                        taken = 0;
                    }
                    let Some(target) = series.get_mut(outcome) else { break };
                    let share = if outcome < rest {
                        count.min(wants[outcome] - taken)
                    } else {
                        count
                    };
                    target.latency.push((index, share));
                    taken = taken.saturating_add(share);
                    count -= share;
                }
            }
            for target in series.iter_mut() {
                target.latency = sparse(&dense(&target.latency));
            }
        }
        self.latency_history.last = convert(&self.latency_history.last);
        for (_, ops) in &mut self.latency_history.snapshots {
            *ops = convert(ops);
        }
        self.version = SNAPSHOT_VERSION;
        Ok(())
    }

    /// The exporter's identity.
    pub(crate) fn instance(&self) -> Result<u64, Error> {
        u64::from_str_radix(&self.instance, 16).map_err(|_| Error::InvalidSnapshot("bad instance".to_owned()))
    }

    /// Structural limits, so that a hostile snapshot cannot make an import index out of range or allocate
    /// without bound.
    fn check(&self) -> Result<(), String> {
        let operations = self.series.len();
        let buckets = self
            .series
            .first()
            .and_then(|s| s.first())
            .map_or(0, |s| s.buckets.len());
        let fits = |counts: &[[u64; OUTCOMES]]| counts.len() <= operations;
        let sparse_fits = |ops: &[Vec<(usize, u64)>]| {
            ops.len() <= operations && ops.iter().flatten().all(|(index, _)| *index < LATENCY_BUCKETS)
        };
        let series_latency =
            self.series.iter().flatten().all(|s| {
                s.latency.len() <= LATENCY_BUCKETS && s.latency.iter().all(|(index, _)| *index < LATENCY_BUCKETS)
            });
        let checks = [
            (operations <= MAX_OPERATIONS, "too many operations"),
            (
                buckets <= crate::recording::buckets::MAX_BUCKETS + 1,
                "too many buckets",
            ),
            (
                self.series
                    .iter()
                    .all(|s| s.len() == OUTCOMES && s.iter().all(|o| o.buckets.len() == buckets)),
                "series of unequal shapes",
            ),
            (self.gauges.len() == Gauge::ALL.len(), "wrong number of gauges"),
            (
                self.begun.len() <= operations && self.ended.len() <= operations,
                "in-flight counts",
            ),
            (series_latency, "latency buckets"),
            (
                self.patterns.len() <= 4 * crate::recording::patterns::MAX_PATTERNS,
                "too many patterns",
            ),
            (
                self.patterns.iter().all(|p| p.prefix.len() <= 2 * MAX_PREFIX),
                "pattern prefix too long",
            ),
            (
                self.windows.len() == Resolution::ALL.len(),
                "wrong number of window histories",
            ),
            (
                self.windows
                    .iter()
                    .all(|h| fits(&h.last) && h.snapshots.iter().all(|(_, c)| fits(c))),
                "window histories",
            ),
            (
                self.windows.iter().all(|h| h.snapshots.len() <= 1_024),
                "window histories too long",
            ),
            (
                self.stacks.len() <= MAX_STACKS_LIMIT
                    && self
                        .stacks
                        .iter()
                        .all(|(frames, _, _)| frames.len() <= 512 && frames.iter().all(|frame| frame.len() <= 1024)),
                "sampled stacks",
            ),
            (
                self.latency_history.snapshots.len() <= 64
                    && sparse_fits(&self.latency_history.last)
                    && self.latency_history.snapshots.iter().all(|(_, c)| sparse_fits(c)),
                "latency history",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("malformed snapshot: {what}")),
            None => self.check_counts(),
        }
    }

    /// Counts that add up: every prefix is hex, and no series, latency distribution or pattern total
    /// overflows (a count near 2^64 would wrap a few records later).
    fn check_counts(&self) -> Result<(), String> {
        fn total(counts: impl Iterator<Item = u64>) -> Option<u64> {
            counts.into_iter().try_fold(0u64, u64::checked_add)
        }
        if self.patterns.iter().any(|pattern| unhex(&pattern.prefix).is_none()) {
            return Err("malformed snapshot: a pattern prefix is not hex".to_owned());
        }
        let series_fit = self
            .series
            .iter()
            .flatten()
            .all(|series| total(series.buckets.iter().copied().chain([series.untimed])).is_some());
        let latency_fits = self
            .series
            .iter()
            .all(|series| total(series.iter().flat_map(|s| s.latency.iter().map(|(_, count)| *count))).is_some());
        let patterns_fit = (0..OUTCOMES).all(|outcome| {
            let counts = self
                .patterns
                .iter()
                .map(|pattern| pattern.counts[outcome])
                .chain([self.other_pattern[outcome]]);
            total(counts).is_some()
        });
        if series_fit && latency_fits && patterns_fit {
            Ok(())
        } else {
            Err("malformed snapshot: counts that overflow 64 bits".to_owned())
        }
    }

    /// How many bucket cells each series has (bounds plus one), if there is a series.
    pub(crate) fn bucket_cells(&self) -> Option<usize> {
        self.series.first().and_then(|s| s.first()).map(|s| s.buckets.len())
    }

    /// These counts as the importing monitor reads them: its pattern table maps prefixes to pattern ids.
    /// Infallible on a parsed snapshot (every prefix was checked).
    pub(crate) fn into_counts(self, id_of: impl Fn(&[u8]) -> usize) -> CountsSinceReset {
        let operations = self.series.len();
        let buckets = self
            .series
            .first()
            .and_then(|s| s.first())
            .map_or(1, |s| s.buckets.len());
        let mut totals = Totals::zero(operations, buckets.saturating_sub(1));
        for (mine, theirs) in totals.series.iter_mut().zip(&self.series) {
            for (series, snapshot) in mine.iter_mut().zip(theirs) {
                *series = SeriesTotals {
                    count: snapshot
                        .buckets
                        .iter()
                        .fold(snapshot.untimed, |sum, count| sum.wrapping_add(*count)),
                    sum_ns: snapshot.sum_ns,
                    buckets: snapshot.buckets.clone(),
                    untimed: snapshot.untimed,
                    latency: dense(&snapshot.latency),
                };
            }
        }
        totals.sum_latency();
        for (mine, theirs) in totals.begun.iter_mut().zip(&self.begun) {
            *mine = *theirs;
        }
        for (mine, theirs) in totals.ended.iter_mut().zip(&self.ended) {
            *mine = *theirs;
        }
        for pattern in &self.patterns {
            let Some(prefix) = unhex(&pattern.prefix) else {
                continue; // refused by `check`
            };
            let counts = &mut totals.patterns[id_of(&prefix)];
            for (count, add) in counts.iter_mut().zip(pattern.counts) {
                *count = count.wrapping_add(add);
            }
        }
        for (count, add) in totals.patterns[crate::recording::shard::OTHER_PATTERN_ID]
            .iter_mut()
            .zip(self.other_pattern)
        {
            *count = count.wrapping_add(add);
        }
        let outcome_counts = |rows: &[[u64; OUTCOMES]]| {
            let mut counts = OutcomeCounts::default();
            counts.iter_mut().zip(rows).for_each(|(mine, theirs)| *mine = *theirs);
            counts
        };
        let windows = self
            .windows
            .iter()
            .map(|h| {
                let snapshots = h.snapshots.iter().map(|(p, c)| (*p, outcome_counts(c))).collect();
                History::new(snapshots, outcome_counts(&h.last))
            })
            .collect();
        let latency_ops = |ops: &[Vec<(usize, u64)>]| ops.iter().map(|op| dense(op)).collect::<Vec<_>>();
        let latency = History::new(
            self.latency_history
                .snapshots
                .iter()
                .map(|(p, ops)| (*p, latency_ops(ops)))
                .collect(),
            latency_ops(&self.latency_history.last),
        );
        let stacks = self
            .stacks
            .into_iter()
            .map(|(frames, samples, total_ns)| FoldedStack {
                frames,
                samples,
                total_ns,
            })
            .collect();
        CountsSinceReset {
            totals,
            windows,
            latency,
            history_start: self.history_start,
            stacks,
        }
    }
}

/// Log-linear latency buckets of version 1: durations below 32 ns one each, then 32 per power of two up
/// to 2^42 ns.
const V1_LATENCY_BUCKETS: usize = 1216;

/// The duration a version-1 latency bucket reported: its midpoint (exact below 32 ns).
fn v1_latency_value(index: usize) -> u64 {
    let index = index as u64;
    if index < 32 {
        return index;
    }
    let shift = index / 32 - 1;
    let low = (32 + index % 32) << shift;
    low + (1 << shift) / 2
}

fn sparse(counts: &LatencyCounts) -> Vec<(usize, u64)> {
    counts.nonzero()
}

fn dense(sparse: &[(usize, u64)]) -> LatencyCounts {
    let mut counts = LatencyCounts::default();
    for (index, count) in sparse {
        counts.add(*index, *count);
    }
    counts
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_any_bytes() {
        let bytes = b"\x00\xffuser:\n\"";
        assert_eq!(unhex(&hex(bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn foreign_and_malformed_snapshots_are_told_apart() {
        assert!(matches!(
            StateSnapshot::parse(b"not json"),
            Err(Error::InvalidSnapshot(_))
        ));
        assert!(matches!(
            StateSnapshot::parse(br#"{"format": "other", "version": 1}"#),
            Err(Error::ForeignSnapshot(_))
        ));
        let future = format!(r#"{{"format": "{SNAPSHOT_FORMAT}", "version": 99}}"#);
        assert!(matches!(
            StateSnapshot::parse(future.as_bytes()),
            Err(Error::ForeignSnapshot(_))
        ));
        let truncated = format!(r#"{{"format": "{SNAPSHOT_FORMAT}", "version": 1, "instance": "00"}}"#);
        assert!(matches!(
            StateSnapshot::parse(truncated.as_bytes()),
            Err(Error::InvalidSnapshot(_))
        ));
    }
}
