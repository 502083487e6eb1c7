//! [`Monitor`]: one set of counters with its configuration, the type every API (Rust, C, HTTP) goes through.
//!
//! This file holds the recording side; `reading` reads the counts since the last reset and builds views,
//! reports and renders from them, `transfer` exports and imports state snapshots, `state_file` attaches a
//! state file and keeps its shape one for every process, `check` checks a state file without using it,
//! `handle` is [`MonitorHandle`], the one way to hold on to a monitor.

pub mod check;
pub(crate) mod fork;
mod handle;
#[cfg(test)]
mod profiler_tests;
mod reading;
mod state_file;
pub(crate) mod stopwatch;
mod transfer;

pub use handle::MonitorHandle;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use crate::config::http::HttpConfig;
use crate::config::{Config, Section, clamp_duration};
use crate::error::Error;
use crate::profiler::Profiler;
use crate::recording::attachment::Attachment;
use crate::recording::backing::zeroed;
use crate::recording::clock::Clock;
use crate::recording::exemplars::{self, Encoded, ExemplarHome, ExemplarTable, Offer};
use crate::recording::operation::{Gauge, Operation, Outcome};
use crate::recording::patterns::PatternTable;
use crate::recording::recorder::{Admission, AttachmentHome, Batch, Counter, Memory, Record, Recorder};
use crate::recording::region::{GlobalSpace, Region};
use crate::recording::state_file::HEADER_BYTES;
use crate::recording::totals::Totals;
use crate::state::counts::CountsSinceReset;
use crate::sync::{Mutex, RwLock};

/// The process-wide monitor's region: zero-initialised atomics in `.bss` (see `recording::region`).
// SAFETY: a region is atomics only; all-zero is its empty state.
static GLOBAL_REGION: Region = unsafe { zeroed() };

/// Where the process-wide monitor maps a state file it attaches: a header page, then a region.
#[repr(C)]
struct FileSpace {
    header: [std::sync::atomic::AtomicU64; HEADER_BYTES / 8],
    region: Region,
}

// SAFETY: atomics only; all-zero is valid. Untouched until a file is mapped over it.
static GLOBAL_FILE_SPACE: GlobalSpace<FileSpace> = GlobalSpace(unsafe { zeroed() });
static GLOBAL_ATTACHMENT: OnceLock<Attachment> = OnceLock::new();

static GLOBAL: OnceLock<Monitor> = OnceLock::new();

/// The process-wide monitor's exemplars, in `.bss` like its region (pages stay unmapped until used).
// SAFETY: atomics only; all-zero is the empty table.
static GLOBAL_EXEMPLARS: ExemplarTable = unsafe { zeroed() };

/// Records cache operations and renders what it has seen.
///
/// [`Monitor::global`] is the monitor behind the C ABI; [`Monitor::new`] makes independent ones (tests, or
/// several caches in one program that must not share counts). Recording is lock-free and allocation-free;
/// everything else takes short locks and is meant for configuration and scrapes.
pub struct Monitor {
    recorder: Recorder,
    config: RwLock<Config>,
    /// Held while a reset writes its baseline (the baseline's writers must take turns).
    resetting: Mutex<()>,
    /// A random identity, so an importer can tell our snapshots from others'.
    instance: u64,
    /// State imported from other monitors (library copies), by their identity.
    imported: Mutex<BTreeMap<u64, Imported>>,
    /// Sampled stacks for flamegraphs (off unless configured).
    profiler: Profiler,
    /// The generation of the attached state file's shape that `config` holds (see `state_file`).
    shape_generation: AtomicU64,
    /// The latest exemplar of every bucket of every series (process memory only, never a state file).
    exemplars: ExemplarHome,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// A monitor with its own counters and the default configuration.
    pub fn new() -> Self {
        Self::with_clock(Clock::Monotonic)
    }

    /// A monitor with its own counters whose windows follow `clock` (a
    /// [`ManualClock`](crate::recording::clock::ManualClock) in tests).
    pub fn with_clock(clock: Clock) -> Self {
        Self::with_recorder(
            Recorder::new(Memory::heap(), AttachmentHome::Heap(OnceLock::new()), None, clock),
            ExemplarHome::Heap(ExemplarTable::boxed()),
        )
    }

