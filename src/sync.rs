//! Locks for the cold paths (configuration, renders, imports), on `std::sync`.
//!
//! Why not `parking_lot`: a contended `parking_lot` lock parks the thread through a `thread_local!` with a
//! destructor, registered with `__cxa_thread_atexit_impl`, and glibc then refuses to really unload the
//! library while that thread lives (see `shared/PITFALLS.md`): a host could never hot-swap us out. The
//! `std` locks are futex-based and keep no thread-local state. Poisoning is ignored: every critical
//! section here leaves its data consistent (a plain assignment or clone), so a panic elsewhere must not
//! make the monitor unusable.

use std::sync::{self, MutexGuard, PoisonError, RwLockReadGuard, RwLockWriteGuard};

/// A mutex whose `lock` cannot fail.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if it is free now, for tests that check who holds it.
    #[cfg(test)]
    pub(crate) fn try_lock_for_test(&self) -> Option<MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}

/// A reader-writer lock whose `read` and `write` cannot fail.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The write lock if it is free now, for tests that check who holds it.
    #[cfg(test)]
    pub(crate) fn try_write_for_test(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.0.try_write().ok()
    }
}
