//! The sampled flamegraph profiler: where cache operations come from, as folded stacks and SVG.
//!
//! With `sample_every = N` (`{"profiler": {"sample_every": N}}`), every thread samples its N-th, 2N-th,
//! ... record (`sampling.rs`). A sample captures the caller's stack as raw return addresses, plus any
//! frames the host passed ([`crate::Monitor::record_with_frames`]), and counts it in a bounded lock-free
//! table of stack -> (samples, total duration) allocated at configuration (`stack_table.rs`; overflow is
//! counted, memory never grows). Symbolisation, demangling and the removal of this library's own frames
//! happen only when a flamegraph is rendered (`symbols.rs`, `folded.rs`, `svg.rs`).
//!
//! Cost on the recording path:
//!
//! - sampling off (the default): one relaxed load of the monitor's `sample_every` and a branch; no
//!   thread-local access;
//! - sampling on, record not sampled: a thread-local decrement;
//! - sampled record: a stack walk into a fixed on-stack array, three atomic operations to find the table
//!   (`active_table.rs`), a probe and two `fetch_add`s. No allocation, no lock of this library's.

mod active_table;
mod capture;
mod folded;
mod sampling;
mod stack_table;
mod svg;
mod symbols;

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

pub use crate::config::profiler::{DEFAULT_MAX_STACKS, MAX_STACKS_LIMIT, ProfilerConfig, Weight};
use active_table::ActiveTable;
pub use capture::{HOST_FRAME_BYTES, HOST_FRAMES_BYTES, MAX_DEPTH};
use capture::{StackKey, stack_marker};
pub(crate) use folded::{FoldedStack, merge_bounded};
use stack_table::{StackTable, TableSnapshot};
pub(crate) use svg::NothingToDraw;
use symbols::Symbolizer;

#[cfg(test)]
pub(crate) use sampling::countdown as sampling_countdown;

use crate::config::Config;
use crate::error::Error;
use crate::recording::operation::Operation;

/// The frame put where frames were dropped: above a native stack deeper than [`MAX_DEPTH`], or above
/// host frames longer than [`HOST_FRAMES_BYTES`].
pub const TRUNCATED_FRAME: &str = "[truncated]";

/// The frame under which samples that found the table full are counted.
pub const OVERFLOW_FRAME: &str = "[overflow]";

/// What the profiler holds, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfilerStats {
    /// Samples taken since the last reset, overflow included.
    pub samples: u64,
    /// Distinct stacks held.
    pub stacks: usize,
    /// Distinct stacks the table can hold (0 before sampling is first turned on).
    pub max_stacks: usize,
    /// Samples that found the table full and are counted under [`OVERFLOW_FRAME`] only.
    pub overflow_samples: u64,
}

/// One monitor's profiler. See the module documentation.
pub(crate) struct Profiler {
    /// Sample one record in this many per thread; 0: off. The only field a record reads when off.
    sample_every: AtomicU32,
    tables: ActiveTable,
}

impl Profiler {
    /// Sampling off, no table.
    pub(crate) fn new() -> Self {
        Self {
            sample_every: AtomicU32::new(0),
            tables: ActiveTable::new(),
        }
    }

    /// Called by every record, after it is counted: samples it if its thread's turn has come.
    /// `host_frames` are bytes, meant to be UTF-8, read only when the record is sampled.
    #[inline(always)]
    pub(crate) fn observe(&self, operation: Operation, duration_ns: u64, host_frames: &[u8]) {
        let every = self.sample_every.load(Relaxed);
        if every != 0 && sampling::tick(every) {
            self.sample(operation, duration_ns, host_frames);
        }
    }

    #[cold]
    #[inline(never)]
    fn sample(&self, operation: Operation, duration_ns: u64, host_frames: &[u8]) {
        let marker = 0u8;
        let key = StackKey::capture(operation, host_frames, stack_marker(&marker));
        self.tables.with_hot(|table| table.add(&key, duration_ns));
    }

    /// Applies `config`: allocates the table when sampling is first turned on, replaces it (forgetting
    /// its stacks) when `max_stacks` changes, then sets the rate. Turning sampling off keeps what was
    /// sampled.
    pub(crate) fn configure(&self, config: &ProfilerConfig) {
        let mut control = self.tables.control();
        let capacity = control.table().map(StackTable::capacity);
        let wanted = (config.sample_every != 0).then_some(config.max_stacks);
        if capacity.is_some_and(|c| c != config.max_stacks) || (capacity.is_none() && wanted.is_some()) {
            let next = wanted.map(|max_stacks| Box::new(StackTable::new(max_stacks)));
            drop(control.replace(next));
        }
        self.sample_every.store(config.sample_every, Relaxed);
    }