    /// The process-wide monitor, the one the C ABI records into.
    #[inline]
    pub fn global() -> &'static Self {
        GLOBAL.get_or_init(|| {
            let reserved = std::ptr::NonNull::from(&GLOBAL_FILE_SPACE).cast::<u8>();
            let monitor = Self::with_recorder(
                Recorder::new(
                    Memory::Static(&GLOBAL_REGION),
                    AttachmentHome::Static(&GLOBAL_ATTACHMENT),
                    Some(reserved),
                    Clock::Monotonic,
                ),
                ExemplarHome::Static(&GLOBAL_EXEMPLARS),
            );
            monitor.attach_from_environment();
            monitor
        })
    }

    /// The process-wide monitor if anything has used it.
    pub(crate) fn global_if_used() -> Option<&'static Self> {
        GLOBAL.get()
    }

    fn with_recorder(recorder: Recorder, exemplars: ExemplarHome) -> Self {
        let config = Config::default();
        recorder.set_bounds(&config.buckets);
        recorder.set_patterns(&config.patterns);
        Self {
            recorder,
            config: RwLock::new(config),
            resetting: Mutex::new(()),
            instance: transfer::random_instance(),
            imported: Mutex::new(BTreeMap::new()),
            profiler: Profiler::new(),
            shape_generation: AtomicU64::new(0),
            exemplars,
        }
    }

    /// Records one finished operation. `key` may be empty when the operation has none.
    ///
    /// Lock-free and allocation-free. Fails only for an operation code that is not registered. With
    /// monitoring switched off (`{"enabled": false}`) it counts nothing. Durations above
    /// [`MAX_DURATION_NS`](crate::config::MAX_DURATION_NS) (about 73 minutes) are recorded as that ceiling,
    /// so that one absurd duration cannot make a histogram's sum fall.
    #[inline(always)]
    pub fn record(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) -> Result<(), Error> {
        Ok(self.record_typed(operation, outcome, duration_ns, key, b"")?)
    }

    /// [`Monitor::record`] for hosts whose stacks cannot be unwound (Go through cgo): when the profiler
    /// samples this record, `frames` (`;`-separated, outermost first, such as
    /// `"main.main;main.serve;cache.(*Cache).Get"`) become the leaf frames of its stack, under the native
    /// frames and above the operation. Bounded: see [`crate::profiler::HOST_FRAMES_BYTES`]. `frames` is
    /// text or bytes (`&str`, `&[u8]`): it is read only when the record is sampled, and bytes that are not
    /// UTF-8 show as U+FFFD in the flamegraph; they never cost the record.
    #[inline(always)]
    pub fn record_with_frames(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        frames: &(impl AsRef<[u8]> + ?Sized),
    ) -> Result<(), Error> {
        Ok(self.record_typed(operation, outcome, duration_ns, key, frames.as_ref())?)
    }

    /// [`Monitor::record`] from raw codes, as the C ABI receives them.
    #[inline]
    pub fn record_codes(&self, operation: u32, result: u32, duration_ns: u64, key: &[u8]) -> Result<(), Error> {
        Ok(self.record_raw(operation, result, duration_ns, key, b"")?)
    }

    /// [`Monitor::record_with_frames`] from raw codes, as the C ABI receives them.
    #[inline]
    pub fn record_codes_with_frames(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
        frames: &(impl AsRef<[u8]> + ?Sized),
    ) -> Result<(), Error> {
        Ok(self.record_raw(operation, result, duration_ns, key, frames.as_ref())?)
    }

    /// [`Monitor::record`] with an exemplar: the record counts exactly as `record` counts it, and `labels`
    /// (a trace id, say: `&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]`) become the latest
    /// exemplar of the classic bucket it counts in, with the duration in seconds as its value and the wall
    /// clock as its time. OpenMetrics shows it on the bucket's `_bucket` line, the protobuf exposition in
    /// the bucket (see the README's "Exemplars").
    ///
    /// The labels are checked first, by OpenMetrics' rules: names `[a-zA-Z_][a-zA-Z0-9_]*` not beginning
    /// with `__`, no name twice, at most [`MAX_EXEMPLAR_CHARS`](exemplars::MAX_EXEMPLAR_CHARS) (128)
    /// characters in the names and values together (an empty set is allowed). A set that breaks them is
    /// refused with [`Error::InvalidExemplar`] and **nothing is recorded**, like any refused call.
    ///
    /// Takes no lock and, unless it refuses, allocates nothing; it costs more than `record` (a wall-clock
    /// read, the label set copied into its bucket's slot), and `record` costs nothing more for its
    /// existence. When another
    /// thread is writing the same bucket's exemplar at that instant, this one's is dropped (the record
    /// still counts). Switched off, it counts and keeps nothing. Exemplars stay in this process: state
    /// files and snapshots do not carry them; a reset forgets them.
    pub fn record_with_exemplar(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        labels: &[(&str, &str)],
    ) -> Result<(), Error> {
        exemplars::check(labels.iter().copied())?;
        Ok(self.record_codes_with_labels(
            operation.code(),
            outcome.code(),
            duration_ns,
            key,
            labels.iter().copied(),
        )?)
    }

    /// [`Monitor::record_with_exemplar`] from raw codes, as the C ABI receives them, with `labels` checked
    /// by the caller (`exemplars::check` or `exemplars::parse_text`): records, then offers the exemplar to
    /// its bucket's slot (see `recording::exemplars` for the protocol). Refusals are a [`Refused`], which
    /// allocates nothing.
    pub(crate) fn record_codes_with_labels<'a>(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), Refused> {
        let encoded = Encoded::new(labels);
        self.record_raw(operation, result, duration_ns, key, b"")?;
        if !self.recorder.is_enabled() {
            return Ok(());
        }
        let duration_ns = clamp_duration(duration_ns);
        let (bucket, generation) = self.recorder.exemplar_place(duration_ns);
        let unix_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX));
        // `record_raw` accepted both codes, so they are in range; the table checks its indexes anyway.
        self.exemplars.offer(&Offer {
            operation: Operation::from_code(operation).index(),
            outcome: result as usize,
            bucket,
            duration_ns,
            unix_nanos,
            generation,
            labels: &encoded,
        });
        Ok(())
    }

    /// The hot path every record from raw codes takes (the C ABI's): checks the result code, then as
    /// [`Monitor::record_typed`]. A refusal is a small value, so that the happy path carries no error
    /// plumbing; callers turn it into an [`Error`] (or a status code) when it happens.
    #[inline(always)]
    pub(crate) fn record_raw(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
        frames: &[u8],
    ) -> Result<(), Refused> {
        self.record_raw_into(operation, result, duration_ns, key, frames, &self.recorder)
    }

    /// [`Monitor::record_raw`] of a record that needs no call (see
    /// [`Recorder::record_without_call`]): `true` when it is counted or, monitoring being switched off,
    /// accepted; `false`, having done nothing, for any other record (refused, sampled, or needing a
    /// call), which the caller then gives to [`Monitor::record_raw`]. Cannot panic.
    #[inline(always)]
    pub(crate) fn record_raw_without_call(&self, operation: u32, result: u32, duration_ns: u64, key: &[u8]) -> bool {
        let Some(outcome) = Outcome::from_code(result) else {
            return false;
        };
        let operation = Operation::from_code(operation);
        match self.recorder.admit_at_once(operation) {
            Some(Admission::Count) => {
                self.recorder
                    .record_without_call(Record::new(operation, outcome, duration_ns, key))
            }
            Some(Admission::Skip) => true,
            _ => false,
        }
    }

    /// [`Monitor::record_raw`], with an admitted record counted by `counter` (the recorder, or a batch).
    #[inline(always)]
    fn record_raw_into(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
        frames: &[u8],
        counter: &impl Counter,
    ) -> Result<(), Refused> {
        let Some(outcome) = Outcome::from_code(result) else {
            return Err(Refused::Result(result));
        };
        self.record_into(
            Operation::from_code(operation),
            outcome,
            duration_ns,
            key,
            frames,
            counter,
        )
    }

    /// Every record's admission: counted by `counter` when the gate lets it straight through, nothing
    /// when switched off, [`Monitor::record_cold`] otherwise (sampled or refused).
    #[inline(always)]
    fn record_into(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        frames: &[u8],
        counter: &impl Counter,
    ) -> Result<(), Refused> {
        match self.recorder.admit(operation) {
            Admission::Count => {
                counter.count(Record::new(operation, outcome, duration_ns, key));
                Ok(())
            }
            Admission::Skip => Ok(()),
            admission => self.record_cold(admission, operation, outcome, duration_ns, key, frames),
        }
    }

    /// [`Monitor::end`] and [`Monitor::record`] of one operation, as [`InFlight::finish`] makes them: the
    /// same counts, with the calling thread's shard found once for both.
    fn end_and_record(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) {
        // Both can only be refused for an unregistered operation, which `start` already refused (unless a
        // configuration removed it since: then neither counts, as `end` and `record` would not).
        if !self.recorder.accepts(operation) {
            return;
        }
        let batch = self.recorder.batch();
        batch.end(operation);
        let _ = self.record_into(operation, outcome, duration_ns, key, b"", &batch);
    }

    /// Many records in a row from the calling thread (the C ABI's `cache_monitor_record_batch`): its shard
    /// is found once, not per record.
    pub(crate) fn batch(&self) -> MonitorBatch<'_> {
        MonitorBatch {
            monitor: self,
            batch: self.recorder.batch(),
        }
    }

    /// The hot path of the typed records (`record`, `record_with_frames`), inlined into the host's code:
    /// the admission (one load and a compare while counting, two while switched off) and a call. The
    /// call returns nothing, so a counted record carries no result through memory, and a switched-off
    /// one makes no call at all.
    #[inline(always)]
    fn record_typed(
        &self,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        frames: &[u8],
    ) -> Result<(), Refused> {
        self.record_into(operation, outcome, duration_ns, key, frames, &OutOfLine(self))
    }

    /// A typed record that was admitted (its duration clamped by `Record::new`): out of line, so that the
    /// host's code holds only the admission. Scalars, not a `Record`, so that they go in registers.
    ///
    /// As the C entry point does, the common record is counted without a call (so without saving
    /// registers), with a key and without apart, and anything else goes on to the full record as a tail
    /// call.
    #[inline(always)]
    fn record_admitted(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) {
        if key.is_empty() {
            self.record_admitted_without_key(operation, outcome, duration_ns);
        } else {
            self.record_admitted_with_key(operation, outcome, duration_ns, key);
        }
    }

    #[inline(never)]
    fn record_admitted_without_key(&self, operation: Operation, outcome: Outcome, duration_ns: u64) {
        let record = Record {
            operation,
            outcome,
            duration_ns,
            key: b"",
        };
        if !self.recorder.record_without_call(record) {
            self.record_admitted_in_full(operation, outcome, duration_ns, b"");
        }
    }

    #[inline(never)]
    fn record_admitted_with_key(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) {
        let record = Record {
            operation,
            outcome,
            duration_ns,
            key,
        };
        if !self.recorder.record_without_call(record) {
            self.record_admitted_in_full(operation, outcome, duration_ns, key);
        }
    }

    #[inline(never)]
    fn record_admitted_in_full(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) {
        self.recorder.record(Record {
            operation,
            outcome,
            duration_ns,
            key,
        });
    }

    /// A record the gate did not let straight through: sampled (counted, then offered to the profiler)
    /// or refused. The one place that hands frames (bytes, read only when sampled) to the profiler.
    #[cold]
    #[inline(never)]
    fn record_cold(
        &self,
        admission: Admission,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        key: &[u8],
        frames: &[u8],
    ) -> Result<(), Refused> {
        let record = Record::new(operation, outcome, duration_ns, key);
        match admission {
            Admission::Count => self.recorder.record(record),
            Admission::CountSampled => {
                self.recorder.record(record);
                self.profiler.observe(operation, record.duration_ns, frames);
            }
            Admission::Skip => {}
            Admission::Refuse => return Err(Refused::Operation(operation.code())),
        }
        Ok(())
    }

    /// Accepts `operation` if it is built in or registered.
    #[inline(always)]
    fn check_operation(&self, operation: Operation) -> Result<(), Error> {
        if self.recorder.accepts(operation) {
            Ok(())
        } else {
            Err(Error::UnknownOperation(operation.code()))
        }
    }

    /// Counts `count` operations that have no duration, such as the evictions a cache reports: they count in
    /// `operations_total` (and the hit rates and windows), not in the duration histogram or the latency
    /// quantiles. Switched off, it counts nothing.
    pub fn count(&self, operation: Operation, outcome: Outcome, count: u64) -> Result<(), Error> {
        self.check_operation(operation)?;
        if self.recorder.is_enabled() && count != 0 {
            self.recorder.count(operation, outcome, count);
        }
        Ok(())
    }

    /// Counts an operation as in flight until the matching [`Monitor::end`].
    ///
    /// Switched off, it counts nothing (an `end` always counts, so operations begun before the switch
    /// still leave the in-flight count).
    pub fn begin(&self, operation: Operation) -> Result<(), Error> {
        self.check_operation(operation)?;
        if self.recorder.is_enabled() {
            self.recorder.begin(operation);
        }
        Ok(())
    }

    /// Stops counting an operation begun with [`Monitor::begin`] (on any thread) as in flight. Recording
    /// it is a separate [`Monitor::record`].
    pub fn end(&self, operation: Operation) -> Result<(), Error> {
        self.check_operation(operation)?;
        self.recorder.end(operation);
        Ok(())
    }

    /// Begins `operation` and times it: [`InFlight::finish`] records it with the elapsed time, and
    /// dropping the guard unfinished just ends it. Timing reads the CPU's time-stamp counter through
    /// `quanta` (calibrated once per process), a few nanoseconds against twenty for the system clock here,
    /// and scales it to nanoseconds once, at the finish (see `stopwatch`).
    pub fn start(&self, operation: Operation) -> Result<InFlight<'_>, Error> {
        self.begin(operation)?;
        Ok(InFlight {
            monitor: self,
            operation,
            started: stopwatch::Started::now(),
        })
    }

    /// Sets a host gauge (cache size, entries).
    pub fn set_gauge(&self, gauge: Gauge, value: u64) {
        self.recorder.set_gauge(gauge, value);
    }

    /// Applies a JSON configuration object (see [`Section::with_json`]); on error nothing changes.
    ///
    /// Histogram buckets can only change while nothing is recorded (at start-up or right after
    /// [`Monitor::reset`]), so no bucket ever mixes two sets of bounds.
    ///
    /// With a state file attached, the namespace, buckets, operations and pattern settings are the file's,
    /// shared by every process that attaches it (see [`Monitor::open_state_file`] and the README).
    pub fn configure(&self, json: &str) -> Result<(), Error> {
        let mut config = self.config.write();
        self.refresh_shape(&mut config);
        let next = config.with_json(json)?;
        let next = if next.state.path != config.state.path {
            if config.state.path.is_some() {
                return Err(Error::StateFile(format!(
                    "state file {}: attached for the monitor's life; a monitor cannot switch files",
                    config
                        .state
                        .path
                        .as_deref()
                        .unwrap_or_else(|| std::path::Path::new(""))
                        .display()
                )));
            }
            self.attach(&config, &next, true)?
        } else if self.recorder.attachment().is_some() {
            self.reshape(&config, &next)?
        } else {
            if next.buckets != config.buckets && self.has_counts(&config) {
                return Err(Error::BucketsLocked);
            }
            next
        };
        if next.buckets != config.buckets || next.state.path != config.state.path {
            // An exemplar's bucket is an index into the bounds of its region.
            self.exemplars.forget();
        }
        self.apply_config(&config, &next);
        *config = next;
        Ok(())
    }

    /// Puts `next` in force where it differs from `current` (checked by the caller): the hot path's bounds,
    /// pattern settings, operation count and switch, and the profiler. In a state file the shape was
    /// written by `reshape` or `attach` already.
    fn apply_config(&self, current: &Config, next: &Config) {
        if self.recorder.attachment().is_none() {
            if next.buckets != current.buckets {
                self.recorder.set_bounds(&next.buckets);
            }
            if next.patterns != current.patterns {
                self.recorder.set_patterns(&next.patterns);
            }
        }
        self.recorder.set_operation_count(next.operation_count());
        self.recorder.set_enabled(next.enabled);
        self.profiler.configure(&next.profiler);
        self.recorder.set_sampling(next.profiler.sample_every != 0);
    }

    /// The key-pattern table records are counted under.
    pub(crate) fn patterns(&self) -> &PatternTable {
        &self.recorder.region().core.hot.patterns
    }

    /// Whether anything was recorded or imported since the last reset.
    fn has_counts(&self, config: &Config) -> bool {
        self.totals_with(config.operation_count(), config.buckets.nanos().len())
            .series
            .iter()
            .flatten()
            .any(|series| series.count > 0)
    }

    /// Switches monitoring on or off, as `{"enabled": ...}` does, for hosts that toggle it at run time.
    ///
    /// Off, a record costs one load and a compare beyond the call and counts nothing (nor do `count` and
    /// `begin`); everything counted stays rendered and served, the exporter and the state file keep
    /// working, and switching back on resumes counting. Never refused.
    pub fn set_enabled(&self, enabled: bool) {
        let mut config = self.config.write();
        config.enabled = enabled;
        self.recorder.set_enabled(enabled);
    }

    /// Whether records count (see [`Monitor::set_enabled`]).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.recorder.is_enabled()
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        if self.recorder.attachment().is_some() {
            let mut config = self.config.write();
            self.refresh_shape(&mut config);
            return config.clone();
        }
        self.config.read().clone()
    }

    /// The `"http"` section of the configuration in force, for the exporter.
    pub fn http_config(&self) -> HttpConfig {
        self.config.read().http.clone()
    }

    /// Forgets everything recorded, imported or sampled (exemplars too) and zeroes the host gauges. Operations in flight
    /// stay in flight, and learned key patterns keep their ids (the cap counts patterns since start).
    ///
    /// With a state file attached, the reset is the file's: every process reads the same counts from
    /// then on (processes reset one at a time).
    pub fn reset(&self) {
        let _turn = self.resetting.lock();
        self.imported.lock().clear();
        let write_baseline = || {
            let raw = self.recorder.raw_totals();
            self.recorder
                .region()
                .core
                .baseline
                .write(|cells| raw.write_baseline(cells));
            for gauge in Gauge::ALL {
                self.recorder.set_gauge(gauge, 0);
            }
        };
        match self.recorder.attachment() {
            // A file that cannot be locked any more was released at unload: nobody is left to reset it for.
            Some(attachment) => {
                let _ = attachment.with_reset_lock(write_baseline);
            }
            None => write_baseline(),
        }
        self.exemplars.forget();
        self.profiler.reset();
    }

    /// Drops what this monitor holds beside its counters (imported state, the profiler's table, the state
    /// file's descriptor), as the library is unloaded. Sampling is off afterwards.
    pub(crate) fn release_heap(&self) {
        self.imported.lock().clear();
        self.profiler.release();
        self.recorder.set_sampling(false);
        self.recorder.release_file();
        // Under the write lock, so no reader holds the old heap; readers after this see a configuration
        // without heap (see `Config::release_heap` for what that changes, and why it is harmless).
        self.config.write().release_heap();
    }

    /// Everything recorded (or imported) since the last reset.
    pub fn totals(&self) -> Totals {
        let config = self.config.read();
        self.totals_with(config.operation_count(), config.buckets.nanos().len())
    }

    /// The reset baseline: raw totals at the last reset, if there was one.
    fn baseline(&self) -> Option<Totals> {
        self.recorder
            .region()
            .core
            .baseline
            .read(|generation, cells| (generation != 0).then(|| Totals::read_baseline(cells)))
            .flatten()
    }

    /// Raw totals and the baseline they were taken against, read consistently: the baseline's generation
    /// is the same before and after the sum, so a reset in between is never half seen.
    fn raw_and_baseline(&self) -> (Totals, Option<Totals>) {
        let baseline = &self.recorder.region().core.baseline;
        let mut read = (Totals::default(), None);
        for _ in 0..16 {
            let generation = baseline.generation();
            read = (self.recorder.raw_totals(), self.baseline());
            if baseline.generation() == generation {
                break;
            }
        }
        read
    }

    fn totals_with(&self, operations: usize, buckets: usize) -> Totals {
        let mut totals = self.own_totals(operations, buckets);
        for imported in self.imported.lock().values() {
            totals.merge(&imported.counts.totals);
        }
        totals
    }

    /// What this monitor counted itself since the last reset: no imports.
    fn own_totals(&self, operations: usize, buckets: usize) -> Totals {
        let (raw, baseline) = self.raw_and_baseline();
        since_reset(raw, baseline.as_ref()).shaped(operations, buckets)
    }
}

