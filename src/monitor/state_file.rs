//! Attaching a state file, and keeping the configuration that shapes it one for every process.
//!
//! # The shape
//!
//! A state file records the configuration that shapes its counts, its *shape*: namespace, buckets,
//! custom operations, pattern settings (`Config::shape_json`), with the bucket table and pattern
//! settings the hot path reads. Every process that attaches the file shares that one shape:
//!
//! - Attaching **adopts** the file's shape. Keys given in the same configuration call as the path must
//!   agree with the file, unless the file holds no counts since its last reset: then they become the
//!   file's shape, for every process.
//! - Custom operations merge: a process's list that extends the file's extends the file's (append only,
//!   like every operation list); a file's list that extends the process's is adopted; two lists that
//!   disagree on a code are refused.
//! - Later configuration calls follow the same rule: a shaping key may change while the file holds no
//!   counts, operations may be appended at any time, and a process sees another's change at its next
//!   render or configuration call. Nothing ever mixes two shapes in one file.
//!
//! Changes of shape are serialised across processes by the file's configuration lock and published
//! through a double buffer, so a process killed while changing it leaves the previous shape.
//!
//! # Attaching
//!
//! Records before the attach stay in process memory, so a monitor attaches only while it has counted
//! nothing since its last reset and has nothing in flight. Records made by other threads *during* the
//! call land in process memory until the switch; the attaching thread waits for them to settle and
//! moves them into the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::Monitor;
use crate::config::{Config, STATE_ENV, Section};
use crate::error::Error;
use crate::recording::attachment::Attachment;
use crate::recording::latency::row_bit;
use crate::recording::recorder::raw_totals_of;
use crate::recording::region::{Region, SHAPE_WORDS};
use crate::recording::shard::{OwnerWriter, SharedWriter, Writer};
use crate::recording::state_file::OpenOptions;
use crate::recording::totals::Totals;

/// The shape a file records, and the generation it was read at.
pub(super) struct FileShape {
    pub(super) generation: u64,
    pub(super) config: Config,
}

fn state_file_error(error: impl std::fmt::Display) -> Error {
    Error::StateFile(error.to_string())
}

/// Writes `config`'s shape into `region`: the JSON text, the bucket table, the pattern settings.
fn write_shape(region: &Region, config: &Config) {
    let text = config.shape_json();
    region.core.shape.write(|cells| {
        cells[0].store(text.len() as u64, Relaxed);
        for (cell, chunk) in cells[1..].iter().zip(text.as_bytes().chunks(8)) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            cell.store(u64::from_le_bytes(word), Relaxed);
        }
    });
    region.core.hot.buckets.store(&config.buckets);
    region.core.hot.patterns.configure(&config.patterns);
}

/// The shape recorded in `region`, applied to a default configuration (the text is input: checked
/// like any configuration call).
pub(super) fn read_shape(region: &Region) -> Result<FileShape, String> {
    let read = region.core.shape.read(|generation, cells: &[AtomicU64; SHAPE_WORDS]| {
        let len = (cells[0].load(Relaxed) as usize).min((SHAPE_WORDS - 1) * 8);
        let bytes: Vec<u8> = cells[1..]
            .iter()
            .flat_map(|cell| cell.load(Relaxed).to_le_bytes())
            .take(len)
            .collect();
        (generation, bytes)
    });
    let (generation, bytes) = read.ok_or("its configuration is being rewritten without end")?;
    let text = String::from_utf8(bytes).map_err(|_| "its recorded configuration is not UTF-8".to_owned())?;
    let config = Config::default()
        .with_json(&text)
        .map_err(|e| format!("its recorded configuration is unusable ({e})"))?;
    Ok(FileShape { generation, config })
}

/// Whether `region` holds counts since its last reset.
fn holds_counts(region: &Region, attachment: &Attachment) -> bool {
    let raw = raw_totals_of(region, Some(attachment));
    let baseline = region
        .core
        .baseline
        .read(|generation, cells| (generation != 0).then(|| Totals::read_baseline(cells)))
        .flatten();
    let since = match &baseline {
        Some(baseline) => raw.since(baseline),
        None => raw,
    };
    since.series.iter().flatten().any(|series| series.count > 0)
}

/// The operation list two monitors can share: the longer of two lists one of which extends the other.
fn merged_operations(mine: &[String], file: &[String]) -> Result<Vec<String>, String> {
    if file.starts_with(mine) {
        Ok(file.to_vec())
    } else if mine.starts_with(file) {
        Ok(mine.to_vec())
    } else {
        Err(format!(
            "it registers the operations {file:?}, which disagree with {mine:?} on a code; operations are \
             append-only, so one file serves one list"
        ))
    }
}

