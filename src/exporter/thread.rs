//! The exporter's thread, started with `pthread_create` instead of `std::thread::spawn`, and the
//! handshake that tells the starting thread whether it came up.
//!
//! Why not `std::thread::spawn`: it reads a thread-local with a destructor (std's spawn-hook list) in the
//! *calling* thread. That registers the destructor with glibc through this library's copy of std, and
//! glibc then refuses to unload the library (`dlclose` silently does nothing) until that host thread exits
//! (see `shared/PITFALLS.md`). A thread started here touches no thread-local of the caller: the runtime,
//! hyper and everything else thread-local live on the new thread, whose destructors have run by the time
//! [`NativeThread::join`] returns. Nothing else the starting thread calls (a std `Mutex`, `Condvar`,
//! `UnixStream`) uses thread-locals.

use std::ffi::{CStr, c_void};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, PoisonError};

use crate::sync::Mutex;

/// The work a thread runs.
type Body = Box<dyn FnOnce() + Send + 'static>;

/// A joinable OS thread. Dropping it without [`NativeThread::join`] detaches it.
pub(crate) struct NativeThread {
    handle: libc::pthread_t,
    joined: bool,
}

impl NativeThread {
    /// Starts `body` on a new thread named `name` (at most 15 bytes, as Linux allows). A panic in
    /// `body` ends the thread and is not propagated.
    pub(crate) fn spawn(name: &CStr, body: Body) -> io::Result<Self> {
        let arg = Box::into_raw(Box::new(body));
        let mut handle: libc::pthread_t = 0;
        // SAFETY: `handle` is a valid out-pointer, NULL attributes mean the defaults, `start` has the
        // signature pthread expects, and `arg` is a leaked `Box<Body>` that `start` takes ownership of.
        let rc = unsafe { libc::pthread_create(&mut handle, std::ptr::null(), start, arg.cast()) };
        if rc != 0 {
            // SAFETY: the thread was not created, so ownership of `arg` never left this function.
            drop(unsafe { Box::from_raw(arg) });
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: `handle` is a live thread (not yet joined or detached) and `name` is NUL-terminated;
        // a name that is too long only makes the call fail, which is harmless.
        let _ = unsafe { libc::pthread_setname_np(handle, name.as_ptr()) };
        Ok(Self { handle, joined: false })
    }

    /// Waits for the thread to finish; its thread-local destructors have run when this returns.
    pub(crate) fn join(mut self) {
        self.joined = true;
        // SAFETY: `handle` is a thread of this process that was neither joined nor detached (`joined`
        // guards both), and a NULL result pointer is allowed.
        let _ = unsafe { libc::pthread_join(self.handle, std::ptr::null_mut()) };
    }
}

impl Drop for NativeThread {
    fn drop(&mut self) {
        if !self.joined {
            // SAFETY: as in `join`: a live thread, neither joined nor detached.
            let _ = unsafe { libc::pthread_detach(self.handle) };
        }
    }
}

extern "C" fn start(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Box<Body>` leaked by `NativeThread::spawn`, handed to exactly this thread.
    let body = unsafe { Box::from_raw(arg.cast::<Body>()) };
    // A panic must not unwind out of an `extern "C"` function: it would abort the host.
    let _ = catch_unwind(AssertUnwindSafe(body));
    std::ptr::null_mut()
}

/// A one-shot report from a starting thread: `Ok` once it serves, or why it could not.
///
/// [`Handshake::reporter`] hands out the sending half; if it is dropped without reporting (the thread
/// panicked), the waiter gets an error instead of waiting forever.
pub(crate) struct Handshake {
    state: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Handshake {
    /// A handshake and the reporter to move into the new thread.
    pub(crate) fn new() -> (Arc<Self>, Reporter) {
        let handshake = Arc::new(Self {
            state: Mutex::new(None),
            done: Condvar::new(),
        });
        let reporter = Reporter(Some(Arc::clone(&handshake)));
        (handshake, reporter)
    }

    /// Blocks until the thread reports.
    pub(crate) fn wait(&self) -> Result<(), String> {
        let mut state = self.state.lock();
        loop {
            if let Some(result) = state.take() {
                return result;
            }
            state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn set(&self, result: Result<(), String>) {
        let mut state = self.state.lock();
        *state = Some(result);
        self.done.notify_all();
    }
}

/// The sending half of a [`Handshake`].
pub(crate) struct Reporter(Option<Arc<Handshake>>);

impl Reporter {
    /// Reports the start-up result; later reports are ignored.
    pub(crate) fn report(&mut self, result: Result<(), String>) {
        if let Some(handshake) = self.0.take() {
            handshake.set(result);
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.report(Err("the exporter thread ended while starting".to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn spawn_runs_the_body_and_join_waits_for_it() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let thread = NativeThread::spawn(c"test-thread", Box::new(move || flag.store(true, Ordering::SeqCst))).unwrap();
        thread.join();
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn a_panicking_body_reports_through_the_dropped_reporter() {
        let (handshake, mut reporter) = Handshake::new();
        let thread = NativeThread::spawn(
            c"test-panic",
            Box::new(move || {
                let _keep = &mut reporter;
                panic!("intentional panic: this test checks that it is reported");
            }),
        )
        .unwrap();
        assert!(handshake.wait().is_err());
        thread.join();

        let (handshake, mut reporter) = Handshake::new();
        reporter.report(Ok(()));
        drop(reporter);
        assert_eq!(handshake.wait(), Ok(()), "the first report wins");
    }
}