/// Why the hot path refused a record (see [`Monitor::record_raw`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The operation code is not registered.
    Operation(u32),
    /// The result code is not an outcome.
    Result(u32),
}

impl From<Refused> for Error {
    #[cold]
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Operation(code) => Error::UnknownOperation(code),
            Refused::Result(code) => Error::UnknownResult(code),
        }
    }
}

/// Counts a typed record through [`Monitor::record_admitted`], a call of its own.
struct OutOfLine<'m>(&'m Monitor);

impl Counter for OutOfLine<'_> {
    #[inline(always)]
    fn count(&self, record: Record<'_>) {
        self.0
            .record_admitted(record.operation, record.outcome, record.duration_ns, record.key);
    }
}

/// Records from one thread into the shard it found once (see [`Monitor::batch`]). Not `Send`: the shard
/// is the calling thread's.
pub(crate) struct MonitorBatch<'m> {
    monitor: &'m Monitor,
    batch: Batch<'m>,
}

impl MonitorBatch<'_> {
    /// [`Monitor::record_codes`] into the batch's shard: the same validation, the same counts.
    #[inline(always)]
    pub(crate) fn record_codes(
        &self,
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: &[u8],
    ) -> Result<(), Refused> {
        self.monitor
            .record_raw_into(operation, result, duration_ns, key, b"", &self.batch)
    }
}

