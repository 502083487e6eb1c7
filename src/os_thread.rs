//! Threads of the library's own, started with `pthread_create` and joined: the long-lived exporter thread
//! ([`NativeThread`]) and short-lived work run to completion on a thread of its own ([`run`]).
//!
//! # Why not `std::thread`
//!
//! A thread-local value with a destructor, registered on a *host* thread, keeps `dlclose` from unloading
//! the library for as long as that thread lives: glibc then silently does nothing (see
//! `shared/PITFALLS.md` and `recording::shard`). `std::thread::spawn` reads such a thread-local (std's
//! spawn-hook list) on the *spawning* thread, and some work the library does keeps one too (inferno's
//! SVG rendering, tokio and hyper in the exporter). So the library never calls `std::thread::spawn` from a
//! host thread, and runs that work on a thread started here instead:
//!
//! - starting it touches no thread-local of the caller (`pthread_create` only);
//! - whatever the work leaves in thread-local storage belongs to the new thread, and its destructors have
//!   run by the time the thread is joined;
//! - every thread started here is joined before the library can be unloaded: [`run`] joins before it
//!   returns, and a [`NativeThread`] is joined by its owner ([`NativeThread::join`]; the exporter's stop,
//!   which `cache_monitor_shutdown` calls).
//!
//! A panic in the work never unwinds out of the thread's `extern "C"` entry point (that would abort the
//! host): it is caught and reported.

use std::ffi::{CStr, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

/// Why work run on a thread of its own did not produce a value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The thread could not be started or joined (its OS error).
    Thread(String),
    /// The work panicked.
    Panicked,
}

/// The entry point `pthread_create` calls with the argument given to [`start`].
type Entry = extern "C" fn(*mut c_void) -> *mut c_void;

/// Starts a thread running `entry(arg)`, named `name` if given (at most 15 bytes, as Linux allows).
///
/// # Safety
/// `entry` must be safe to call with `arg` on another thread, for as long as the thread runs.
unsafe fn start(name: Option<&CStr>, entry: Entry, arg: *mut c_void) -> io::Result<libc::pthread_t> {
    let mut handle = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `handle` is a valid out-pointer, NULL attributes mean the defaults, and `entry` may be
    // called with `arg` on another thread by this function's contract.
    let created = unsafe { libc::pthread_create(handle.as_mut_ptr(), ptr::null(), entry, arg) };
    if created != 0 {
        return Err(io::Error::from_raw_os_error(created));
    }
    // SAFETY: `pthread_create` succeeded, so it initialised `handle`.
    let handle = unsafe { handle.assume_init() };
    if let Some(name) = name {
        // SAFETY: `handle` is a live thread (not yet joined or detached) and `name` is NUL-terminated; a
        // name that is too long only makes the call fail, which is harmless.
        let _ = unsafe { libc::pthread_setname_np(handle, name.as_ptr()) };
    }
    Ok(handle)
}

/// The work a [`NativeThread`] runs.
type Body = Box<dyn FnOnce() + Send + 'static>;

/// A joinable OS thread. Dropping it without [`NativeThread::join`] detaches it.
pub(crate) struct NativeThread {
    handle: libc::pthread_t,
    joined: bool,
}

// Only the exporter keeps a thread of its own running; built without it, nothing starts one.
#[cfg_attr(not(feature = "exporter"), allow(dead_code))]
impl NativeThread {
    /// Starts `body` on a new thread named `name`. A panic in `body` ends the thread and is not
    /// propagated.
    pub(crate) fn spawn(name: &CStr, body: impl FnOnce() + Send + 'static) -> io::Result<Self> {
        let body: Body = Box::new(body);
        let arg = Box::into_raw(Box::new(body));
        // SAFETY: `run_body` takes ownership of `arg`, a leaked `Box<Body>` whose `Body` is `Send` and
        // `'static`, and nothing else uses it once the thread starts.
        match unsafe { start(Some(name), run_body, arg.cast()) } {
            Ok(handle) => Ok(Self { handle, joined: false }),
            Err(error) => {
                // SAFETY: the thread was not created, so ownership of `arg` never left this function.
                drop(unsafe { Box::from_raw(arg) });
                Err(error)
            }
        }
    }

