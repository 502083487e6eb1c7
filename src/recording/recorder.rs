//! The hot path: places a record (bucket, latency bucket, key pattern) and adds it to the calling thread's
//! shard, in process memory or in an attached state file.
//!
//! No lock, no allocation, no system call: the thread pointer, a table lookup for the shard, a
//! constant-time bucket index, and four cell updates in one shard, plus a countdown that decides when to
//! read the clock.
//!
//! # The clock
//!
//! A record's second decides which window period it counts in, but reading even the coarse clock costs
//! more than the rest of a record. So a writer reads it only when its countdown runs out. The countdown
//! restarts from a value that doubles (up to [`MAX_COUNTDOWN`]) while the clock keeps showing the same
//! second and halves when it changes, so a busy writer reads the clock a few times per second and a quiet
//! one at every record. The cost is bounded attribution: a writer that records again after a pause counts
//! at most [`MAX_COUNTDOWN`] records in the second of its last clock read. Totals are exact regardless. A
//! manual clock (tests) is read at every record.

use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use crate::config::clamp_duration;
use crate::config::patterns::PatternConfig;
use crate::recording::attachment::{self, Attachment};
use crate::recording::buckets::BucketBounds;
use crate::recording::clock::Clock;
use crate::recording::latency;
use crate::recording::operation::{Gauge, MAX_OPERATIONS, Operation, Outcome};
use crate::recording::region::Region;
use crate::recording::route::{Route, Routes, WriterKind};
use crate::recording::shard::{JournaledWriter, OwnerWriter, Placed, Shard, SharedWriter, Writer};
use crate::recording::state_file::{OpenOptions, StateFileError};
use crate::recording::thread_claim::{OWNED_SHARDS, SHARD_COUNT, SHARED_SHARDS, ShardClaim};
use crate::recording::totals::Totals;
use crate::recording::window_rings::{Pending, WindowDeltas};
use crate::sync::Mutex;

/// The longest a busy writer goes without reading the clock, in records.
pub(crate) const MAX_COUNTDOWN: u64 = 64;

/// Where a recorder's own region lives.
pub(crate) enum Memory {
    /// The process-wide monitor's, in `.bss`.
    Static(&'static Region),
    /// Any other monitor's.
    Heap(Box<Region>),
}

impl Memory {
    /// A zeroed region on the heap (untouched pages stay unmapped).
    pub(crate) fn heap() -> Self {
        // SAFETY: a region is atomics only, and all-zero is its empty state.
        Self::Heap(unsafe { crate::recording::backing::zeroed_box() })
    }

    fn region(&self) -> &Region {
        match self {
            Self::Static(region) => region,
            Self::Heap(region) => region,
        }
    }
}

/// Where an attachment lives: the process-wide monitor's in a `static` (nothing of it is left on the heap
/// once the library is unloaded), any other monitor's on the heap.
pub(crate) enum AttachmentHome {
    Static(&'static OnceLock<Attachment>),
    Heap(OnceLock<Box<Attachment>>),
}

/// Space a state file is mapped over: the process-wide monitor's is reserved in `.bss`.
pub(crate) type Reserved = Option<NonNull<u8>>;

/// The region records go to, with the little configuration the hot path reads.
pub(crate) struct Recorder {
    memory: Memory,
    /// `memory`'s region (which does not move when the recorder does: a `static` or a box).
    memory_region: NonNull<Region>,
    memory_routes: Routes,
    home: AttachmentHome,
    reserved: Reserved,
    /// The attached state file's attachment, once records go there.
    attached: AtomicPtr<Attachment>,
    /// Operation codes below this are accepted.
    operations: AtomicUsize,
    /// When false, records count nothing.
    enabled: AtomicBool,
    /// Whether the profiler samples records (then they take the cold path, which asks it).
    sampling: AtomicBool,
    /// What a record checks before anything else (see [`Gate`]).
    gate: Gate,
    /// Held while the gate's words are rewritten.
    gate_update: Mutex<()>,
    clock: Clock,
}

/// Records of one thread into the shard it found once ([`Recorder::batch`]): per record, what
/// [`Recorder::record`] does after finding the shard. A record racing a state file's attachment may go to
/// the region the batch started in, as a single record racing it may.
pub(crate) struct Batch<'r> {
    recorder: &'r Recorder,
    region: &'r Region,
    shard: &'r Shard,
    route: Route<'r>,
    /// The shard is the calling thread's: a batch stays on it.
    _one_thread: std::marker::PhantomData<*const ()>,
}

impl Batch<'_> {
    /// Adds one record to the batch's shard. The caller has checked the operation.
    #[inline(always)]
    pub(crate) fn record(&self, record: Record<'_>) {
        let Self {
            recorder,
            region,
            shard,
            route,
            ..
        } = *self;
        let pattern = region.core.hot.patterns.id_of(record.key);
        let placed = Recorder::place(region, record.operation, record.outcome, record.duration_ns, pattern);
        recorder.write(region, shard, route, &placed);
    }