/// State imported from another monitor: the newest snapshot from it.
pub(crate) struct Imported {
    /// The exporter's clock when it exported (a later snapshot replaces an earlier one, never the reverse).
    pub(crate) exported_at: u64,
    pub(crate) counts: CountsSinceReset,
}

/// `raw` without what was counted before the last reset.
fn since_reset(raw: Totals, baseline: Option<&Totals>) -> Totals {
    match baseline {
        Some(baseline) => raw.since(baseline),
        None => raw,
    }
}

/// An operation in flight, from [`Monitor::start`].
#[must_use = "dropping the guard ends the operation without recording it"]
pub struct InFlight<'a> {
    monitor: &'a Monitor,
    operation: Operation,
    started: stopwatch::Started,
}

impl<'a> InFlight<'a> {
    /// Ends the operation and records it with its outcome, key and the time since it started.
    pub fn finish(self, outcome: Outcome, key: &[u8]) {
        let (monitor, operation, elapsed) = self.settle();
        monitor.end_and_record(operation, outcome, elapsed, key);
    }

    /// The guard's monitor, operation and time since the start, taken so that dropping the guard no longer
    /// ends the operation: the finish that takes them ends it.
    fn settle(self) -> (&'a Monitor, Operation, u64) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.monitor, this.operation, this.started.elapsed_ns())
    }
}

