//! The process-wide exporter behind `cache_monitor_serve` and `cache_monitor_serve_stop`: at most one,
//! serving [`Monitor::global`].
//!
//! It belongs to the process that started it: a child forked from a serving process is not serving
//! (`serving_address` says so, `serve` starts the child's own), and its `serve_stop` leaves the parent's
//! exporter alone. `lifecycle.rs` holds `SERVING` around `fork()` (`lock_for_fork`) and lets the
//! child's copy go in the child (`release_in_child`).
//!
//! A `crate::sync::Mutex` (std's) guards it (not parking_lot's, whose parking uses a thread-local with a destructor in the
//! calling thread, which would keep the library from unloading; see `crate::os_thread`).

use crate::sync::Mutex;
use std::net::SocketAddr;
use std::sync::MutexGuard;

use super::Exporter;
use crate::error::Error;
use crate::monitor::Monitor;

static SERVING: Mutex<Option<Exporter>> = Mutex::new(None);

/// Starts serving [`Monitor::global`] at `address` (empty for the default); fails with
/// [`Error::AlreadyServing`] if the process-wide exporter already runs.
pub fn serve(address: &str) -> Result<SocketAddr, Error> {
    let mut serving = SERVING.lock();
    if let Some(exporter) = serving.as_ref().filter(|exporter| exporter.is_ours()) {
        return Err(Error::AlreadyServing(exporter.local_addr().to_string()));
    }
    // A parent's exporter (this is a forked child): let go of this process's copy.
    drop(serving.take());
    let exporter = Exporter::start(Monitor::global(), address)?;
    let address = exporter.local_addr();
    *serving = Some(exporter);
    Ok(address)
}

/// Stops the process-wide exporter and joins its thread; does nothing if it is not serving.
pub fn serve_stop() {
    let exporter = SERVING.lock().take();
    if let Some(exporter) = exporter {
        exporter.stop();
    }
}

/// The process-wide exporter's address, if it is serving (in this process).
pub fn serving_address() -> Result<SocketAddr, Error> {
    SERVING
        .lock()
        .as_ref()
        .filter(|exporter| exporter.is_ours())
        .map(Exporter::local_addr)
        .ok_or(Error::NotServing)
}

/// The process-wide exporter held around `fork()`, so that no `serve` or `serve_stop` is half done;
/// dropping it releases it.
pub(crate) struct ForkGuard(MutexGuard<'static, Option<Exporter>>);

/// Takes the process-wide exporter's lock, waiting for a `serve` or `serve_stop` in progress.
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(SERVING.lock())
}

/// In the child of the fork: the exporter is the parent's, so this process lets go of its copy (see
/// `Exporter`'s `fork()` notes) and is not serving; then the lock is released. Neither allocates nor locks.
pub(crate) fn release_in_child(mut guard: ForkGuard) {
    drop(guard.0.take());
}