    /// Counts the end of an operation in the batch's shard, as [`Recorder::end`] does in the thread's.
    #[inline(always)]
    pub(crate) fn end(&self, operation: Operation) {
        add_one_cell(
            self.route,
            &self.shard.ended[operation.index() & (MAX_OPERATIONS - 1)],
            1,
        );
    }
}

/// Adds `amount` to one cell of the shard `route` leads to, as its kind of writer adds.
#[inline(always)]
fn add_one_cell(route: Route<'_>, cell: &AtomicU64, amount: u64) {
    match route.kind() {
        // One cell: a single store, whole or not at all, needs no journal.
        WriterKind::Owner | WriterKind::Journaled => OwnerWriter::add(cell, amount),
        WriterKind::Shared => SharedWriter::add(cell, amount),
    }
}

/// Where an admitted record is counted: the recorder (finding the thread's shard) or a [`Batch`] (the
/// shard it found once). A trait rather than a closure, so that the hot path is inlined into every
/// caller instead of called through one shared closure body.
pub(crate) trait Counter {
    /// Counts `record`.
    fn count(&self, record: Record<'_>);
}

impl Counter for Recorder {
    #[inline(always)]
    fn count(&self, record: Record<'_>) {
        self.record(record);
    }
}

impl Counter for Batch<'_> {
    #[inline(always)]
    fn count(&self, record: Record<'_>) {
        self.record(record);
    }
}

/// The two words a record checks first, 16-byte aligned so that they always share a cache line.
#[repr(C, align(16))]
struct Gate {
    /// The accepted operation count while counting without sampling, 0 otherwise: a record of an
    /// operation below it counts.
    count_below: AtomicU64,
    /// The accepted operation count while switched off, 0 otherwise: a record of an operation below it
    /// (and not below `count_below`) counts nothing. A record that passes neither takes the cold path,
    /// which tells "sampled" and "unknown" apart.
    skip_below: AtomicU64,
}

/// What a record may do, from [`Recorder::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Count it.
    Count,
    /// Count it, and offer it to the profiler.
    CountSampled,
    /// Accept it and count nothing (monitoring is switched off).
    Skip,
    /// Refuse it: the operation is not registered.
    Refuse,
}

// SAFETY: `reserved` is an address the recorder maps a file over once, under `OnceLock`; everything else
// is atomics, locks or owned data.
unsafe impl Send for Recorder {}
// SAFETY: as above.
unsafe impl Sync for Recorder {}

/// One record, validated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) operation: Operation,
    pub(crate) outcome: Outcome,
    pub(crate) duration_ns: u64,
    pub(crate) key: &'a [u8],
}

impl<'a> Record<'a> {
    /// A record of `duration_ns`, or of [`MAX_DURATION_NS`](crate::config::MAX_DURATION_NS) when it is
    /// longer (so that one absurd duration cannot make a histogram's sum fall): every record counted is
    /// made here.
    #[inline(always)]
    pub(crate) fn new(operation: Operation, outcome: Outcome, duration_ns: u64, key: &'a [u8]) -> Self {
        Self {
            operation,
            outcome,
            duration_ns: clamp_duration(duration_ns),
            key,
        }
    }
}

impl Recorder {
    /// A recorder writing `memory`, attaching state files into `home` (mapped over `reserved`, if given).
    pub(crate) fn new(memory: Memory, home: AttachmentHome, reserved: Reserved, clock: Clock) -> Self {
        let memory_region = NonNull::from(memory.region());
        Self {
            memory,
            memory_region,
            memory_routes: Routes::new(),
            home,
            reserved,
            attached: AtomicPtr::new(std::ptr::null_mut()),
            operations: AtomicUsize::new(Operation::BUILTIN.len()),
            enabled: AtomicBool::new(true),
            sampling: AtomicBool::new(false),
            gate: Gate {
                count_below: AtomicU64::new(Operation::BUILTIN.len() as u64),
                skip_below: AtomicU64::new(0),
            },
            gate_update: Mutex::new(()),
            clock,
        }
    }

    /// The attachment records go to, if a state file is attached.
    #[inline(always)]
    pub(crate) fn attachment(&self) -> Option<&Attachment> {
        // SAFETY: `attached` is null or points into `home`, which lives as long as `self` and is never
        // replaced once set.
        unsafe { self.attached.load(Acquire).as_ref() }
    }

