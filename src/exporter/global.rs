//! The process-wide exporter behind `cache_monitor_serve` and `cache_monitor_serve_stop`: at most one,
//! serving [`Monitor::global`].
//!
//! A `crate::sync::Mutex` (std's) guards it (not parking_lot's, whose parking uses a thread-local with a destructor in the
//! calling thread, which would keep the library from unloading; see `crate::os_thread`).

use crate::sync::Mutex;
use std::net::SocketAddr;

use super::Exporter;
use crate::error::Error;
use crate::monitor::Monitor;

static SERVING: Mutex<Option<Exporter>> = Mutex::new(None);

/// Starts serving [`Monitor::global`] at `address` (empty for the default); fails with
/// [`Error::AlreadyServing`] if the process-wide exporter already runs.
pub fn serve(address: &str) -> Result<SocketAddr, Error> {
    let mut serving = SERVING.lock();
    if let Some(exporter) = serving.as_ref() {
        return Err(Error::AlreadyServing(exporter.local_addr().to_string()));
    }
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

/// The process-wide exporter's address, if it is serving.
pub fn serving_address() -> Result<SocketAddr, Error> {
    SERVING
        .lock()
        .as_ref()
        .map(Exporter::local_addr)
        .ok_or(Error::NotServing)
}
