//! What the library runs on its own, what it gives back before it is unloaded, and how it survives a
//! `fork()`.
//!
//! # Unloading
//!
//! An ELF destructor ([`release_on_unload`]) frees the heap the process-wide monitor holds, so that
//! nothing the library allocated outlives its mapping (`dlclose`). The same destructor runs at process
//! exit, when threads of the host may still be inside the library: everything it frees is swapped out
//! under the lock that guards it (or handed back through its protocol), so such a thread sees an empty
//! value, never freed memory. The details, thing by thing, are at [`release_on_unload`].
//!
//! # `fork()`
//!
//! A child process has one thread, a copy of the one that forked; every lock another thread held at
//! that moment stays held in the child forever. So the library registers `pthread_atfork` handlers
//! ([`register_fork_handlers`], when it is loaded) that take every lock a render, a configuration, a
//! reset, an import or the exporter may hold, in their one order, before the fork ([`prepare_fork`]), and
//! release them after it in the parent ([`after_fork_in_parent`]) and in the child
//! ([`after_fork_in_child`]), where they also make the state the child inherited its own: samples cut off
//! by the fork are forgotten, and the exporter, the parent's, is let go (the child is not serving, and
//! its `serve_stop` cannot touch the parent's). Handlers compose: others (the host's, other modules')
//! run beside these. glibc drops these handlers when the library is unloaded.
//!
//! This covers the process-wide monitor, the one the C ABI uses. A Rust host that forks while other
//! threads configure, reset, render or sample a `Monitor` of its own must not use that monitor in the
//! child (the child may wait forever for a lock or a sample that a thread it does not have held).

#[cfg(feature = "exporter")]
use crate::exporter::global as exporter;
use crate::monitor::Monitor;
use crate::monitor::fork::ForkGuard as MonitorForkGuard;

/// Stops and joins every thread the library started (the HTTP exporter's and its render thread;
/// renders called directly join theirs before returning). Idempotent.
pub(crate) fn shutdown() {
    #[cfg(feature = "exporter")]
    exporter::serve_stop();
}

/// Runs when the library is unloaded (`dlclose`) or the process exits: frees the heap the process-wide
/// monitor holds, which would otherwise outlive the unmapped library. Its large parts are statics and
/// leave with the mapping (see `backing`).
///
/// Why each thing freed is safe to free while other threads may still use the library (process exit):
/// - imported state and the reset baseline are taken out under their locks: a reader after that sees
///   no imports and no reset (counts since the monitor started), never freed memory;
/// - the profiler's stack table is taken out through its hot/cold protocol, which waits for samples in
///   flight, and sampling is turned off first: a sample after that finds no table and is dropped;
/// - the configuration's heap is swapped out under its write lock for values holding none
///   (`Config::release_heap`: empty namespace and operation names; credentials that match no request, so
///   the exporter, if still running, serves nobody rather than everybody);
/// - nothing else is cached: the symboliser keeps nothing between renders (`profiler::symbols`), and
///   an exporter's renders are freed when it stops.
///
/// The last-error text of the C ABI is the C ABI's to free.
extern "C" fn release_on_unload() {
    // Nothing may unwind out of a loader callback.
    let _ = std::panic::catch_unwind(|| {
        if let Some(monitor) = Monitor::global_if_used() {
            monitor.release_heap();
        }
    });
}

/// Registers [`release_on_unload`] as an ELF destructor of this object.
#[used]
#[unsafe(link_section = ".fini_array")]
static RELEASE_ON_UNLOAD: extern "C" fn() = release_on_unload;

/// Registers the fork handlers, once per load of the library (an ELF constructor). glibc's
/// `pthread_atfork`, linked into this object, registers them on behalf of this object, and unloading it
/// (`dlclose`) unregisters them.
extern "C" fn register_fork_handlers() {
    // SAFETY: the three handlers are `extern "C"` functions of this object that never unwind; glibc
    // stops calling them when the object is unloaded.
    unsafe {
        libc::pthread_atfork(
            Some(prepare_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        );
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_FORK_HANDLERS: extern "C" fn() = register_fork_handlers;

/// Every lock of the library, held by a thread that is forking.
struct Held {
    /// Taken first: `serve` holds it while it starts the exporter.
    #[cfg(feature = "exporter")]
    exporter: exporter::ForkGuard,
    monitor: MonitorForkGuard<'static>,
}

/// Where [`prepare_fork`] keeps the locks until [`after_fork_in_parent`] or [`after_fork_in_child`].
struct HeldSlot(std::cell::UnsafeCell<Option<Held>>);

// SAFETY: the slot is written by a forking thread after it has taken every lock of the library (the
// first of them excludes any other forking thread from getting that far), and emptied by that same
// thread (or its copy in the child) before it releases them: only one thread ever uses it at a time.
unsafe impl Sync for HeldSlot {}

static HELD: HeldSlot = HeldSlot(std::cell::UnsafeCell::new(None));

/// Before `fork()`: takes every lock of the library, in the order any code path nests them (the
/// exporter's, then the monitor's, see `monitor::fork`), waiting for whoever holds one. The process-wide
/// monitor is made first if needed, so that the child never inherits it half made.
unsafe extern "C" fn prepare_fork() {
    let _ = std::panic::catch_unwind(|| {
        #[cfg(feature = "exporter")]
        let exporter = exporter::lock_for_fork();
        let monitor = Monitor::global().lock_for_fork();
        let held = Held {
            #[cfg(feature = "exporter")]
            exporter,
            monitor,
        };
        // SAFETY: this thread holds every lock of the library: nothing else uses the slot (see `HeldSlot`).
        unsafe { *HELD.0.get() = Some(held) };
    });
}

/// After `fork()`, in the parent: releases the locks.
unsafe extern "C" fn after_fork_in_parent() {
    // SAFETY: this is the thread that filled the slot in `prepare_fork` and still holds every lock.
    drop(unsafe { (*HELD.0.get()).take() });
}

/// After `fork()`, in the child: makes the state the child inherited its own (samples cut off by the
/// fork are forgotten; the parent's exporter is let go), then releases the locks. Only closes this
/// process's copies of descriptors and stores atomics: nothing here allocates or takes a lock.
unsafe extern "C" fn after_fork_in_child() {
    // SAFETY: this is the copy of the thread that filled the slot in `prepare_fork`, the only thread of
    // the child.
    let Some(held) = (unsafe { (*HELD.0.get()).take() }) else {
        return;
    };
    let Held {
        #[cfg(feature = "exporter")]
        exporter,
        monitor,
    } = held;
    monitor.release_in_child();
    #[cfg(feature = "exporter")]
    exporter::release_in_child(exporter);
}