    /// Forgets every sample. Samples taken while the reset runs are dropped.
    pub(crate) fn reset(&self) {
        let mut control = self.tables.control();
        if let Some(mut table) = control.replace(None) {
            table.clear();
            control.replace(Some(table));
        }
    }

    /// Stops sampling and frees the table, as the library is unloaded.
    pub(crate) fn release(&self) {
        self.sample_every.store(0, Relaxed);
        drop(self.tables.control().replace(None));
    }

    /// Holds the control side around `fork()` (see `active_table`): no table is replaced meanwhile.
    pub(crate) fn lock_for_fork(&self) -> ForkGuard<'_> {
        ForkGuard(self.tables.control())
    }

    /// Counts of what the profiler holds.
    pub(crate) fn stats(&self) -> ProfilerStats {
        let control = self.tables.control();
        control
            .table()
            .map_or_else(ProfilerStats::default, |table| ProfilerStats {
                samples: table.samples(),
                stacks: table.len(),
                max_stacks: table.capacity(),
                overflow_samples: table.overflow_samples(),
            })
    }

    /// Folded stacks, weighted as `config.profiler.weight` says, leaves named after `config`'s operations.
    pub(crate) fn render_folded(&self, config: &Config, imported: &[FoldedStack]) -> String {
        let mut stacks = self.stacks(config);
        stacks.extend_from_slice(imported);
        folded::fold(stacks, config.profiler.weight)
    }

    /// The sampled stacks, symbolised, leaves named after `config`'s operations.
    pub(crate) fn stacks(&self, config: &Config) -> Vec<FoldedStack> {
        let snapshot = self
            .tables
            .control()
            .table()
            .map(StackTable::snapshot)
            .unwrap_or_default();
        named_stacks(snapshot, config)
    }

    /// An SVG flamegraph of [`Profiler::render_folded`]; with no stack to draw, a small SVG that says why
    /// (sampling off, no sample yet, samples too short to weigh) and how to get a flamegraph.
    pub(crate) fn render_svg(&self, config: &Config, imported: &[FoldedStack]) -> Result<String, Error> {
        let folded = self.render_folded(config, imported);
        if !folded.is_empty() {
            return svg::render(&folded, config.profiler.weight);
        }
        let samples = imported
            .iter()
            .fold(self.stats().samples, |sum, stack| sum.saturating_add(stack.samples));
        Ok(svg::nothing_to_draw(NothingToDraw::given(&config.profiler, samples)))
    }
}

/// The profiler held around `fork()`, from [`Profiler::lock_for_fork`]; dropping it releases it.
pub(crate) struct ForkGuard<'a>(active_table::ControlGuard<'a>);

impl ForkGuard<'_> {
    /// In the child of the fork: forgets the samples the fork cut off (threads that were sampling are
    /// not in the child), so resets and configuration never wait for them.
    pub(crate) fn in_child(mut self) {
        self.0.forget_samples_in_flight();
    }
}

/// The leaf frame of every sample of `operation`: `cache_monitor::get`.
fn leaf(config: &Config, operation: Operation) -> String {
    format!("cache_monitor::{}", config.operation_name(operation))
}

/// The snapshot's stacks as frames, outermost first: the native frames down to the host function that
/// called the library, then the host frames, then the operation.
fn named_stacks(snapshot: TableSnapshot, config: &Config) -> Vec<FoldedStack> {
    let mut symbolizer = Symbolizer::default();
    let mut stacks: Vec<FoldedStack> = snapshot
        .stacks
        .into_iter()
        .map(|stack| {
            let mut frames = Vec::new();
            if stack.native_truncated {
                frames.push(TRUNCATED_FRAME.to_owned());
            }
            frames.extend(symbolizer.stack(&stack.ips));
            if stack.host_truncated {
                frames.push(TRUNCATED_FRAME.to_owned());
            }
            frames.extend(
                stack
                    .host_frames
                    .split(';')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned),
            );
            frames.push(leaf(config, stack.operation));
            FoldedStack {
                frames,
                samples: stack.samples,
                total_ns: stack.total_ns,
            }
        })
        .collect();
    stacks.extend(
        snapshot
            .overflow
            .into_iter()
            .map(|(operation, samples, total_ns)| FoldedStack {
                frames: vec![OVERFLOW_FRAME.to_owned(), leaf(config, operation)],
                samples,
                total_ns,
            }),
    );
    stacks
}