impl InFlight<'_> {
    /// [`InFlight::finish`] with an exemplar (see [`Monitor::record_with_exemplar`]): ends the operation
    /// and records it with its outcome, key, the time since it started and `labels` as its bucket's
    /// latest exemplar. The operation ends and is recorded whatever `labels` hold: a label set that is
    /// refused returns [`Error::InvalidExemplar`] and the operation is recorded without it (the guard is
    /// gone, so there would be no second chance to record it).
    pub fn finish_with_exemplar(self, outcome: Outcome, key: &[u8], labels: &[(&str, &str)]) -> Result<(), Error> {
        let (monitor, operation, elapsed) = self.settle();
        // `end` and a plain `record` can only fail for an unregistered operation, which `start` refused.
        let _ = monitor.end(operation);
        let recorded = monitor.record_with_exemplar(operation, outcome, elapsed, key, labels);
        if recorded.is_err() {
            let _ = monitor.record(operation, outcome, elapsed, key);
        }
        recorded
    }
}

/// A guard dropped unfinished ends its operation without recording it.
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let _ = self.monitor.end(self.operation);
    }
}

/// A monitor attached to a new state file `name` in a temporary directory, with the directory (which
/// goes when dropped) and the file's path: for this module's unit tests (integration tests have
/// `tests/support`).
#[cfg(test)]
pub(crate) fn on_new_state_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf, Monitor) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    let monitor = Monitor::new();
    monitor
        .configure(&serde_json::json!({"state": {"path": path}}).to_string())
        .expect("attach a new state file");
    (dir, path, monitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_counters_and_histograms() {
        let monitor = Monitor::new();
        monitor.record(Operation::GET, Outcome::Hit, 2_000, b"user:1").unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 3_000_000, b"").unwrap();
        monitor.record(Operation::PUT, Outcome::Ok, 500, b"").unwrap();
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
        assert!(
            text.contains("cuenv_cache_operation_duration_seconds_sum{operation=\"get\",result=\"hit\"} 0.003002\n")
        );
        assert!(text.contains("cuenv_cache_stats{metric=\"hit_rate\"} 1\n"));
        assert!(!text.contains("result=\"miss\""), "series appear at their first record");
    }

    /// The same records, one call each and through one batch, into memory and into a state file: the
    /// same totals, the same refusals.
    #[test]
    fn a_batch_counts_exactly_what_single_records_count() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for state in [None, Some(dir.path().join("single.state"))] {
            let (single, batched) = (Monitor::new(), Monitor::new());
            if let Some(path) = &state {
                for (monitor, file) in [(&single, path.clone()), (&batched, path.with_extension("batched"))] {
                    let config = serde_json::json!({"state": {"path": file}}).to_string();
                    monitor.configure(&config).expect("attach a state file");
                }
            }
            let keys: [&[u8]; 4] = [b"user:1", b"", b"path/a/b", b"plain"];
            let batch = batched.batch();
            for i in 0..5_000u32 {
                // Operation 9 and result 7 are refused now and then.
                let operation = if i % 97 == 0 { 9 } else { i % 4 };
                let result = if i % 89 == 0 { 7 } else { (i / 4) % 4 };
                let duration_ns = u64::from(i).wrapping_mul(2_654_435_761) % 50_000_000;
                let key = keys[i as usize % keys.len()];
                assert_eq!(
                    single.record_codes(operation, result, duration_ns, key).is_ok(),
                    batch.record_codes(operation, result, duration_ns, key).is_ok(),
                    "record {i}"
                );
            }
            let (expected, got) = (single.totals(), batched.totals());
            assert!(expected.series.iter().flatten().any(|series| series.count > 0));
            assert_eq!(expected, got, "state file {state:?}");
        }
    }

    #[test]
    fn reset_forgets_counts_but_not_in_flight() {
        let monitor = Monitor::new();
        monitor.begin(Operation::GET).unwrap();
        monitor.record(Operation::GET, Outcome::Miss, 10, b"").unwrap();
        monitor.set_gauge(Gauge::Entries, 5);
        monitor.reset();
        let totals = monitor.totals();
        assert!(totals.series.iter().flatten().all(|s| s.count == 0));
        assert_eq!(totals.in_flight(), 1);
        assert_eq!(monitor.view().gauges, [0, 0]);
        monitor.record(Operation::GET, Outcome::Miss, 10, b"").unwrap();
        assert_eq!(monitor.totals().series[0][1].count, 1);
    }

    #[test]
    fn buckets_change_only_while_empty() {
        let monitor = Monitor::new();
        monitor.configure(r#"{"buckets": [0.001]}"#).unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 2_000_000, b"").unwrap();
        let busy = monitor.configure(r#"{"buckets": [0.01]}"#);
        assert_eq!(busy, Err(Error::BucketsLocked));
        assert_eq!(
            monitor.config().buckets.seconds(),
            &[0.001],
            "previous configuration stays"
        );
        monitor.reset();
        monitor.configure(r#"{"buckets": [0.01]}"#).unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 2_000_000, b"").unwrap();
        let series = &monitor.totals().series[0][0];
        assert_eq!((series.count, series.buckets.as_slice()), (1, [1, 0].as_slice()));
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
        // Each ended once: a finished guard is not ended again when it goes.
        assert_eq!(
            (
                totals.begun[Operation::PUT.index()],
                totals.ended[Operation::PUT.index()]
            ),
            (1, 1)
        );
        assert_eq!(
            (
                totals.begun[Operation::GET.index()],
                totals.ended[Operation::GET.index()]
            ),
            (1, 1)
        );
        assert_eq!(totals.series[Operation::PUT.index()][Outcome::Ok.index()].count, 1);
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
    fn an_operation_finished_on_another_thread_ends_and_counts_once() {
        let monitor = Monitor::new();
        let in_flight = monitor.start(Operation::GET).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| in_flight.finish(Outcome::Miss, b"user:1"));
        });
        let totals = monitor.totals();
        assert_eq!(totals.in_flight(), 0);
        assert_eq!(totals.series[Operation::GET.index()][Outcome::Miss.index()].count, 1);
        assert_eq!(totals.patterns.iter().flatten().sum::<u64>(), 1, "its key pattern too");
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
