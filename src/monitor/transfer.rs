//! Exporting and importing state snapshots (see `crate::state` for the format and the swap protocol).

use super::{Imported, Monitor};
use crate::analysis::windows::ReadScope;
use crate::config::{Config, Section};
use crate::error::Error;
use crate::recording::operation::Gauge;
use crate::state::MAX_IMPORT_SOURCES;
use crate::state::snapshot::{ExportContext, StateSnapshot};

/// A random monitor identity from the kernel's generator (time and address as a fallback).
pub(super) fn random_instance() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is valid for writes of its length; getrandom writes at most that many bytes.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled == bytes.len() as isize {
        return u64::from_ne_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (&bytes as *const _ as u64).rotate_left(32)
}

impl Monitor {
    /// Everything this monitor has counted since its last reset, own and imported, as a versioned JSON
    /// snapshot for [`Monitor::import_state`] of another monitor.
    pub fn export_state(&self) -> String {
        let now = self.recorder.now();
        let config = self.config();
        let counts = self.counts_since_reset(
            now,
            config.operation_count(),
            config.buckets.nanos().len(),
            ReadScope::Everything,
        );
        let context = ExportContext {
            instance: self.instance,
            now,
            config_json: config.to_json(),
            gauges: self.recorder.gauges(),
            patterns: self.patterns().learned(),
        };
        serde_json::to_string(&StateSnapshot::export(&counts, context))
            .unwrap_or_else(|e| unreachable!("snapshots hold plain data: {e}"))
    }