    /// Waits for the thread to finish; its thread-local destructors have run when this returns.
    pub(crate) fn join(mut self) {
        self.joined = true;
        // SAFETY: `handle` is a thread of this process that was neither joined nor detached (`joined`
        // guards both), and a NULL result pointer is allowed.
        let _ = unsafe { libc::pthread_join(self.handle, ptr::null_mut()) };
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

extern "C" fn run_body(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Box<Body>` leaked by `NativeThread::spawn`, handed to exactly this thread.
    let body = unsafe { Box::from_raw(arg.cast::<Body>()) };
    // A panic must not unwind out of an `extern "C"` function: it would abort the host.
    let _ = catch_unwind(AssertUnwindSafe(body));
    ptr::null_mut()
}

/// The work [`run`] was given and, once its thread has run, the outcome.
struct Job<F, T> {
    work: Option<F>,
    outcome: Option<std::thread::Result<T>>,
}

extern "C" fn run_job<F: FnOnce() -> T, T>(job: *mut c_void) -> *mut c_void {
    // SAFETY: `job` is the `Box<Job<F, T>>` that `run` leaked for this thread and reclaims only after
    // `pthread_join` returned; until then nothing else touches it.
    let job = unsafe { &mut *job.cast::<Job<F, T>>() };
    if let Some(work) = job.work.take() {
        job.outcome = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    ptr::null_mut()
}

/// Runs `work` on a new thread and waits for it to end, destructors of its thread-locals included. The
/// work may borrow from the caller: the thread is joined before this returns.
///
/// If the thread cannot be joined, the process aborts (see [`join_failed`]): returning could free what
/// the thread still uses.
pub(crate) fn run<F, T>(work: F) -> Result<T, Failure>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_joining(work, join)
}

/// `pthread_join(thread)`, discarding the thread's result.
///
/// # Safety
/// `thread` must be a joinable thread of this process that nothing else joins or detaches.
unsafe fn join(thread: libc::pthread_t) -> libc::c_int {
    // SAFETY: `thread` is joinable and joined only here, by this function's contract; a NULL result
    // pointer is allowed.
    unsafe { libc::pthread_join(thread, ptr::null_mut()) }
}

/// [`run`], joining the thread with `join` (tests make it fail).
fn run_joining<F, T>(work: F, join: unsafe fn(libc::pthread_t) -> libc::c_int) -> Result<T, Failure>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let job = Box::into_raw(Box::new(Job {
        work: Some(work),
        outcome: None,
    }));
    // SAFETY: `run_job::<F, T>` receives `job`, a live `Job<F, T>` that outlives the thread (it is
    // reclaimed only after a successful join). `F` and `T` are `Send`, and borrows inside `F` outlive the
    // thread because this function joins it first.
    let thread = match unsafe { start(None, run_job::<F, T>, job.cast::<c_void>()) } {
        Ok(thread) => thread,
        Err(error) => {
            // SAFETY: no thread was started, so `job` (from `Box::into_raw` above) is still only ours.
            drop(unsafe { Box::from_raw(job) });
            return Err(os_failure("start", &error));
        }
    };
    // SAFETY: `thread` is joinable (just created, never detached) and is joined once, here.
    let joined = unsafe { join(thread) };
    if joined != 0 {
        join_failed(joined);
    }
    // SAFETY: the thread has ended, so nothing else refers to `job`, which came from `Box::into_raw`.
    let job = unsafe { Box::from_raw(job) };
    match job.outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) | None => Err(Failure::Panicked),
    }
}

/// What [`run`] does when `pthread_join` fails (it returned `code`): abort the process.
///
/// The thread may still be running `work`, which borrows from the caller's stack frame, and it owns the
/// `Job` that holds the result. Returning would end those borrows while the thread may still use them
/// (a use after free in safe code), and waiting is not possible without a join. `pthread_join` of a
/// thread this function has just created, never detached and joins once can only fail if the process
/// is already corrupt (`EDEADLK`, `EINVAL`, `ESRCH`), so aborting with a clear message is the one sound
/// answer. The message is written with `write(2)` on standard error, which neither allocates nor locks.
#[cold]
fn join_failed(code: libc::c_int) -> ! {
    let mut message = *b"cache-monitor: pthread_join of a library thread failed (error   0): aborting, the thread may still use borrowed memory\n";
    // The error number, as up to three digits in place of "  0".
    let at = message.iter().position(|&b| b == b')').unwrap_or(0).saturating_sub(3);
    let mut value = code.unsigned_abs().min(999);
    for digit in message[at..at + 3].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // SAFETY: `message` is a live buffer of `message.len()` bytes; writing to descriptor 2 has no other
    // precondition (a closed descriptor only makes the call fail).
    let _ = unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    std::process::abort()
}

fn os_failure(what: &str, error: &io::Error) -> Failure {
    Failure::Thread(format!("cannot {what} a thread: {error}"))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn spawn_runs_the_body_and_join_waits_for_it() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let thread = NativeThread::spawn(c"test-thread", move || flag.store(true, Ordering::SeqCst)).unwrap();
        thread.join();
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn work_runs_on_another_thread_and_may_borrow() {
        thread_local! {
            static MARK: Cell<u32> = const { Cell::new(0) };
        }
        MARK.set(1);
        let text = String::from("borrowed");
        let (seen, length) = run(|| (MARK.get(), text.len())).unwrap();
        assert_eq!((seen, length), (0, 8), "a fresh thread's thread-local");
    }

    /// Set in the environment of the child process that [`a_failed_join_aborts_the_process`] starts.
    const ABORT_CHILD: &str = "CACHE_MONITOR_TEST_FAILED_JOIN_CHILD";

    /// Joins `thread` for real, then reports `EINVAL` as if the join had failed.
    ///
    /// # Safety
    /// As [`join`].
    unsafe fn failing_join(thread: libc::pthread_t) -> libc::c_int {
        // SAFETY: as this function's contract says.
        unsafe { join(thread) };
        libc::EINVAL
    }

    /// Run only as the child of [`a_failed_join_aborts_the_process`] (which sets [`ABORT_CHILD`]): a
    /// failed join must abort, never return.
    #[test]
    #[ignore = "run by a_failed_join_aborts_the_process in a child process"]
    fn failed_join_child() {
        if std::env::var_os(ABORT_CHILD).is_none() {
            return;
        }
        let borrowed = String::from("still borrowed");
        let outcome = run_joining(|| borrowed.len(), failing_join);
        // Reaching this line is the bug: the borrow would have ended under a running thread.
        println!("returned after a failed join: {outcome:?}");
        std::process::exit(0);
    }

    #[test]
    fn a_failed_join_aborts_the_process() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "os_thread::tests::failed_join_child",
                "--ignored",
                "--nocapture",
            ])
            .env(ABORT_CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{output:?}");
        assert!(
            stderr.contains(
                "cache-monitor: pthread_join of a library thread failed (error  22): aborting, the thread may \
                 still use borrowed memory\n"
            ),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("returned after a failed join"));
    }

    #[test]
    fn a_panic_is_reported_not_propagated() {
        let outcome: Result<(), Failure> = run(|| panic!("in the work"));
        assert_eq!(outcome, Err(Failure::Panicked));
    }
}
