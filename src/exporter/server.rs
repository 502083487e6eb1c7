//! The exporter's event loop: one thread running a current-thread tokio runtime that accepts
//! connections and serves each with hyper's HTTP/1 server.
//!
//! Limits (from the `"http"` configuration section):
//! - **Request size**: a request head larger than `max_request_bytes` gets a 431 and the connection
//!   closes; bodies are never read (a request with one is answered and the connection closed).
//! - **Time**: a client must send each request's headers within `read_timeout`, and an idle keep-alive
//!   connection is closed after the same time (hyper's header read timeout covers both).
//! - **Connections**: at most `max_connections` at once. At the cap, a new connection replaces the one
//!   that has been quiet the longest (an idle keep-alive, or a client dribbling its headers), so a flood
//!   of idle or slow connections cannot lock a scraper out: a scraper sends its request at once and is the
//!   most recently active connection while it is served.
//! - **Keep-alive**: after [`MAX_REQUESTS_PER_CONNECTION`](super::routes::MAX_REQUESTS_PER_CONNECTION)
//!   requests the response carries `Connection: close`.
//!
//! - **Slow pages** (the flamegraphs) are rendered on a render thread of the exporter's own, one at a
//!   time, and shared by every request for two seconds (`renderer.rs`); a request for one waits
//!   without blocking the event loop, so a scrape of `/metrics` is served whatever else is asked.
//!
//! Memory is therefore bounded by `max_connections` times (the read buffer plus one response), the
//! responses of slow pages being one shared render per page.
//!
//! Stopping: the starting thread writes to (or closes) its end of a socket pair; the loop stops
//! accepting, closes every connection that is not sending a response, lets the others finish theirs for
//! at most [`STOP_GRACE`], drops what is left and returns; the thread stops and joins the render thread
//! (after the render in progress, if any), drops the runtime and exits.
//! Nothing in the starting thread touches tokio (see `crate::os_thread` for why that matters).

use std::cell::Cell;
use std::convert::Infallible;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::handshake::Reporter;
use super::renderer::{FRESH_FOR, Renderer};
use super::routes::{self, Answer, Reply};
use crate::monitor::MonitorHandle;

/// How long in-flight responses may take to finish once stopping starts.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (such as running out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// hyper's smallest read buffer; `max_request_bytes` below it is enforced as a header size limit.
const MIN_READ_BUFFER: usize = 8192;
/// Headers accepted in one request.
const MAX_HEADERS: usize = 64;

/// Runs the exporter on the calling thread until `stop` becomes readable; reports start-up through
/// `reporter`. Everything tokio and hyper create lives and dies on this thread.
pub(crate) fn run(
    listener: std::net::TcpListener,
    stop: StdUnixStream,
    monitor: MonitorHandle,
    mut reporter: Reporter,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            reporter.report(Err(format!("cannot build the event loop: {error}")));
            return;
        }
    };
    let renderer = Renderer::new(monitor.clone(), &routes::slow_pages(), FRESH_FOR);
    // Stops and joins the render thread also if serving panics.
    let renderer = StopOnDrop(renderer);
    runtime.block_on(serve(listener, stop, monitor, &renderer.0, reporter));
    drop(renderer);
    // Dropping the runtime here, on this thread, closes every socket before the thread exits.
    drop(runtime);
}

