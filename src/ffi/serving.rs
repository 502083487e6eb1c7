//! The process-wide HTTP exporter as the C ABI reaches it: `exporter::global` in a library built with the
//! `exporter` feature; without it, stand-ins that answer [`Error::ExporterNotBuilt`], so the
//! `cache_monitor_serve*` functions exist in every build and say clearly why they do nothing.

#[cfg(not(feature = "exporter"))]
use std::net::SocketAddr;

use crate::error::Error;

#[cfg(feature = "exporter")]
pub(crate) use crate::exporter::global::{serve, serve_stop, serving_address as address};

/// `Ok` when the library was built with the exporter, [`Error::ExporterNotBuilt`] otherwise. The
/// `cache_monitor_serve*` functions ask this first, so a library without the exporter gives that answer
/// whatever the arguments.
pub(crate) fn built() -> Result<(), Error> {
    if cfg!(feature = "exporter") {
        Ok(())
    } else {
        Err(Error::ExporterNotBuilt)
    }
}

/// Built without the exporter: nothing can serve.
#[cfg(not(feature = "exporter"))]
pub(crate) fn serve(_address: &str) -> Result<SocketAddr, Error> {
    Err(Error::ExporterNotBuilt)
}

/// Built without the exporter: nothing to stop.
#[cfg(not(feature = "exporter"))]
pub(crate) fn serve_stop() {}

/// Built without the exporter: nothing serves.
#[cfg(not(feature = "exporter"))]
pub(crate) fn address() -> Result<SocketAddr, Error> {
    Err(Error::ExporterNotBuilt)
}