/// The shape after a configuration call that asks for `next`'s shape where it differs from `current`'s,
/// on a file of shape `file`: `Err` names the conflict.
fn reconciled(current: &Config, next: &Config, file: &Config, file_has_counts: bool) -> Result<Config, String> {
    let mut shape = file.clone();
    let conflict = |key: &str, wanted: String, recorded: String| {
        Err(format!(
            "it holds counts under {key} {recorded}, and {key} can change only while a state file holds no \
             counts (`cache-monitor reset`, or another file): asked for {wanted}"
        ))
    };
    if next.namespace != current.namespace && next.namespace != file.namespace {
        if file_has_counts {
            return conflict(
                "namespace",
                format!("{:?}", next.namespace),
                format!("{:?}", file.namespace),
            );
        }
        shape.namespace = next.namespace.clone();
    }
    if next.buckets != current.buckets && next.buckets != file.buckets {
        if file_has_counts {
            return conflict(
                "buckets",
                format!("{:?}", next.buckets.seconds()),
                format!("{:?}", file.buckets.seconds()),
            );
        }
        shape.buckets = next.buckets;
    }
    if next.patterns != current.patterns && next.patterns != file.patterns {
        if file_has_counts {
            return conflict(
                "patterns",
                format!("{:?}", next.patterns),
                format!("{:?}", file.patterns),
            );
        }
        shape.patterns = next.patterns.clone();
    }
    shape.operations = merged_operations(&next.operations, &file.operations)?;
    Ok(shape)
}