/// Stops the [`Renderer`] (joining its thread) when dropped.
struct StopOnDrop(Arc<Renderer>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    stop: StdUnixStream,
    monitor: MonitorHandle,
    renderer: &Arc<Renderer>,
    mut reporter: Reporter,
) {
    let (listener, stop) = match (TcpListener::from_std(listener), UnixStream::from_std(stop)) {
        (Ok(listener), Ok(stop)) => (listener, stop),
        (Err(error), _) | (_, Err(error)) => {
            reporter.report(Err(format!("cannot register the sockets: {error}")));
            return;
        }
    };
    reporter.report(Ok(()));
    let table = Arc::new(Connections::new(monitor.http_config().max_connections));
    let (shutdown, shutdown_requested) = watch::channel(false);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = stop_requested(&stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let admitted = table.admit();
                    let renderer = Arc::clone(renderer);
                    tasks.spawn(connection(stream, monitor.clone(), renderer, admitted, shutdown_requested.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let _ = shutdown.send(true);
    let finish = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(STOP_GRACE, finish).await;
    tasks.shutdown().await;
}

/// Resolves once the starting thread writes to or closes its end of the stop socket.
async fn stop_requested(stop: &UnixStream) {
    let mut byte = [0u8; 1];
    loop {
        if stop.readable().await.is_err() {
            return;
        }
        match stop.try_read(&mut byte) {
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            _ => return, // a byte, end of stream, or a broken socket: stop either way
        }
    }
}

/// Serves one connection until it ends, is evicted, or the exporter stops.
async fn connection(
    stream: TcpStream,
    monitor: MonitorHandle,
    renderer: Arc<Renderer>,
    admitted: Admitted,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    serve_connection(stream, monitor, renderer, admitted, shutdown).await;
}

/// Serves HTTP/1 requests read from `stream` exactly as the exporter serves a TCP connection (the same
/// limits, authentication and routes) until the client closes, goes quiet for `read_timeout_ms`, or stops
/// being served for breaking a limit. Runs on the caller's tokio runtime, which needs its time driver
/// (hyper's read timeout). For the fuzz targets in `fuzz/`, which drive it over an in-memory stream;
/// not a stable API.
#[doc(hidden)]
pub async fn serve_stream(monitor: impl Into<MonitorHandle>, stream: impl AsyncRead + AsyncWrite + Unpin) {
    let monitor = monitor.into();
    let table = Arc::new(Connections::new(1));
    let admitted = table.admit();
    // Kept until the connection ends: dropping the sender would read as a stop request.
    let (_stop, shutdown) = watch::channel(false);
    // Slow pages render on this task (a fuzz target's runtime runs a paused clock; see `Renderer::inline`).
    let renderer = StopOnDrop(Renderer::inline(monitor.clone(), &routes::slow_pages()));
    serve_connection(stream, monitor, Arc::clone(&renderer.0), admitted, shutdown).await;
}

/// [`connection`] over any byte stream.
async fn serve_connection(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    monitor: MonitorHandle,
    renderer: Arc<Renderer>,
    admitted: Admitted,
    mut shutdown: watch::Receiver<bool>,
) {
    let http = monitor.http_config();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.read_timeout)
        .max_buf_size(http.max_request_bytes.max(MIN_READ_BUFFER))
        .max_header_size(http.max_request_bytes)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let activity = Arc::clone(&admitted.0);
    let served = Cell::new(0u64);
    let service = service_fn(move |request: Request<Incoming>| {
        activity.touch();
        let served_before = served.replace(served.get().saturating_add(1));
        // Authentication is checked against the configuration in force at each request.
        let http = monitor.http_config();
        let answer = routes::answer(&monitor, &http, &request);
        let (renderer, activity) = (Arc::clone(&renderer), Arc::clone(&activity));
        async move {
            let reply = match answer {
                Answer::Reply(reply) => reply,
                Answer::Slow { page, content_type } => {
                    Reply::rendered(content_type, renderer.get(page).await.as_deref())
                }
            };
            let response = routes::finish(reply, &request, served_before).map(|body| TrackedBody::new(body, &activity));
            Ok::<_, Infallible>(response)
        }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = admitted.0.evict.notified() => {}
        _ = shutdown.changed() => {
            // Idle, or still reading a request: close now. Sending a response: let it finish.
            if admitted.0.responding.load(Relaxed) {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// A response body that marks its connection as responding until hyper has written (or dropped) it.
struct TrackedBody {
    body: Full<Bytes>,
    activity: Arc<Activity>,
}

impl TrackedBody {
    fn new(body: Full<Bytes>, activity: &Arc<Activity>) -> Self {
        activity.responding.store(true, Relaxed);
        Self {
            body,
            activity: Arc::clone(activity),
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.activity.responding.store(false, Relaxed);
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The live connections, for the cap.
struct Connections {
    max: usize,
    epoch: Instant,
    live: Mutex<Vec<Arc<Activity>>>,
}

/// One connection's last activity, and the signal that evicts it.
struct Activity {
    /// Milliseconds since [`Connections::epoch`] of its accept or latest request.
    last_active_ms: AtomicU64,
    epoch: Instant,
    evict: Notify,
    /// Whether a response is being written (see [`TrackedBody`]).
    responding: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        self.last_active_ms.store(millis_since(self.epoch), Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection's place in [`Connections`], given up when dropped.
struct Admitted(Arc<Activity>, Arc<Connections>);

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            epoch: Instant::now(),
            live: Mutex::new(Vec::new()),
        }
    }

    /// Registers a new connection, evicting the least recently active one when at the cap.
    fn admit(self: &Arc<Self>) -> Admitted {
        let activity = Arc::new(Activity {
            last_active_ms: AtomicU64::new(millis_since(self.epoch)),
            epoch: self.epoch,
            evict: Notify::new(),
            responding: AtomicBool::new(false),
        });
        let mut live = self.live.lock();
        while live.len() >= self.max {
            let quietest = live
                .iter()
                .enumerate()
                .min_by_key(|(_, a)| a.last_active_ms.load(Relaxed))
                .map(|(i, _)| i);
            let Some(index) = quietest else { break };
            // `notify_one` stores a permit, so the eviction lands even before the task first waits.
            live.swap_remove(index).evict.notify_one();
        }
        live.push(Arc::clone(&activity));
        Admitted(activity, Arc::clone(self))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.lock().len()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut live = self.1.live.lock();
        if let Some(index) = live.iter().position(|a| Arc::ptr_eq(a, &self.0)) {
            live.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_quietest_connection_is_evicted() {
        let table = Arc::new(Connections::new(2));
        let first = table.admit();
        let second = table.admit();
        // Make `second` the quietest and `first` recently active, whatever the clock says.
        first.0.last_active_ms.store(10, Relaxed);
        second.0.last_active_ms.store(5, Relaxed);
        let third = table.admit();
        assert_eq!(table.len(), 2);
        assert!(tokio_test_notified(&second.0.evict), "the quietest was asked to go");
        assert!(!tokio_test_notified(&first.0.evict));
        drop(second); // its task ends: dropping an already evicted entry changes nothing
        assert_eq!(table.len(), 2);
        drop(first);
        drop(third);
        assert_eq!(table.len(), 0);
    }

    /// Whether `notify` holds a permit, checked by polling `notified()` once.
    fn tokio_test_notified(notify: &Notify) -> bool {
        let notified = std::pin::pin!(notify.notified());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        notified.poll(&mut context).is_ready()
    }
}