    /// The region records go to, and the routes into it.
    #[inline(always)]
    fn target(&self) -> (&Region, &Routes) {
        match self.attachment() {
            // SAFETY: `memory_region` points into `memory`, owned by `self` and never moved (a static or a
            // box).
            None => (unsafe { self.memory_region.as_ref() }, &self.memory_routes),
            Some(attachment) => (attachment.region(), &attachment.routes),
        }
    }

    /// The region records go to now.
    pub(crate) fn region(&self) -> &Region {
        self.target().0
    }

    /// The process memory region (where records went before a state file was attached).
    pub(crate) fn memory_region(&self) -> &Region {
        self.memory.region()
    }

    /// The seconds windows are kept in: the system's wall clock in a state file (every process and
    /// restart agrees on it), this recorder's clock otherwise.
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        if self.attached.load(Relaxed).is_null() {
            self.clock.now_secs()
        } else {
            self.clock.shared_secs()
        }
    }

    /// Whether `operation` is built in or registered.
    #[inline(always)]
    pub(crate) fn accepts(&self, operation: Operation) -> bool {
        operation.index() < self.operations.load(Relaxed)
    }

    /// Whether records count (`{"enabled": false}` turns them off).
    #[inline(always)]
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// What a record of `operation` may do: one load and a compare while counting, two of each while
    /// switched off (both words sit on one cache line).
    #[inline(always)]
    pub(crate) fn admit(&self, operation: Operation) -> Admission {
        match self.admit_at_once(operation) {
            Some(admission) => admission,
            None => self.admit_cold(operation),
        }
    }

    /// [`Recorder::admit`] when the gate alone decides (count or skip), with no call; `None` when the
    /// record must ask the cold path.
    #[inline(always)]
    pub(crate) fn admit_at_once(&self, operation: Operation) -> Option<Admission> {
        let code = u64::from(operation.code());
        if code < self.gate.count_below.load(Relaxed) {
            Some(Admission::Count)
        } else if code < self.gate.skip_below.load(Relaxed) {
            Some(Admission::Skip)
        } else {
            None
        }
    }

    #[cold]
    #[inline(never)]
    fn admit_cold(&self, operation: Operation) -> Admission {
        match (self.accepts(operation), self.is_enabled()) {
            (false, _) => Admission::Refuse,
            (true, false) => Admission::Skip,
            (true, true) if self.sampling.load(Relaxed) => Admission::CountSampled,
            // The gate changed between the loads: count it.
            (true, true) => Admission::Count,
        }
    }

    /// Tells the hot path whether the profiler samples.
    pub(crate) fn set_sampling(&self, sampling: bool) {
        self.sampling.store(sampling, Relaxed);
        self.update_gate();
    }

    /// Turns counting on or off.
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Relaxed);
        self.update_gate();
    }

    fn update_gate(&self) {
        // One update at a time, so that two switches at once cannot leave the words of the older one.
        let _serialised = self.gate_update.lock();
        let accepted = self.operations.load(Relaxed) as u64;
        let (open, skip) = match (self.is_enabled(), self.sampling.load(Relaxed)) {
            (true, false) => (accepted, 0),
            (true, true) => (0, 0),
            (false, _) => (0, accepted),
        };
        // A record racing this change may see either word old or new: it then counts or skips, as a
        // record racing a switch may, or takes the cold path, which reads the flags themselves.
        self.gate.count_below.store(open, Relaxed);
        self.gate.skip_below.store(skip, Relaxed);
    }

    /// The calling thread's shard in the current region, routing it there on first use.
    #[inline(always)]
    fn shard(&self) -> (&Region, &Shard, Route<'_>) {
        let claim = ShardClaim::current();
        let (region, routes) = self.target();
        match routes.get(claim) {
            Some(route) => (region, route.shard(), route),
            None => self.route(claim),
        }
    }

    /// The shard the calling thread writes in the current region, if it has written there yet (for tests
    /// of the state file's crash safety).
    pub(crate) fn route_of_this_thread(&self) -> Option<usize> {
        let (region, routes) = self.target();
        routes
            .get(ShardClaim::current())
            .and_then(|route| region.index_of_shard(route.shard()))
    }

    #[cold]
    #[inline(never)]
    fn route(&self, claim: ShardClaim) -> (&Region, &Shard, Route<'_>) {
        let (region, routes) = self.target();
        let (index, kind) = match (self.attachment(), claim.is_owned()) {
            (None, true) => (claim.index(), WriterKind::Owner),
            (None, false) => (claim.index(), WriterKind::Shared),
            (Some(attachment), owned) => match owned.then(|| attachment.claim_owned()).flatten() {
                Some(index) => (index, WriterKind::Journaled),
                None => (OWNED_SHARDS + claim.index() % SHARED_SHARDS, WriterKind::Shared),
            },
        };
        let index = index.min(SHARD_COUNT - 1);
        let shard = &region.shards[index];
        region.mark_in_use(index);
        let route = Route::new(shard, kind);
        // SAFETY: `routes` are the routes into `region` (`target` pairs them), and both belong to the
        // recorder (process memory) or to its attachment (a state file), which never moves or unmaps the
        // region while the routes exist.
        unsafe { routes.set(claim, route) };
        (region, shard, route)
    }

    /// Where an exemplar of a `duration_ns` record goes: the classic bucket the record counts in, and the
    /// reset generation of the region it counts in (off the hot path: only exemplars ask).
    pub(crate) fn exemplar_place(&self, duration_ns: u64) -> (usize, u64) {
        let region = self.region();
        let bucket = region
            .core
            .hot
            .buckets
            .index_of(duration_ns, latency::index_of(duration_ns));
        (bucket, region.core.baseline.generation())
    }

    /// Adds one record to the calling thread's shard. The caller has checked the operation.
    ///
    /// The common record (a thread that owns its shard, no key, no clock read due) runs straight
    /// through; everything else leaves it as its last step, with the record's values as arguments (a
    /// record with a key to [`Recorder::record_with_key`], a thread's first record, a shared shard or a
    /// clock read to [`Recorder::record_slow`]), so the common record keeps its values in registers
    /// instead of saving them around calls or writing them out for one.
    #[inline(always)]
    pub(crate) fn record(&self, record: Record<'_>) {
        let Record {
            operation,
            outcome,
            duration_ns,
            key,
        } = record;
        if !key.is_empty() {
            return self.record_with_key(operation, outcome, duration_ns, key);
        }
        self.record_fast(operation, outcome, duration_ns, None);
    }

    /// [`Recorder::record`] of a record with a key: out of line, with the pattern lookup (a call) first.
    #[inline(never)]
    fn record_with_key(&self, operation: Operation, outcome: Outcome, duration_ns: u64, key: &[u8]) {
        let pattern = self.target().0.core.hot.patterns.id_of(key);
        self.record_fast(operation, outcome, duration_ns, pattern);
    }

    /// The common record, counted under `pattern` if any; anything else goes to
    /// [`Recorder::record_slow`].
    #[inline(always)]
    fn record_fast(&self, operation: Operation, outcome: Outcome, duration_ns: u64, pattern: Option<usize>) {
        let claim = ShardClaim::current();
        let (region, routes) = self.target();
        let Some(route) = routes.get(claim) else {
            return self.record_slow(operation, outcome, duration_ns, pattern);
        };
        let kind = route.kind();
        let shard = route.shard();
        if kind == WriterKind::Shared || !Self::count_down(shard) {
            return self.record_slow(operation, outcome, duration_ns, pattern);
        }
        let placed = Self::place(region, operation, outcome, duration_ns, pattern);
        if kind == WriterKind::Owner {
            OwnerWriter::record(shard, &placed);
        } else {
            JournaledWriter::record(shard, &placed);
        }
    }

    /// [`Recorder::record`] when it needs no call, so that a caller that makes none either (the C entry
    /// point) saves no register and sets up no stack frame: a record of a thread that owns its shard, no
    /// clock read due, and no key or one whose pattern is in its home entry
    /// ([`PatternTable::id_of_at_home`](crate::recording::patterns::PatternTable::id_of_at_home)). Returns
    /// `false`, having written nothing, for any other record, which the caller then records in full. The
    /// caller has checked the operation.
    ///
    /// It cannot panic, so a caller across `extern "C"` needs no unwinding guard around it: every index
    /// below is taken with `get` or clamped into its array.
    #[inline(always)]
    pub(crate) fn record_without_call(&self, record: Record<'_>) -> bool {
        // Process memory and a state file apart, each with the one kind of owner it has: neither path
        // then tests for the other's writer.
        match self.attachment() {
            None => {
                // SAFETY: as in `target`.
                let region = unsafe { self.memory_region.as_ref() };
                Self::record_into_without_call::<OwnerWriter>(region, &self.memory_routes, WriterKind::Owner, record)
            }
            Some(attachment) => Self::record_into_without_call::<JournaledWriter>(
                attachment.region(),
                &attachment.routes,
                WriterKind::Journaled,
                record,
            ),
        }
    }

    /// [`Recorder::record_without_call`] into `region`, whose routes are `routes`, by its owner: a writer
    /// `W` of kind `owner`.
    #[inline(always)]
    fn record_into_without_call<W: Writer>(
        region: &Region,
        routes: &Routes,
        owner: WriterKind,
        record: Record<'_>,
    ) -> bool {
        let pattern = if record.key.is_empty() {
            None
        } else {
            match region.core.hot.patterns.id_of_at_home(record.key) {
                Some(pattern) => pattern,
                None => return false,
            }
        };
        let Some(shard) = routes.shard_if(ShardClaim::current_slot_if_claimed(), owner) else {
            return false;
        };
        if !Self::count_down(shard) {
            return false;
        }
        // A duration of 0 apart, with the constant 0: each path then knows its latency bucket is or is
        // not the zero bucket, and a journal its entry's zero-duration flag, without testing again.
        let duration_ns = record.duration_ns;
        if duration_ns == 0 {
            Self::write_placed::<W>(region, shard, record, 0, pattern);
        } else {
            Self::write_placed::<W>(region, shard, record, duration_ns, pattern);
        }
        true
    }

    /// The end of [`Recorder::record_into_without_call`]: `record`, of `duration_ns`, placed and written.
    #[inline(always)]
    fn write_placed<W: Writer>(
        region: &Region,
        shard: &Shard,
        record: Record<'_>,
        duration_ns: u64,
        pattern: Option<usize>,
    ) {
        W::record(
            shard,
            &Self::place(region, record.operation, record.outcome, duration_ns, pattern).clamped(),
        );
    }

    /// Every other record: a thread's first in the current region (routing it), one into a shared
    /// shard, and an owner's whose countdown ran out (the clock read, see [`Recorder::tick_owned`]).
    #[cold]
    #[inline(never)]
    fn record_slow(&self, operation: Operation, outcome: Outcome, duration_ns: u64, pattern: Option<usize>) {
        let (region, shard, route) = self.shard();
        let placed = Self::place(region, operation, outcome, duration_ns, pattern);
        self.write(region, shard, route, &placed);
    }

    /// Adds `placed` to `shard` by its writer's rules, reading the clock when they say so.
    #[inline(always)]
    fn write(&self, region: &Region, shard: &Shard, route: Route<'_>, placed: &Placed) {
        match route.kind() {
            WriterKind::Owner => {
                self.tick_owned(region, shard);
                OwnerWriter::record(shard, placed);
            }
            WriterKind::Journaled => {
                self.tick_owned(region, shard);
                JournaledWriter::record(shard, placed);
            }
            WriterKind::Shared => {
                self.tick_shared(region, shard);
                SharedWriter::record(shard, placed);
            }
        }
    }

    /// The calling thread's shard, found once for many records (routing the thread if this is its
    /// first use of the current region).
    pub(crate) fn batch(&self) -> Batch<'_> {
        let (region, shard, route) = self.shard();
        Batch {
            recorder: self,
            region,
            shard,
            route,
            _one_thread: std::marker::PhantomData,
        }
    }

    /// Every index a record writes at.
    #[inline(always)]
    fn place(
        region: &Region,
        operation: Operation,
        outcome: Outcome,
        duration_ns: u64,
        pattern: Option<usize>,
    ) -> Placed {
        // Admitted operations are below the accepted count, at most MAX_OPERATIONS; the mask keeps the
        // index in range for the compiler too.
        Placed::new(
            operation.index() & (MAX_OPERATIONS - 1),
            outcome.index(),
            duration_ns,
            pattern,
            &region.core.hot.buckets,
        )
    }

    /// Counts down an owner's records to the next clock read: false when the clock is due, which is
    /// when the count goes below zero (read as signed). One decrement of the cell and a test of its sign,
    /// whatever it finds: a record that finds the clock due leaves the count below zero, and so do the
    /// path's later looks until `tick_owned_slow` restarts it.
    #[inline(always)]
    fn count_down(shard: &Shard) -> bool {
        let countdown = &shard.control.countdown;
        let left = countdown.load(Relaxed).wrapping_sub(1);
        countdown.store(left, Relaxed);
        left.cast_signed() >= 0
    }

    /// Before an owner's record: flushes its last second's records to the window rings when the second
    /// changed (see the module docs for when the clock is read).
    #[inline(always)]
    fn tick_owned(&self, region: &Region, shard: &Shard) {
        if !Self::count_down(shard) {
            self.tick_owned_slow(region, shard);
        }
    }

    #[cold]
    #[inline(never)]
    fn tick_owned_slow(&self, region: &Region, shard: &Shard) {
        let now = self.now();
        let control = &shard.control;
        let same = control.second.load(Relaxed) == now.wrapping_add(1);
        let reload = control.reload.load(Relaxed).clamp(1, MAX_COUNTDOWN);
        let reload = if self.clock.is_manual() {
            1
        } else if same {
            (reload * 2).min(MAX_COUNTDOWN)
        } else {
            (reload / 2).max(1)
        };
        if !same {
            region.core.windows.flush(shard, now);
        }
        control.reload.store(reload, Relaxed);
        control.countdown.store(reload - 1, Relaxed);
    }

    /// Before a shared shard's record: the clock at every record, and a flush by whichever writer takes
    /// the shard's flush lock first in a new second.
    #[cold]
    fn tick_shared(&self, region: &Region, shard: &Shard) {
        let now = self.now();
        let control = &shard.control;
        if control.second.load(Relaxed) != now.wrapping_add(1)
            && control.flush_lock.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
        {
            region.core.windows.flush(shard, now);
            control.flush_lock.store(0, Release);
        }
    }

    /// Runs `f` with the calling thread's shard in the current region, and whether other writers share
    /// it (then every add must be atomic).
    pub(crate) fn with_own_shard(&self, f: impl FnOnce(&Shard, bool)) {
        let (_, shard, route) = self.shard();
        f(shard, route.kind() == WriterKind::Shared);
    }

    /// Counts `count` operations without a duration (see `SeriesTotals::untimed`).
    pub(crate) fn count(&self, operation: Operation, outcome: Outcome, count: u64) {
        let operation = operation.index() & (MAX_OPERATIONS - 1);
        self.bump(|shard| &shard.series[operation][outcome.index()].untimed, count);
    }

    /// Counts the start of an operation.
    pub(crate) fn begin(&self, operation: Operation) {
        self.bump(|shard| &shard.begun[operation.index() & (MAX_OPERATIONS - 1)], 1);
    }

    /// Counts the end of an operation.
    pub(crate) fn end(&self, operation: Operation) {
        self.bump(|shard| &shard.ended[operation.index() & (MAX_OPERATIONS - 1)], 1);
    }

    fn bump(&self, cell: impl Fn(&Shard) -> &AtomicU64, amount: u64) {
        let (_, shard, route) = self.shard();
        add_one_cell(route, cell(shard), amount);
    }

    /// Sets a host gauge.
    pub(crate) fn set_gauge(&self, gauge: Gauge, value: u64) {
        self.region().core.gauges[gauge.index()].store(value, Relaxed);
    }

    /// The host gauges, indexed by [`Gauge`] code.
    pub(crate) fn gauges(&self) -> [u64; Gauge::ALL.len()] {
        let gauges = &self.region().core.gauges;
        std::array::from_fn(|i| gauges[i].load(Relaxed))
    }

    /// Accepts operation codes below `count` from now on.
    pub(crate) fn set_operation_count(&self, count: usize) {
        self.operations.store(count.min(MAX_OPERATIONS), Relaxed);
        self.update_gate();
    }

    /// Replaces the histogram bounds (see [`crate::recording::buckets::BucketIndex::store`]).
    pub(crate) fn set_bounds(&self, bounds: &BucketBounds) {
        self.region().core.hot.buckets.store(bounds);
    }

    /// Applies pattern settings.
    pub(crate) fn set_patterns(&self, patterns: &PatternConfig) {
        self.region().core.hot.patterns.configure(patterns);
    }

    /// Everything the shards hold, for every operation and every bucket cell: no reset, no imports.
    /// Operations in flight count only from live writers (see [`Totals::sum`]).
    pub(crate) fn raw_totals(&self) -> Totals {
        match self.attachment() {
            None => raw_totals_of(self.memory.region(), None),
            Some(attachment) => {
                attachment.roll_back_dead_writers();
                raw_totals_of(attachment.region(), Some(attachment))
            }
        }
    }

    /// [`Recorder::raw_totals`] of the process memory region, whatever is attached.
    pub(crate) fn memory_raw_totals(&self) -> Totals {
        raw_totals_of(self.memory.region(), None)
    }

    /// The window rings' periods from `since` (a second) to `now`, and every shard's pending records.
    pub(crate) fn window_deltas(&self, since: u64, now: u64) -> (WindowDeltas, Vec<Pending>) {
        if let Some(attachment) = self.attachment() {
            attachment.roll_back_dead_writers();
        }
        let region = self.region();
        region.core.windows.note_first(now);
        let shards: Vec<&Shard> = region.shards_in_use();
        region.core.windows.read(&shards, since, now)
    }

    /// Opens the state file at `path` (creating it if `options` say so; `init` fills a new file's region)
    /// for [`Recorder::activate`], mapped where this recorder keeps files. Records keep going to the
    /// current region until then. `Err` also if a file is attached already.
    pub(crate) fn open_state_file(
        &self,
        path: &std::path::Path,
        options: OpenOptions,
        init: &dyn Fn(&Region),
    ) -> Result<Attachment, StateFileError> {
        if let Some(attached) = self.attachment() {
            return Err(StateFileError {
                path: path.to_owned(),
                problem: format!(
                    "another state file ({}) is attached already; a monitor keeps one file for its life",
                    attached.path().unwrap_or_default().display()
                ),
            });
        }
        Attachment::open(path, options, self.reserved, init)
    }

    /// Sends every later record to `attachment`'s file. Records already under way finish in the old
    /// region. `None` (and the attachment dropped) if one is active already.
    pub(crate) fn activate(&self, attachment: Attachment) -> Option<&Attachment> {
        let stored: &Attachment = match &self.home {
            AttachmentHome::Static(home) => {
                home.set(attachment).ok()?;
                home.get()?
            }
            AttachmentHome::Heap(home) => {
                home.set(Box::new(attachment)).ok()?;
                home.get().map(|boxed| &**boxed)?
            }
        };
        attachment::register(stored);
        self.attached
            .store(stored as *const Attachment as *mut Attachment, Release);
        Some(stored)
    }

    /// Releases the state file's descriptor (the library is being unloaded): other processes may claim
    /// this process's shards from now on.
    pub(crate) fn release_file(&self) {
        if let Some(attachment) = self.attachment() {
            attachment::unregister(attachment);
            attachment.release();
        }
    }

    /// The attached state file's path.
    pub(crate) fn state_file(&self) -> Option<std::path::PathBuf> {
        self.attachment().and_then(Attachment::path)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(attachment) = self.attachment() {
            attachment::unregister(attachment);
        }
    }
}

