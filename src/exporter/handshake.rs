//! The handshake that tells the thread starting the exporter whether the exporter's own thread came up
//! (bound, runtime built, serving) or why not.

use std::sync::{Arc, Condvar, PoisonError};

use crate::sync::Mutex;

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
    use super::*;
    use crate::os_thread::NativeThread;

    #[test]
    fn a_panicking_body_reports_through_the_dropped_reporter() {
        let (handshake, mut reporter) = Handshake::new();
        let thread = NativeThread::spawn(c"test-panic", move || {
            let _keep = &mut reporter;
            panic!("intentional panic: this test checks that it is reported");
        })
        .unwrap();
        assert!(handshake.wait().is_err());
        thread.join();

        let (handshake, mut reporter) = Handshake::new();
        reporter.report(Ok(()));
        drop(reporter);
        assert_eq!(handshake.wait(), Ok(()), "the first report wins");
    }
}