    /// Adds the state in `snapshot` (from [`Monitor::export_state`] of another monitor) to this one's.
    ///
    /// A monitor that has counted, imported and sampled nothing since its last reset adopts the
    /// snapshot's configuration (namespace, buckets, operations, patterns, alerts, profiler), never its
    /// `http` or `state` sections; otherwise the snapshot must be compatible (same buckets, custom
    /// operations one list extends the other) and the monitor keeps its own configuration. A later
    /// snapshot from the same source replaces the earlier one, so re-importing a later export is safe; an
    /// older one is refused. Everything is checked before anything changes: nothing changes on error.
    /// With a state file attached there is nothing to import (library copies share the file).
    pub fn import_state(&self, snapshot: &[u8]) -> Result<(), Error> {
        let snapshot = StateSnapshot::parse(snapshot)?;
        let source = snapshot.instance()?;
        if source == self.instance {
            return Err(Error::InvalidSnapshot(
                "a monitor cannot import its own state".to_owned(),
            ));
        }
        if let Some(path) = self.state_file() {
            return Err(Error::StateFile(format!(
                "state file {}: attached; library copies that attach one state file share its counts, so \
                 there is no snapshot to import",
                path.display()
            )));
        }
        let theirs = Config::default()
            .with_json(&snapshot.config.to_string())
            .map_err(|e| Error::InvalidSnapshot(format!("its configuration: {e}")))?;
        if snapshot
            .bucket_cells()
            .is_some_and(|cells| cells != theirs.buckets.nanos().len() + 1)
        {
            return Err(Error::InvalidSnapshot(
                "its bucket counts do not match its configured buckets".to_owned(),
            ));
        }
        // One configuration lock for the whole check-and-apply: configuration calls and other imports wait.
        let mut config = self.config.write();
        let fresh = !self.has_counts(&config) && self.imported.lock().is_empty() && self.profiler.stats().samples == 0;
        let next = if fresh {
            Config {
                http: config.http.clone(),
                state: config.state.clone(),
                enabled: config.enabled,
                ..theirs.clone()
            }
        } else {
            if theirs.buckets != config.buckets {
                return Err(Error::IncompatibleSnapshot(format!(
                    "its buckets {:?} are not this monitor's {:?}",
                    theirs.buckets.seconds(),
                    config.buckets.seconds()
                )));
            }
            let operations = if theirs.operations.starts_with(&config.operations) {
                theirs.operations.clone()
            } else if config.operations.starts_with(&theirs.operations) {
                config.operations.clone()
            } else {
                return Err(Error::IncompatibleSnapshot(format!(
                    "its operations {:?} disagree with {:?}",
                    theirs.operations, config.operations
                )));
            };
            Config {
                operations,
                ..config.clone()
            }
        };
        let mut imported = self.imported.lock();
        match imported.get(&source) {
            Some(earlier) if earlier.exported_at > snapshot.exported_at => {
                return Err(Error::Busy(
                    "an older snapshot than the one already imported from this monitor".to_owned(),
                ));
            }
            None if imported.len() >= MAX_IMPORT_SOURCES => {
                return Err(Error::TooManyImportSources(MAX_IMPORT_SOURCES));
            }
            _ => {}
        }
        let (exported_at, gauges) = (snapshot.exported_at, snapshot.gauges.clone());
        // The overflow check maps prefixes without learning them (unknown ones count as `other`, which
        // only makes it stricter): nothing is learned until the import is accepted.
        let patterns = self.patterns();
        let probe = snapshot.clone().into_counts(|prefix| patterns.known(prefix));
        let mut own = self.own_totals(next.operation_count(), next.buckets.nanos().len());
        for other in imported.iter().filter(|(id, _)| **id != source).map(|(_, other)| other) {
            own.merge(&other.counts.totals);
        }
        if !own.adds_up_with(&probe.totals) {
            return Err(Error::InvalidSnapshot(
                "its counts would overflow 64 bits added to this monitor's".to_owned(),
            ));
        }
        self.apply_config(&config, &next);
        *config = next;
        let counts = snapshot.into_counts(|prefix| patterns.register(prefix));
        imported.insert(source, Imported { exported_at, counts });
        for (gauge, value) in Gauge::ALL.iter().zip(gauges) {
            self.recorder.set_gauge(*gauge, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::operations::Operation;
    use crate::error::Error;
    use crate::monitor::Monitor;
    use crate::recording::clock::{Clock, ManualClock};
    use crate::recording::operation::Outcome;

    fn pair() -> (Monitor, Monitor, ManualClock) {
        let clock = ManualClock::starting_at(10_000);
        (
            Monitor::with_clock(Clock::Manual(clock.clone())),
            Monitor::with_clock(Clock::Manual(clock.clone())),
            clock,
        )
    }

    #[test]
    fn native_buckets_travel_per_series_and_a_version_1_snapshot_is_upgraded() {
        let (a, b, _) = pair();
        for (outcome, ns) in [
            (Outcome::Hit, 1_000),
            (Outcome::Hit, 1_000),
            (Outcome::Miss, 1_000),
            (Outcome::Hit, 0),
        ] {
            a.record(Operation::GET, outcome, ns, b"k").unwrap();
        }
        let export = a.export_state();
        b.import_state(export.as_bytes()).unwrap();
        let (mine, theirs) = (a.totals(), b.totals());
        for outcome in 0..2 {
            assert_eq!(theirs.series[0][outcome].latency, mine.series[0][outcome].latency);
        }
        assert_eq!(
            theirs.series[0][0].latency.native_buckets(5).0,
            1,
            "0 ns in the zero bucket"
        );

        // The same counts as an earlier copy of the library exported them: log-linear buckets per
        // operation (1000 ns was bucket 190, 0 ns bucket 0).
        let mut v1: serde_json::Value = serde_json::from_str(&export).unwrap();
        v1["version"] = serde_json::json!(1);
        for series in v1["series"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .flat_map(|s| s.as_array_mut().unwrap())
        {
            series.as_object_mut().unwrap().remove("latency");
        }
        v1["latency"] = serde_json::json!([[[0, 1], [190, 3]]]);
        let (c, _, _) = pair();
        c.import_state(v1.to_string().as_bytes()).unwrap();
        let upgraded = c.totals();
        assert_eq!(upgraded.series[0][0].latency.total(), 3, "the hits' share");
        assert_eq!(upgraded.series[0][1].latency.total(), 1, "the miss's share");
        assert_eq!(upgraded.latency[0], mine.latency[0], "1000 ns is still 1000 ns");
    }

    #[test]
    fn an_import_carries_every_count_and_a_reimport_replaces_it() {
        let (a, b, clock) = pair();
        a.configure(r#"{"namespace": "swap", "operations": ["compact"], "buckets": [0.001, 0.01]}"#)
            .unwrap();
        a.record(Operation::GET, Outcome::Hit, 2_000_000, b"user:1").unwrap();
        a.record(Operation::from_code(7), Outcome::Ok, 500, b"path/x").unwrap();
        b.import_state(a.export_state().as_bytes()).unwrap();
        assert_eq!(
            b.config().namespace,
            "swap",
            "an empty monitor adopts the configuration"
        );
        clock.advance(5);
        a.record(Operation::GET, Outcome::Miss, 1_000, b"user:2").unwrap();
        b.record(Operation::GET, Outcome::Hit, 1_000, b"user:3").unwrap();
        b.import_state(a.export_state().as_bytes()).unwrap();
        let totals = b.totals();
        assert_eq!(totals.series[0][0].count, 2, "A's hit and B's own");
        assert_eq!(totals.series[0][1].count, 1, "A's later miss, once");
        assert_eq!(totals.series[7][2].count, 1);
        assert_eq!(totals.series[0][0].buckets, vec![1, 1, 0]);
        let view = b.view();
        let user = view.patterns.iter().find(|p| p.pattern == "user:*").unwrap();
        assert_eq!(user.counts, [2, 1, 0, 0]);
        assert_eq!(
            b.hit_rate_report().windows[0].operations,
            4,
            "windows include the import"
        );
        let text = b.render_prometheus();
        assert!(
            text.contains("swap_operations_total{operation=\"compact\",result=\"ok\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn sampled_stacks_move_with_the_state() {
        let (a, b, _) = pair();
        a.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
        for _ in 0..3 {
            a.record_with_frames(Operation::GET, Outcome::Hit, 1_000, b"", "host.main;host.lookup")
                .unwrap();
        }
        b.import_state(a.export_state().as_bytes()).unwrap();
        let folded = b.render_flamegraph_folded();
        let line = folded
            .lines()
            .find(|l| l.contains("host.main;host.lookup;cache_monitor::get"));
        assert!(
            line.is_some_and(|l| l.ends_with(" 3")),
            "A's samples render in B:\n{folded}"
        );
        let c = Monitor::new();
        c.import_state(b.export_state().as_bytes()).unwrap();
        assert_eq!(
            c.render_flamegraph_folded(),
            folded,
            "and travel on, merged, to the next copy"
        );
    }

    #[test]
    fn chains_of_imports_carry_everything_forward() {
        let (a, b, _) = pair();
        let c = Monitor::new();
        a.record(Operation::PUT, Outcome::Ok, 10, b"").unwrap();
        b.import_state(a.export_state().as_bytes()).unwrap();
        b.record(Operation::PUT, Outcome::Ok, 10, b"").unwrap();
        c.import_state(b.export_state().as_bytes()).unwrap();
        assert_eq!(c.totals().series[1][2].count, 2);
    }

    #[test]
    fn bad_snapshots_change_nothing() {
        let (a, b, _) = pair();
        b.record(Operation::GET, Outcome::Hit, 10, b"").unwrap();
        assert!(matches!(b.import_state(b"{"), Err(Error::InvalidSnapshot(_))));
        assert!(matches!(
            b.import_state(br#"{"format":"x","version":1}"#),
            Err(Error::ForeignSnapshot(_))
        ));
        assert!(matches!(
            b.import_state(b.export_state().as_bytes()),
            Err(Error::InvalidSnapshot(_))
        ));
        a.configure(r#"{"buckets": [0.5]}"#).unwrap();
        a.record(Operation::GET, Outcome::Hit, 10, b"").unwrap();
        assert!(
            matches!(
                b.import_state(a.export_state().as_bytes()),
                Err(Error::IncompatibleSnapshot(_))
            ),
            "buckets differ"
        );
        let mut tampered: serde_json::Value = serde_json::from_str(&a.export_state()).unwrap();
        tampered["series"][0][0]["latency"] = serde_json::json!([[99_999, 1]]);
        assert!(matches!(
            b.import_state(tampered.to_string().as_bytes()),
            Err(Error::InvalidSnapshot(_))
        ));
        assert_eq!(b.totals().series[0][0].count, 1);
    }
}
