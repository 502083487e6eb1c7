//! Work run on a short-lived thread of the library's own, started with `pthread_create` and joined.
//!
//! A thread-local value with a destructor, registered on a host thread, keeps `dlclose` from unloading
//! the library for as long as that thread lives (see `shard`). inferno keeps such a value, and
//! `std::thread::spawn` registers one on the *spawning* thread (its spawn hooks), so neither may run on
//! a host thread. On a pthread that ends before the call returns, the destructors run with it.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

/// Why the work did not produce a value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The thread could not be started or joined (its OS error).
    Thread(String),
    /// The work panicked.
    Panicked,
}

/// The work and, once the thread has run, its outcome.
struct Job<F, T> {
    work: Option<F>,
    outcome: Option<std::thread::Result<T>>,
}

extern "C" fn start<F: FnOnce() -> T, T>(job: *mut c_void) -> *mut c_void {
    // SAFETY: `job` is the `Box<Job<F, T>>` that `run` leaked for this thread and reclaims only after
    // `pthread_join` returned; until then nothing else touches it.
    let job = unsafe { &mut *job.cast::<Job<F, T>>() };
    if let Some(work) = job.work.take() {
        job.outcome = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    ptr::null_mut()
}

/// Runs `work` on a new thread and waits for it to end, destructors of its thread-locals included.
pub(crate) fn run<F, T>(work: F) -> Result<T, Failure>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let job = Box::into_raw(Box::new(Job {
        work: Some(work),
        outcome: None,
    }));
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `thread` is writable; default attributes (NULL); `start::<F, T>` receives `job`, a live
    // `Job<F, T>` that outlives the thread (it is reclaimed only after a successful join). `F` and `T`
    // are `Send`, and borrows inside `F` outlive the thread because this function joins it first.
    let created =
        unsafe { libc::pthread_create(thread.as_mut_ptr(), ptr::null(), start::<F, T>, job.cast::<c_void>()) };
    if created != 0 {
        // SAFETY: no thread was started, so `job` (from `Box::into_raw` above) is still only ours.
        drop(unsafe { Box::from_raw(job) });
        return Err(os_failure("start", created));
    }
    // SAFETY: `pthread_create` succeeded, so `thread` is initialised and joinable, and is joined once.
    let joined = unsafe { libc::pthread_join(thread.assume_init(), ptr::null_mut()) };
    if joined != 0 {
        // The thread may still use `job`: leave it leaked rather than free it under the thread.
        return Err(os_failure("join", joined));
    }
    // SAFETY: the thread has ended, so nothing else refers to `job`, which came from `Box::into_raw`.
    let job = unsafe { Box::from_raw(job) };
    match job.outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) | None => Err(Failure::Panicked),
    }
}

fn os_failure(what: &str, code: i32) -> Failure {
    Failure::Thread(format!(
        "cannot {what} a thread: {}",
        std::io::Error::from_raw_os_error(code)
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

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

    #[test]
    fn a_panic_is_reported_not_propagated() {
        let outcome: Result<(), Failure> = run(|| panic!("in the work"));
        assert_eq!(outcome, Err(Failure::Panicked));
    }
}
