//! Pages too slow for the event loop (the flamegraphs: symbolising every sampled stack reads debug
//! information, tenths of a second) are rendered on one thread of their own and shared.
//!
//! - **Off the event loop.** A request for a slow page waits asynchronously; the event loop goes on
//!   serving `/metrics` and every other request meanwhile.
//! - **One render at a time.** A single render thread ([`NativeThread`], started at the first slow
//!   request, joined by [`Renderer::stop`] when the exporter stops) renders one page at a time.
//! - **Shared.** A render is kept for [`FRESH_FOR`] and every request for that page in that time gets it;
//!   requests that arrive while it renders wait for that render instead of queueing their own. So N
//!   clients cost one render per page per [`FRESH_FOR`] however large N is.
//! - **Bounded.** At most one render per page is pending and one kept (with its gzip form); bodies are
//!   reference counted ([`Bytes`]), never copied per client.
//!
//! A kept render is given only while what it depends on is unchanged: the configuration it was drawn
//! with (the weight and the operation names) and the samples, which only grow until a reset (fewer samples
//! than at the render means a reset came between, and the render is dropped). New samples and imports
//! within [`FRESH_FOR`] show in the next render.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::negotiate;
use crate::config::Config;
use crate::config::profiler::Weight;
use crate::monitor::{Monitor, MonitorHandle};
use crate::os_thread::NativeThread;
use crate::sync::Mutex;

/// How long a render is given to later requests.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(2);

/// A render function of a slow page.
pub(crate) type RenderFn = fn(&Monitor) -> String;

/// One render of a slow page, shared by every request that gets it.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The body.
    pub(crate) body: Bytes,
    /// The body gzip-compressed, if compression worked.
    pub(crate) gzip: Option<Bytes>,
    /// What the render depends on, as it was when the render started.
    basis: Basis,
    /// When the render started.
    at: Instant,
}

#[cfg(test)]
impl Rendered {
    /// A render made of `body` and `gzip`, for tests of what is sent.
    pub(crate) fn for_test(body: Bytes, gzip: Option<Bytes>) -> Self {
        Self {
            body,
            gzip,
            basis: Basis {
                weight: Weight::Samples,
                operations: Vec::new(),
                samples: 0,
            },
            at: Instant::now(),
        }
    }
}

/// What a slow page depends on besides the samples' growth: the configuration it is drawn with, and the
/// samples taken when it was rendered.
#[derive(Clone, Debug, PartialEq)]
struct Basis {
    weight: Weight,
    operations: Vec<String>,
    samples: u64,
}

impl Basis {
    fn of(config: &Config, samples: u64) -> Self {
        Self {
            weight: config.profiler.weight,
            operations: config.operations.clone(),
            samples,
        }
    }

    /// Whether a render made on `self` may be given to a request whose basis is `now`: drawn the same
    /// way, and no reset since (samples only grow between resets).
    fn still_serves(&self, now: &Self) -> bool {
        self.weight == now.weight && self.operations == now.operations && self.samples <= now.samples
    }
}

/// One slow page's state.
struct Page {
    render: RenderFn,
    /// The latest render, given while fresh.
    kept: Option<Arc<Rendered>>,
    /// A render of this page is queued or running.
    pending: bool,
    /// Publishes each finished render to the requests waiting for it.
    done: watch::Sender<Option<Arc<Rendered>>>,
}

/// What the render thread and the requests share.
struct Shared {
    pages: Vec<Page>,
    /// Pages to render, each at most once.
    queue: VecDeque<usize>,
    stopping: bool,
    thread: Option<NativeThread>,
}

/// The render thread of one exporter and its kept renders. See the module documentation.
pub(crate) struct Renderer {
    monitor: MonitorHandle,
    /// How long a render is given to later requests: [`FRESH_FOR`] (tests choose).
    fresh_for: Duration,
    /// Render on the requesting task instead of the render thread (see [`Renderer::inline`]).
    inline: bool,
    shared: Mutex<Shared>,
    work: Condvar,
}

