//! Synchronisation for the rest of the crate: the atomics of the lock-free protocols ([`atomic`], with
//! [`hint`] and [`thread`] for their waits), and locks for the cold paths (configuration, renders,
//! imports), on `std::sync`.
//!
//! # The model-checking facade
//!
//! The modules whose lock-free protocols are model-checked (`recording::thread_claim`,
//! `recording::double_buffer`, `recording::delta_ring`, `recording::window_rings` (its fences),
//! `recording::patterns`, `recording::exemplars`, `profiler::stack_table`, `profiler::active_table`)
//! take their atomics, spin hints and yields from here. Normally these are plain re-exports of `std` (the
//! same types and functions, so the hot path compiles exactly as it would with `std` named directly);
//! built with `RUSTFLAGS="--cfg loom"` they are loom's, which records every access so that `loom::model`
//! can run each protocol's `loom_tests` under every interleaving and every outcome the memory model
//! allows. loom's atomics are made at run time inside a model (never `const`, never valid zeroed), so the
//! models run on heap instances; the process-wide statics and the zeroed regions are only used outside
//! loom builds. In a loom build only the loom models may run: the rest of the crate compiles but would
//! panic outside `loom::model`.
//!
//! Why not `parking_lot`: a contended `parking_lot` lock parks the thread through a `thread_local!` with a
//! destructor, registered with `__cxa_thread_atexit_impl`, and glibc then refuses to really unload the
//! library while that thread lives (see `shared/PITFALLS.md`): a host could never hot-swap us out. The
//! `std` locks are futex-based and keep no thread-local state. Poisoning is ignored: every critical
//! section here leaves its data consistent (a plain assignment or clone), so a panic elsewhere must not
//! make the monitor unusable.

use std::sync::{self, MutexGuard, PoisonError, RwLockReadGuard, RwLockWriteGuard};

/// `std::sync::atomic`, or loom's under `cfg(loom)`.
pub(crate) mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::*;
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::*;

    /// What `get_mut` gives on `std` atomics, spelt as loom's `with_mut` so that code holding `&mut` to a
    /// facade atomic compiles both ways (loom's atomics have `with_mut`, inherent, instead).
    #[cfg(not(loom))]
    pub(crate) trait WithMut<T> {
        /// Calls `f` with the value, which `&mut self` makes plain memory.
        fn with_mut<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R;
    }

    macro_rules! with_mut {
        ($($atomic:ty => $value:ty),* $(,)?) => {$(
            #[cfg(not(loom))]
            impl WithMut<$value> for $atomic {
                #[inline(always)]
                fn with_mut<R>(&mut self, f: impl FnOnce(&mut $value) -> R) -> R {
                    f(self.get_mut())
                }
            }
        )*};
    }
    with_mut!(AtomicU32 => u32, AtomicU64 => u64, AtomicUsize => usize);

    #[cfg(not(loom))]
    impl<T> WithMut<*mut T> for AtomicPtr<T> {
        #[inline(always)]
        fn with_mut<R>(&mut self, f: impl FnOnce(&mut *mut T) -> R) -> R {
            f(self.get_mut())
        }
    }
}

/// `std::hint::spin_loop`, or loom's (a yield to the model's scheduler) under `cfg(loom)`.
pub(crate) mod hint {
    #[cfg(loom)]
    pub(crate) use loom::hint::spin_loop;
    #[cfg(not(loom))]
    pub(crate) use std::hint::spin_loop;
}

/// `std::thread::yield_now`, or loom's under `cfg(loom)`.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::yield_now;
    #[cfg(not(loom))]
    pub(crate) use std::thread::yield_now;
}

/// A mutex whose `lock` cannot fail.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if it is free now, for tests that check who holds it.
    #[cfg(test)]
    pub(crate) fn try_lock_for_test(&self) -> Option<MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}

/// A reader-writer lock whose `read` and `write` cannot fail.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The write lock if it is free now, for tests that check who holds it.
    #[cfg(test)]
    pub(crate) fn try_write_for_test(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.0.try_write().ok()
    }
}

/// A model's thread: what it runs, returning what the model checks after joining it.
#[cfg(all(loom, test))]
pub(crate) type ModelThread<T> = Box<dyn FnOnce() -> T + Send>;

#[cfg(all(loom, test))]
std::thread_local! {
    /// Whether the model running on this thread spawns its threads last first (see [`model`]).
    static REVERSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a model's threads concurrently and returns what each returned, in the order given. The model's
/// main thread only prepares (before) and checks (after): every concurrent access is in these threads.
#[cfg(all(loom, test))]
pub(crate) fn run_threads<T: Send + 'static>(threads: Vec<ModelThread<T>>) -> Vec<T> {
    let mut threads: Vec<(usize, ModelThread<T>)> = threads.into_iter().enumerate().collect();
    if REVERSED.with(std::cell::Cell::get) {
        threads.reverse();
    }
    let mut running: Vec<(usize, loom::thread::JoinHandle<T>)> = threads
        .into_iter()
        .map(|(index, thread)| (index, loom::thread::spawn(thread)))
        .collect();
    running.sort_by_key(|(index, _)| *index);
    running
        .into_iter()
        .map(|(_, thread)| thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        .collect()
}

/// Runs a loom model under every interleaving with at most `preemptions` preemptions (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise): bounded, so that each model finishes in seconds; most
/// concurrency bugs need only two or three preemptions to show (the loom and CHESS papers).
///
/// Twice, the second time with the threads of [`run_threads`] spawned in reverse order: loom's
/// partial-order reduction keeps one last access per atomic, so a thread whose store to a word follows its
/// own load of it hides the store from the race check against another thread's earlier load
/// (tokio-rs/loom#166, #392), and loom may never try the orders where the thread spawned last runs
/// first. Each model is also known to catch seeded bugs (a fence removed, a publication weakened to
/// `Relaxed`, a compare-and-swap made a store): `ARCHITECTURE.md` lists them.
///
/// Prints how many executions it explored (seen with `--nocapture`).
#[cfg(all(loom, test))]
pub(crate) fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let f = std::sync::Arc::new(f);
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();
    for reversed in [false, true] {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(preemptions);
        }
        let (f, counted) = (std::sync::Arc::clone(&f), std::sync::Arc::clone(&executions));
        REVERSED.with(|cell| cell.set(reversed));
        builder.check(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        });
    }
    REVERSED.with(|cell| cell.set(false));
    let name = std::thread::current().name().unwrap_or("a model").to_owned();
    eprintln!(
        "{name}: {} executions in {:.2?}",
        executions.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed()
    );
}
