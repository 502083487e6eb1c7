//! Ctrl-C and SIGTERM for the commands that run until stopped: the signals are blocked (in the calling
//! thread, and so in every thread it starts afterwards) and taken synchronously with `sigtimedwait`, so
//! the command stops between two steps, never inside one, and needs no signal handler.

use std::time::{Duration, Instant};

/// SIGINT and SIGTERM, blocked and waited for.
pub(super) struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGINT and SIGTERM. Call it before any thread starts: threads inherit the mask, so the
    /// signals stay pending until [`Signals::wait`] takes them.
    pub(super) fn block() -> Result<Self, super::Failure> {
        // SAFETY: `sigset_t` is a plain C type that `sigemptyset` initialises; `sigaddset` and
        // `pthread_sigmask` only read and write the set we own, with valid signal numbers.
        let (set, status) = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let status = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            (set, status)
        };
        if status != 0 {
            return Err(super::Failure::Runtime(format!(
                "cannot block SIGINT and SIGTERM: {}",
                std::io::Error::from_raw_os_error(status)
            )));
        }
        Ok(Self { set })
    }

    /// Waits up to `timeout` for Ctrl-C or SIGTERM: `true` if one came (the command should stop).
    pub(super) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timespec = libc::timespec {
                tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
            };
            // SAFETY: `self.set` is an initialised signal set, `timespec` a valid timeout, and a null
            // `siginfo_t` pointer is allowed.
            let signal = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &timespec) };
            if signal > 0 {
                return true;
            }
            // EAGAIN: the time is up; EINTR: another signal's handler ran, so wait for the rest.
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) || left.is_zero() {
                return false;
            }
        }
    }
}