impl Renderer {
    /// A renderer for `pages` (their render functions; a request names a page by its index) of
    /// `monitor`, keeping renders for `fresh_for` ([`FRESH_FOR`]). No thread runs until the first request.
    pub(crate) fn new(monitor: MonitorHandle, pages: &[RenderFn], fresh_for: Duration) -> Arc<Self> {
        Arc::new(Self::with(monitor, pages, fresh_for, false))
    }

    /// A renderer that renders each request on the requesting task, blocking it, and keeps nothing: for
    /// `serve_stream`, whose callers (the fuzz targets) drive one connection on a runtime whose clock is
    /// paused, where waiting for another thread would let that clock run ahead to every deadline.
    pub(crate) fn inline(monitor: MonitorHandle, pages: &[RenderFn]) -> Arc<Self> {
        Arc::new(Self::with(monitor, pages, Duration::ZERO, true))
    }

    fn with(monitor: MonitorHandle, pages: &[RenderFn], fresh_for: Duration, inline: bool) -> Self {
        let pages = pages
            .iter()
            .map(|&render| Page {
                render,
                kept: None,
                pending: false,
                done: watch::Sender::new(None),
            })
            .collect();
        Self {
            monitor,
            fresh_for,
            inline,
            shared: Mutex::new(Shared {
                pages,
                queue: VecDeque::new(),
                stopping: false,
                thread: None,
            }),
            work: Condvar::new(),
        }
    }

    /// Page `page`: the kept render if it still serves, else the render in progress or a new one, waited
    /// for without blocking the event loop. `None` once the renderer stops, if its thread cannot start,
    /// or if the render panicked.
    pub(crate) async fn get(self: &Arc<Self>, page: usize) -> Option<Arc<Rendered>> {
        if self.inline {
            let render = self.shared.lock().pages.get(page)?.render;
            return self.render(render);
        }
        let now = self.basis();
        let mut done = {
            let mut shared = self.shared.lock();
            if shared.stopping {
                return None;
            }
            let entry = shared.pages.get_mut(page)?;
            if let Some(kept) = &entry.kept
                && kept.at.elapsed() < self.fresh_for
                && kept.basis.still_serves(&now)
            {
                return Some(Arc::clone(kept));
            }
            let done = entry.done.subscribe();
            if !entry.pending {
                entry.pending = true;
                shared.queue.push_back(page);
                if shared.thread.is_none() {
                    let renderer = Arc::clone(self);
                    match NativeThread::spawn(c"cache-mon-render", move || renderer.work()) {
                        Ok(thread) => shared.thread = Some(thread),
                        Err(_) => {
                            shared.queue.clear();
                            for page in &mut shared.pages {
                                page.pending = false;
                            }
                            return None;
                        }
                    }
                }
                self.work.notify_one();
            }
            done
        };
        // The next value published is the render this request waits for: it was queued (or running) when
        // this request subscribed, and renders of one page are published in order.
        done.changed().await.ok()?;
        done.borrow_and_update().clone()
    }

    /// One render of a page, with its gzip form. `None` if it panicked: a panic must not leave the page
    /// pending (its waiters would wait forever) nor end the render thread.
    fn render(&self, render: RenderFn) -> Option<Arc<Rendered>> {
        let at = Instant::now();
        let basis = self.basis();
        catch_unwind(AssertUnwindSafe(|| render(&self.monitor)))
            .ok()
            .map(|body| {
                let body = Bytes::from(body);
                let gzip = negotiate::gzip(&body).ok().map(Bytes::from);
                Arc::new(Rendered { body, gzip, basis, at })
            })
    }

    /// What a render made now would depend on.
    fn basis(&self) -> Basis {
        Basis::of(&self.monitor.config(), self.monitor.profiler_stats().samples)
    }

