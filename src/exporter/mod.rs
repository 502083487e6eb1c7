//! The optional HTTP exporter: serves a [`Monitor`](crate::Monitor)'s metrics to Prometheus and people.
//!
//! Off until a host asks: [`Exporter::start`] from Rust, `cache_monitor_serve` from C (the process-wide
//! exporter, see [`global`]). It runs on one thread of its own with a current-thread tokio runtime and
//! hyper's HTTP/1 server; stopping it ([`Exporter::stop`], or dropping it) joins that thread, so no thread
//! of the library outlives it and the library can be unloaded.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cache_monitor::Monitor;
//! use cache_monitor::exporter::Exporter;
//!
//! let monitor = Arc::new(Monitor::new());
//! let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0")?;
//! println!("scrape http://{}/metrics", exporter.local_addr());
//! exporter.stop();
//! # Ok::<(), cache_monitor::Error>(())
//! ```
//!
//! Endpoints are listed in [`routes::ROUTES`]; authentication and limits come from the monitor's
//! `"http"` configuration section ([`HttpConfig`]); `server.rs` describes how the limits hold.
//!
//! An exporter belongs to the process that started it. In a child forked since, its thread does not
//! exist and its sockets are the parent's (a copy of a socket shares the parent's open file description):
//! stopping or dropping it there only closes the child's copies, which leaves the parent's exporter
//! serving; it never writes to the parent's stop socket, shuts a socket down or joins a thread.

mod auth;
pub mod global;
mod handshake;
mod negotiate;
mod renderer;
pub mod routes;
mod server;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

pub use crate::config::http::{
    BasicAuth, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_READ_TIMEOUT, HttpConfig, HttpPatch, Secret,
};
use handshake::Handshake;
#[doc(hidden)]
pub use server::serve_stream;

use crate::error::Error;
use crate::monitor::MonitorHandle;
use crate::os_thread::NativeThread;

/// Where the exporter listens unless told otherwise: loopback only, so nothing is exposed to the network
/// unless the host asks for it.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9464";

/// The monitor handle [`Exporter::start`] takes: one type for every API that holds a monitor.
#[deprecated(note = "use MonitorHandle (cache_monitor::MonitorHandle)")]
pub type SharedMonitor = MonitorHandle;

/// A running HTTP exporter. Stops (and joins its thread) on [`Exporter::stop`] or when dropped.
pub struct Exporter {
    address: SocketAddr,
    /// The process that started it (see the module documentation on `fork()`).
    pid: u32,
    /// The sockets the exporter's thread holds (the listener, the far end of the stop pair), to close a
    /// forked child's copies of them.
    thread_sockets: [SocketId; 2],
    /// Writing to (or closing) this end of the pair tells the event loop to stop.
    stop: Option<UnixStream>,
    thread: Option<NativeThread>,
}

/// A socket by descriptor number and identity (device and inode), so that a descriptor is closed only
/// while it still is that socket.
#[derive(Clone, Copy, Debug)]
struct SocketId {
    fd: RawFd,
    device: u64,
    inode: u64,
}

impl SocketId {
    fn of(fd: RawFd) -> Option<Self> {
        let (device, inode) = identity(fd)?;
        Some(Self { fd, device, inode })
    }

