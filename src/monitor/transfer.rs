//! Exporting and importing state snapshots (see `crate::state` for the format and the swap protocol).

use super::Monitor;
use crate::analysis::windows::ReadScope;
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
        let now = self.clock.now_secs();
        let config = self.config.read().clone();
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
            patterns: self.patterns.learned(),
        };
        serde_json::to_string(&StateSnapshot::export(&counts, context))
            .unwrap_or_else(|e| unreachable!("snapshots hold plain data: {e}"))
    }

    /// Adds the state in `snapshot` (from [`Monitor::export_state`] of another monitor) to this one's.
    ///
    /// A monitor that has recorded nothing yet adopts the snapshot's configuration; otherwise the
    /// configuration must be compatible (same buckets, custom operations extending ours). A second
    /// snapshot from the same source replaces the first, so re-importing a later export is safe. Nothing
    /// changes on error.
    pub fn import_state(&self, snapshot: &[u8]) -> Result<(), Error> {
        let snapshot = StateSnapshot::parse(snapshot)?;
        let source = snapshot.instance()?;
        if source == self.instance {
            return Err(Error::InvalidSnapshot(
                "a monitor cannot import its own state".to_owned(),
            ));
        }
        {
            let imported = self.imported.lock();
            if !imported.contains_key(&source) && imported.len() >= MAX_IMPORT_SOURCES {
                return Err(Error::TooManyImportSources(MAX_IMPORT_SOURCES));
            }
        }
        let config = snapshot.config.to_string();
        self.configure(&config).map_err(|e| match e {
            Error::InvalidJson(why) | Error::InvalidConfig(why) => Error::InvalidSnapshot(why),
            Error::BucketsLocked => Error::IncompatibleSnapshot(
                "its histogram buckets differ from those of this monitor, which has recorded".to_owned(),
            ),
            other => other,
        })?;
        let gauges = snapshot.gauges.clone();
        let counts = snapshot.into_counts(|prefix| self.patterns.register(prefix))?;
        let mut imported = self.imported.lock();
        if !imported.contains_key(&source) && imported.len() >= MAX_IMPORT_SOURCES {
            return Err(Error::TooManyImportSources(MAX_IMPORT_SOURCES));
        }
        imported.insert(source, counts);
        for (gauge, value) in Gauge::ALL.iter().zip(gauges) {
            self.recorder.set_gauge(*gauge, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::clock::{Clock, ManualClock};
    use crate::config::operations::Operation;
    use crate::error::Error;
    use crate::monitor::Monitor;
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
        tampered["latency"][0] = serde_json::json!([[99_999, 1]]);
        assert!(matches!(
            b.import_state(tampered.to_string().as_bytes()),
            Err(Error::InvalidSnapshot(_))
        ));
        assert_eq!(b.totals().series[0][0].count, 1);
    }
}