impl Monitor {
    /// A monitor over the existing state file at `path`, with the file's configuration: for readers such
    /// as the `cache-monitor` command (`show`, `serve`, `check`, `reset`). It records into the file too if
    /// asked to.
    pub fn open_state_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let monitor = Self::new();
        {
            let mut config = monitor.config.write();
            let mut next = config.clone();
            next.state.path = Some(path.as_ref().to_owned());
            // A reader creates nothing: it takes a file of any mode its creator may configure (the owner
            // check stays).
            next.state.mode = 0o666;
            *config = monitor.attach(&config, &next, false)?;
        }
        Ok(monitor)
    }

    /// The state file the counts live in, if one is attached.
    pub fn state_file(&self) -> Option<PathBuf> {
        self.recorder.state_file()
    }

    /// Attaches the process-wide monitor to the file `CACHE_MONITOR_STATE` names, if it names one: a
    /// problem is reported on standard error once, and counting goes on in process memory.
    pub(crate) fn attach_from_environment(&self) {
        let Some(path) = std::env::var_os(STATE_ENV).filter(|path| !path.is_empty()) else {
            return;
        };
        let mut config = self.config.write();
        let mut next = config.clone();
        next.state.path = Some(PathBuf::from(path));
        match self.attach(&config, &next, true) {
            Ok(attached) => *config = attached,
            Err(error) => eprintln!("cache-monitor: {STATE_ENV}: {error}; counting in process memory"),
        }
    }

    /// Attaches the file `next.state.path` (see the module docs): the configuration the monitor has
    /// afterwards, or why nothing changed.
    pub(super) fn attach(&self, current: &Config, next: &Config, create: bool) -> Result<Config, Error> {
        let Some(path) = next.state.path.as_deref() else {
            return Err(state_file_error("no state file path"));
        };
        let totals = self.totals_with(current.operation_count(), current.buckets.nanos().len());
        if totals.series.iter().flatten().any(|series| series.count > 0) || totals.in_flight() > 0 {
            return Err(Error::Busy(format!(
                "state file {}: a monitor attaches a state file only before its first record or right after \
                 a reset, with nothing in flight (its counts so far would stay behind in this process)",
                path.display()
            )));
        }
        let options = OpenOptions {
            create,
            mode: next.state.mode,
        };
        let attachment = self
            .recorder
            .open_state_file(path, options, &|region| write_shape(region, next))
            .map_err(state_file_error)?;
        let region = attachment.region();
        let file = read_shape(region)
            .map_err(|problem| state_file_error(format!("state file {}: {problem}", path.display())))?;
        let shape = reconciled(current, next, &file.config, holds_counts(region, &attachment))
            .map_err(|problem| state_file_error(format!("state file {}: {problem}", path.display())))?;
        if shape.shape_json() != file.config.shape_json() {
            attachment
                .with_config_lock(|| write_shape(region, &shape))
                .map_err(|e| state_file_error(format!("state file {}: cannot lock it: {e}", path.display())))?;
        }
        let before = self.recorder.memory_raw_totals();
        let generation = region.core.shape.generation();
        self.recorder.activate(attachment).ok_or_else(|| {
            state_file_error(format!(
                "state file {}: a state file is attached already",
                path.display()
            ))
        })?;
        self.shape_generation.store(generation, Relaxed);
        self.fold_memory_residue(&before);
        let mut config = next.with_shape_of(&shape);
        config.state.path = Some(path.to_owned());
        self.recorder.set_operation_count(config.operation_count());
        Ok(config)
    }

    /// Moves what other threads recorded in process memory while the file was being attached into the
    /// file: waits (boundedly) until process memory stops changing, then adds the difference from
    /// `before` to the calling thread's shard of the file.
    fn fold_memory_residue(&self, before: &Totals) {
        let mut last = self.recorder.memory_raw_totals();
        for _ in 0..1_000 {
            std::thread::yield_now();
            let now = self.recorder.memory_raw_totals();
            if now == last {
                break;
            }
            last = now;
        }
        let residue = last.since(before);
        if residue.series.iter().flatten().all(|series| series.count == 0) && residue.in_flight() == 0 {
            return;
        }
        let memory_patterns = self.recorder.memory_region().core.hot.patterns.learned();
        let file_patterns = &self.recorder.region().core.hot.patterns;
        self.recorder.with_own_shard(|shard, shared| {
            let add: fn(&AtomicU64, u64) = if shared { SharedWriter::add } else { OwnerWriter::add };
            let set_bits: fn(&AtomicU64, u64) = if shared {
                SharedWriter::set_bits
            } else {
                OwnerWriter::set_bits
            };
            for (op, series) in residue.series.iter().enumerate() {
                for (outcome, totals) in series.iter().enumerate() {
                    let cells = &shard.series[op][outcome];
                    add(&cells.sum_ns, totals.sum_ns);
                    add(&cells.untimed, totals.untimed);
                    for (cell, count) in cells.buckets.iter().zip(&totals.buckets) {
                        add(cell, *count);
                    }
                    for (index, count) in totals.latency.nonzero() {
                        add(&shard.latency[op][outcome][index], count);
                        set_bits(&shard.latency_rows[op][outcome], row_bit(index));
                    }
                }
                add(&shard.begun[op], residue.begun[op]);
                add(&shard.ended[op], residue.ended[op]);
            }
            for (prefix, id) in &memory_patterns {
                let file_id = file_patterns.register(prefix);
                for (outcome, count) in residue.patterns[*id].iter().enumerate() {
                    add(&shard.patterns[file_id][outcome], *count);
                }
            }
            for (outcome, count) in residue.patterns[0].iter().enumerate() {
                add(&shard.patterns[0][outcome], *count);
            }
        });
    }

    /// For tests (`tests/dead_writer.rs`), not a stable API: leaves in the calling thread's shard of the
    /// attached file what a writer killed inside a record leaves (the journal of a GET hit of
    /// `duration_ns` without a key, its sum and bucket written, its latency cell not). Dropping the
    /// monitor then lets the file go as a dying process does (its descriptor, its mapping and with them
    /// its shard locks). `false`, changing nothing, unless the thread has recorded a GET hit into an
    /// owned, journaled shard of an attached file.
    #[doc(hidden)]
    pub fn leave_half_record(&self, duration_ns: u64) -> bool {
        use crate::recording::shard::{JournaledWriter, Placed};
        use crate::recording::thread_claim::OWNED_SHARDS;

        let Some(attachment) = self.recorder.attachment() else {
            return false;
        };
        let Some(index) = self.recorder.route_of_this_thread() else {
            return false;
        };
        if index >= OWNED_SHARDS {
            return false;
        }
        let region = attachment.region();
        let shard = &region.shards[index];
        if shard.series[0][0].count() == 0 {
            return false;
        }
        let placed = Placed::new(0, 0, duration_ns, None, &region.core.hot.buckets);
        // The sum and the bucket written, the latency cell not.
        JournaledWriter::open_and_write(shard, &placed, 2);
        true
    }

    /// Adopts the file's shape into `config` if another process changed it since this one last looked.
    pub(super) fn refresh_shape(&self, config: &mut Config) {
        let Some(region) = self.recorder.attachment().map(Attachment::region) else {
            return;
        };
        let generation = region.core.shape.generation();
        if generation == self.shape_generation.load(Relaxed) {
            return;
        }
        if let Ok(file) = read_shape(region) {
            *config = config.with_shape_of(&file.config);
            self.recorder.set_operation_count(config.operation_count());
            self.shape_generation.store(file.generation, Relaxed);
        }
    }

    /// Applies a configuration call's shape to the attached file (see the module docs): the configuration
    /// the monitor has afterwards, or why nothing changed.
    pub(super) fn reshape(&self, current: &Config, next: &Config) -> Result<Config, Error> {
        let Some(attachment) = self.recorder.attachment() else {
            return Ok(next.clone());
        };
        if next.shape_json() == current.shape_json() {
            return Ok(next.clone());
        }
        let region = attachment.region();
        let path = attachment.path().unwrap_or_default();
        let describe = |problem: String| state_file_error(format!("state file {}: {problem}", path.display()));
        let shape = attachment
            .with_config_lock(|| -> Result<Config, Error> {
                let file = read_shape(region).map_err(describe)?;
                let shape =
                    reconciled(current, next, &file.config, holds_counts(region, attachment)).map_err(describe)?;
                if shape.shape_json() != file.config.shape_json() {
                    write_shape(region, &shape);
                }
                Ok(shape)
            })
            .map_err(|e| describe(format!("cannot lock it: {e}")))??;
        self.shape_generation.store(region.core.shape.generation(), Relaxed);
        Ok(next.with_shape_of(&shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::default().with_json(json).unwrap()
    }

    /// The record without a call into a state file (`Recorder::record_without_call`'s journaled path)
    /// journals what it writes: after each record its journal names the record's series and whether its
    /// duration was 0, and reads it as whole; the counts are exact.
    #[test]
    fn a_record_without_a_call_into_a_file_is_journaled_whole() {
        use crate::recording::journal::LastRecord;
        use crate::recording::operation::{Operation, Outcome};
        use crate::recording::recorder::Record;

        let (_dir, _, monitor) = crate::monitor::on_new_state_file("journaled.state");
        // A thread of its own, so that its first record is its first in the file.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let get = |outcome, duration_ns| Record::new(Operation::GET, outcome, duration_ns, b"");
                assert!(
                    !monitor.recorder.record_without_call(get(Outcome::Hit, 1_000)),
                    "a thread's first record in the file routes it"
                );
                monitor
                    .record(Operation::GET, Outcome::Hit, 1_000, b"")
                    .expect("recorded");
                let attachment = monitor.recorder.attachment().expect("attached");
                let index = monitor.recorder.route_of_this_thread().expect("routed");
                let region = attachment.region();
                let shard = &region.shards[index];
                // Hold the next clock read off.
                shard.control.countdown.store(1_000, Relaxed);
                for (outcome, duration_ns) in [(Outcome::Miss, 2_500), (Outcome::Hit, 0), (Outcome::Hit, 7)] {
                    assert!(monitor.recorder.record_without_call(get(outcome, duration_ns)));
                    let entry = shard.control.journal.entry().expect("a marked entry");
                    assert_eq!(
                        (entry.operation, entry.outcome, entry.pattern, entry.zero_duration),
                        (0, outcome.index(), None, duration_ns == 0),
                        "{outcome:?} of {duration_ns} ns"
                    );
                    assert!(matches!(
                        shard.control.journal.last_record(shard, &region.core.hot.buckets),
                        LastRecord::Whole
                    ));
                }
                let totals = monitor.recorder.raw_totals();
                let [hit, miss, ..] = &totals.series[0];
                assert_eq!((hit.count, hit.sum_ns), (3, 1_007));
                assert_eq!((miss.count, miss.sum_ns), (1, 2_500));
                assert_eq!(totals.latency[0].total(), 4);
            });
        });
    }

    #[test]
    fn operation_lists_merge_when_one_extends_the_other() {
        let (a, ab) = (vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(merged_operations(&a, &ab), Ok(ab.clone()));
        assert_eq!(merged_operations(&ab, &a), Ok(ab.clone()));
        assert_eq!(merged_operations(&[], &a), Ok(a.clone()));
        assert!(merged_operations(&["b".to_owned()], &a).is_err());
    }

    #[test]
    fn attaching_adopts_the_file_and_explicit_keys_must_agree() {
        let file = config(r#"{"namespace": "shared", "buckets": [0.5]}"#);
        let current = Config::default();
        let adopted = reconciled(&current, &current, &file, true).unwrap();
        assert_eq!(
            adopted.shape_json(),
            file.shape_json(),
            "nothing asked: the file's shape"
        );
        let asked = config(r#"{"namespace": "mine"}"#);
        assert!(
            reconciled(&current, &asked, &file, true)
                .unwrap_err()
                .contains("namespace")
        );
        assert_eq!(
            reconciled(&current, &asked, &file, false).unwrap().namespace,
            "mine",
            "an empty file takes it"
        );
        let same = config(r#"{"namespace": "shared"}"#);
        assert_eq!(reconciled(&current, &same, &file, true).unwrap().namespace, "shared");
    }
}