    /// Closes this process's descriptor if it still is the socket recorded. Neither allocates nor locks,
    /// so it is fit for a fork handler.
    fn close_copy(self) {
        if identity(self.fd) == Some((self.device, self.inode)) {
            // SAFETY: `fd` is open and is the recorded socket (checked just above); closing this process's
            // descriptor leaves the open file description, and every other process's use of it, alone.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// The device and inode of descriptor `fd`, if it is open.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a valid out-pointer; `fstat` fails harmlessly on a descriptor that is not open.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: `fstat` succeeded, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Some((stat.st_dev, stat.st_ino))
}

impl Exporter {
    /// Binds `address` (`IP:port`; empty means [`DEFAULT_ADDRESS`]; port 0 picks a free port, see
    /// [`Exporter::local_addr`]) and serves `monitor` from a new thread.
    ///
    /// The limits in the monitor's `"http"` configuration are read now (`max_connections`) or at each
    /// connection (`read_timeout_ms`, `max_request_bytes`); credentials at each request.
    pub fn start(monitor: impl Into<MonitorHandle>, address: &str) -> Result<Self, Error> {
        let address = parse_address(address)?;
        let listener = TcpListener::bind(address).map_err(|error| Error::BindFailed {
            address: address.to_string(),
            reason: error.to_string(),
        })?;
        let bound = listener.local_addr().map_err(|error| Error::BindFailed {
            address: address.to_string(),
            reason: error.to_string(),
        })?;
        let serve_failed = |error: std::io::Error| Error::ServeFailed(error.to_string());
        listener.set_nonblocking(true).map_err(serve_failed)?;
        let (stop, stop_far_end) = UnixStream::pair().map_err(serve_failed)?;
        stop_far_end.set_nonblocking(true).map_err(serve_failed)?;
        let monitor = monitor.into();
        let ids = [
            SocketId::of(listener.as_raw_fd()),
            SocketId::of(stop_far_end.as_raw_fd()),
        ];
        let [Some(listener_id), Some(stop_id)] = ids else {
            return Err(Error::ServeFailed("cannot identify the exporter's sockets".to_owned()));
        };
        let (handshake, reporter) = Handshake::new();
        let thread = NativeThread::spawn(c"cache-mon-http", move || {
            server::run(listener, stop_far_end, monitor, reporter)
        })
        .map_err(serve_failed)?;
        let exporter = Self {
            address: bound,
            pid: std::process::id(),
            thread_sockets: [listener_id, stop_id],
            stop: Some(stop),
            thread: Some(thread),
        };
        // On failure, dropping `exporter` joins the thread, which has already returned.
        handshake.wait().map_err(Error::ServeFailed)?;
        Ok(exporter)
    }

    /// The address the exporter listens on, with the actual port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving: closes the listener, lets responses in progress finish (for at most two seconds),
    /// closes every connection and joins the exporter's thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Whether this process started the exporter (see the module documentation on `fork()`).
    pub(crate) fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    fn shutdown(&mut self) {
        if !self.is_ours() {
            self.let_go_in_child();
            return;
        }
        if let Some(mut stop) = self.stop.take() {
            use std::io::Write;
            // The event loop stops on a byte or on the end of the stream, so an error here is harmless:
            // dropping `stop` below closes the stream either way.
            let _ = stop.write_all(&[1]);
        }
        if let Some(thread) = self.thread.take() {
            thread.join();
        }
    }
}

impl Exporter {
    /// In a process forked from the one that started the exporter: closes this process's copies of the
    /// exporter's sockets and forgets its thread, which is not in this process. The parent's exporter
    /// serves on: its descriptors stay open, nothing is written to its stop socket and nothing is shut
    /// down. Neither allocates nor locks, so a fork handler may call it.
    fn let_go_in_child(&mut self) {
        for socket in self.thread_sockets {
            socket.close_copy();
        }
        // Closing (not writing to) this process's copy of the near end: the parent still holds its own,
        // so the event loop sees no end of stream.
        drop(self.stop.take());
        // Neither joined nor detached: the handle names a thread of the parent.
        std::mem::forget(self.thread.take());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Parses a listen address: `IP:port` (`[v6]:port` for IPv6); empty means [`DEFAULT_ADDRESS`]. Host
/// names are refused rather than resolved, so starting never waits on DNS; so are spaces around the
/// address, which a configuration typo would otherwise hide.
pub fn parse_address(address: &str) -> Result<SocketAddr, Error> {
    let address = if address.is_empty() { DEFAULT_ADDRESS } else { address };
    address.parse().map_err(|_| Error::InvalidAddress(address.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::monitor::Monitor;

    #[test]
    fn addresses_are_ip_and_port() {
        assert_eq!(parse_address("").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_address("[::1]:80").unwrap().port(), 80);
        for bad in [
            "localhost:9464",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":9464",
            "x",
            " 127.0.0.1:9464",
            "127.0.0.1:9464\n",
            " ",
        ] {
            assert!(matches!(parse_address(bad), Err(Error::InvalidAddress(_))), "{bad}");
        }
    }

    #[test]
    fn start_reports_bind_failures_and_stop_joins() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let monitor = Arc::new(Monitor::new());
        let busy = Exporter::start(Arc::clone(&monitor), &format!("127.0.0.1:{port}"));
        assert!(matches!(busy, Err(Error::BindFailed { .. })), "{busy:?}");

        let exporter = Exporter::start(monitor, "127.0.0.1:0").unwrap();
        let address = exporter.local_addr();
        assert_ne!(address.port(), 0);
        exporter.stop();
        // The listener is closed once `stop` returns, so the port can be bound again.
        drop(TcpListener::bind(address).unwrap());
    }
}