/// Everything `region`'s shards hold (see [`Recorder::raw_totals`]); in a state file (`attachment`), in
/// flight only from live owners, counted from their claim.
pub(crate) fn raw_totals_of(region: &Region, attachment: Option<&Attachment>) -> Totals {
    let ids = region.core.hot.patterns.ids_in_use();
    let shards = region.shards_in_use_indexed();
    let live = |index: usize| attachment.is_none_or(|attachment| attachment.is_live(index));
    Totals::sum(&shards, ids, live, attachment.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        recorder_on(Clock::default())
    }

    fn recorder_on(clock: Clock) -> Recorder {
        let recorder = Recorder::new(Memory::heap(), AttachmentHome::Heap(OnceLock::new()), None, clock);
        recorder.set_bounds(&BucketBounds::default());
        recorder.set_patterns(&PatternConfig::default());
        recorder
    }

    /// A recorder on a manual clock at second 100, and the clock.
    fn manual_recorder() -> (Recorder, crate::recording::clock::ManualClock) {
        let manual = crate::recording::clock::ManualClock::starting_at(100);
        (recorder_on(Clock::Manual(manual.clone())), manual)
    }

    fn record(recorder: &Recorder, operation: Operation, outcome: Outcome, duration_ns: u64) {
        recorder.record(Record {
            operation,
            outcome,
            duration_ns,
            key: b"",
        });
    }

    #[test]
    fn counts_from_many_threads_are_exact() {
        let recorder = recorder();
        std::thread::scope(|scope| {
            for t in 0..6u64 {
                let recorder = &recorder;
                scope.spawn(move || {
                    for i in 0..10_000u64 {
                        let outcome = if (i + t) % 3 == 0 { Outcome::Hit } else { Outcome::Miss };
                        record(recorder, Operation::GET, outcome, 1_000);
                    }
                });
            }
        });
        let totals = recorder.raw_totals();
        let get = &totals.series[0];
        assert_eq!(get[0].count + get[1].count, 60_000);
        assert_eq!(get[0].count, 20_000);
        assert_eq!(get[0].sum_ns, 20_000 * 1_000);
        assert_eq!(get[0].buckets[0], 20_000, "1 us lands in the le=1e-06 bucket");
        assert_eq!(totals.latency[0].total(), 60_000);
    }

    /// The record without a call either counts a record whole or leaves it, untouched, to the full
    /// record: a record is never lost or counted twice whichever way it goes.
    #[test]
    fn a_record_without_a_call_counts_whole_or_writes_nothing() {
        let recorder = recorder();
        let get = |key: &'static [u8]| Record::new(Operation::GET, Outcome::Hit, 1_000, key);
        let counted = |recorder: &Recorder| {
            let totals = recorder.raw_totals();
            (totals.series[0][0].count, totals.patterns.iter().flatten().sum::<u64>())
        };
        // Run on a thread of its own, so that its first record is that thread's first in the region.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                assert!(
                    !recorder.record_without_call(get(b"")),
                    "a thread's first record routes it"
                );
                assert_eq!(counted(&recorder), (0, 0));
                recorder.record(get(b""));
                // A quiet writer reads the clock at every record: hold the next clock read off.
                let (_, shard, _) = recorder.shard();
                shard.control.countdown.store(1_000, Relaxed);
                assert!(recorder.record_without_call(get(b"")));
                assert_eq!(counted(&recorder), (2, 0));
                assert!(
                    !recorder.record_without_call(get(b"user:1")),
                    "a pattern not learned yet"
                );
                assert_eq!(counted(&recorder), (2, 0));
                recorder.record(get(b"user:1"));
                assert!(
                    recorder.record_without_call(get(b"user:2")),
                    "its pattern is at home now"
                );
                assert_eq!(counted(&recorder), (4, 2));
                assert!(
                    !recorder.record_without_call(get(b"no-delimiter-in-8")),
                    "cut the whole way"
                );
                shard.control.countdown.store(0, Relaxed);
                assert!(!recorder.record_without_call(get(b"")), "the clock is due");
                assert_eq!(counted(&recorder), (4, 2));
                recorder.record(get(b""));
                assert_eq!(counted(&recorder), (5, 2));
            });
        });
    }

    #[test]
    fn unregistered_operations_are_refused() {
        let recorder = recorder();
        assert!(recorder.accepts(Operation::LOAD));
        assert!(!recorder.accepts(Operation::from_code(7)));
        recorder.set_operation_count(8);
        assert!(recorder.accepts(Operation::from_code(7)));
    }

    #[test]
    fn in_flight_counts_begin_and_end_on_any_thread() {
        let recorder = recorder();
        recorder.begin(Operation::GET);
        recorder.begin(Operation::PUT);
        std::thread::scope(|scope| {
            scope.spawn(|| recorder.end(Operation::GET));
        });
        assert_eq!(recorder.raw_totals().in_flight(), 1);
    }

    #[test]
    fn a_busy_writer_reads_the_clock_rarely_and_a_quiet_one_at_every_record() {
        let recorder = recorder();
        for _ in 0..1_000 {
            record(&recorder, Operation::GET, Outcome::Hit, 10);
        }
        let (_, shard, _) = recorder.shard();
        assert!(
            shard.control.reload.load(Relaxed) > 1,
            "the same second over and over: the countdown grew"
        );
        let (recorder, manual) = manual_recorder();
        record(&recorder, Operation::GET, Outcome::Hit, 10);
        manual.advance(1);
        record(&recorder, Operation::GET, Outcome::Hit, 10);
        let (deltas, pending) = recorder.window_deltas(0, 101);
        assert_eq!(
            deltas.counts[0].iter().map(|(_, c)| c[0][0]).sum::<u64>(),
            1,
            "second 100 is flushed"
        );
        assert_eq!(
            pending.iter().map(|p| p.counts[0][0]).sum::<u64>(),
            1,
            "second 101 is pending"
        );
    }

    /// Issue 16: the window tick inside a host's record moves that writer's own last second only; it
    /// never sums, reads or flushes another thread's shard (readers add what is still pending).
    #[test]
    fn a_writers_tick_flushes_its_own_shard_and_no_other() {
        let (recorder, manual) = manual_recorder();
        // This thread records in second 100; its shard holds the record as pending.
        record(&recorder, Operation::GET, Outcome::Hit, 10);
        let (_, mine, _) = recorder.shard();
        let my_flushes = mine.control.flush_seq.load(Relaxed);
        let my_second = mine.control.second.load(Relaxed);
        manual.advance(1);
        // Another thread records 1,000 times in second 101: each record ticks, none touches this shard.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    record(&recorder, Operation::GET, Outcome::Miss, 10);
                }
                let (_, theirs, _) = recorder.shard();
                assert!(!std::ptr::eq(theirs, mine), "two live threads, two shards");
                assert!(
                    theirs.control.flush_seq.load(Relaxed) > 0,
                    "its own first second was flushed"
                );
            });
        });
        assert_eq!(
            mine.control.flush_seq.load(Relaxed),
            my_flushes,
            "no flush of this shard"
        );
        assert_eq!(mine.control.second.load(Relaxed), my_second, "nor a tick of its clock");
        let (deltas, pending) = recorder.window_deltas(0, 101);
        let flushed_hits: u64 = deltas.counts[0].iter().map(|(_, c)| c[0][0]).sum();
        let pending_hits: u64 = pending.iter().map(|p| p.counts[0][0]).sum();
        assert_eq!(
            (flushed_hits, pending_hits),
            (0, 1),
            "this thread's hit is still pending, and read"
        );
        let misses: u64 = deltas.counts[0].iter().map(|(_, c)| c[0][1]).sum::<u64>()
            + pending.iter().map(|p| p.counts[0][1]).sum::<u64>();
        assert_eq!(misses, 1_000, "every miss of the other thread, flushed or pending");
    }
}