    /// The render thread: renders queued pages until [`Renderer::stop`].
    fn work(&self) {
        loop {
            let (page, render) = {
                let mut shared = self.shared.lock();
                loop {
                    if shared.stopping {
                        return;
                    }
                    if let Some(page) = shared.queue.pop_front() {
                        break (page, shared.pages[page].render);
                    }
                    shared = self.work.wait(shared).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let rendered = self.render(render);
            let mut shared = self.shared.lock();
            let entry = &mut shared.pages[page];
            entry.pending = false;
            entry.kept.clone_from(&rendered);
            entry.done.send_replace(rendered);
        }
    }

    /// Stops the render thread (after the render in progress, if any) and joins it; later requests get
    /// `None`. Idempotent.
    pub(crate) fn stop(&self) {
        let thread = {
            let mut shared = self.shared.lock();
            shared.stopping = true;
            shared.queue.clear();
            for page in &mut shared.pages {
                page.kept = None;
            }
            self.work.notify_all();
            shared.thread.take()
        };
        if let Some(thread) = thread {
            thread.join();
        }
    }

    /// Whether the render thread runs.
    #[cfg(test)]
    fn running(&self) -> bool {
        self.shared.lock().thread.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;
    use crate::recording::operation::{Operation, Outcome};

    static RENDERS: AtomicUsize = AtomicUsize::new(0);

    /// A slow page that counts its renders and says how many samples it saw.
    fn counted(monitor: &Monitor) -> String {
        RENDERS.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        format!("samples {}", monitor.profiler_stats().samples)
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn concurrent_requests_share_one_render_and_a_reset_drops_it() {
        let monitor = Arc::new(Monitor::new());
        monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
        monitor.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
        // Kept for an hour: whether a render is still fresh never depends on how fast the test runs.
        let hour = Duration::from_secs(3600);
        let renderer = Renderer::new(MonitorHandle::from(Arc::clone(&monitor)), &[counted, panics], hour);
        assert!(!renderer.running(), "no thread before the first request");

        let before = RENDERS.load(SeqCst);
        let bodies = block_on(async {
            let mut requests = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let renderer = Arc::clone(&renderer);
                requests.spawn(async move { renderer.get(0).await.expect("rendered").body.clone() });
            }
            requests.join_all().await
        });
        assert!(renderer.running());
        assert_eq!(RENDERS.load(SeqCst) - before, 1, "16 concurrent requests, one render");
        assert!(bodies.iter().all(|body| body == "samples 1"), "{bodies:?}");

        // New samples: the kept render still serves.
        monitor.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
        let kept = block_on(renderer.get(0)).unwrap();
        assert_eq!(
            (kept.body.as_ref(), RENDERS.load(SeqCst) - before),
            (b"samples 1".as_ref(), 1)
        );
        let gzip = kept.gzip.as_ref().expect("gzip");
        let mut decoded = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gzip.as_ref()), &mut decoded).unwrap();
        assert_eq!(decoded, "samples 1");

        // A reset (fewer samples than the render saw) or another weight makes it stale.
        monitor.reset();
        assert_eq!(block_on(renderer.get(0)).unwrap().body, "samples 0");
        monitor.configure(r#"{"profiler": {"weight": "time"}}"#).unwrap();
        assert_eq!(block_on(renderer.get(0)).unwrap().body, "samples 0");
        assert_eq!(RENDERS.load(SeqCst) - before, 3);

        // A render that panics answers its requests (with nothing) and the thread goes on.
        assert!(block_on(renderer.get(1)).is_none());
        assert!(block_on(renderer.get(1)).is_none(), "not kept, rendered again");
        assert_eq!(block_on(renderer.get(0)).unwrap().body, "samples 0");

        renderer.stop();
        assert!(!renderer.running(), "stop joined the thread");
        assert!(block_on(renderer.get(0)).is_none(), "nothing after stop");
        assert!(block_on(renderer.get(7)).is_none(), "no such page");
    }

    #[test]
    fn renders_older_than_the_freshness_time_are_made_again() {
        let monitor = Arc::new(Monitor::new());
        let renderer = Renderer::new(MonitorHandle::from(monitor), &[counted_apart], Duration::ZERO);
        block_on(renderer.get(0)).unwrap();
        block_on(renderer.get(0)).unwrap();
        assert_eq!(RENDERS_APART.load(SeqCst), 2, "every request renders");
        renderer.stop();
    }

    /// Renders counted apart from [`RENDERS`], whose test runs at the same time.
    static RENDERS_APART: AtomicUsize = AtomicUsize::new(0);

    fn counted_apart(_: &Monitor) -> String {
        RENDERS_APART.fetch_add(1, SeqCst);
        String::new()
    }

    fn panics(_: &Monitor) -> String {
        panic!("intentional panic: a render that fails");
    }
}
