//! A monitor's locks held around `fork()`, so that a child never inherits one held by a thread it does
//! not have (`lifecycle.rs` registers the `pthread_atfork` handlers that use this for the process-wide
//! monitor).
//!
//! # Lock order
//!
//! [`Monitor::lock_for_fork`] takes every lock of the monitor in the one order any code path nests them:
//! `config` (a writer: no reader is inside), then `resetting`, then `imported`, then the profiler's
//! control side. `configure` and `import` hold `config` while they take `imported` or the profiler's;
//! `reset` holds `resetting` while it takes `imported` (then lets it go) and the profiler's; a read holds
//! `config` while it takes `imported` or the profiler's, one at a time. Nothing takes `config` or
//! `resetting` while holding a later one. A path that nested them in another
//! order could deadlock with a fork: keep this order (and this list) when adding a lock.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, RwLockWriteGuard};

use super::{Imported, Monitor};
use crate::config::Config;
use crate::profiler::ForkGuard as ProfilerForkGuard;
use crate::recording::exemplars::ExemplarTable;

/// A monitor's locks, all held (see the module documentation); dropping it releases them.
pub(crate) struct ForkGuard<'a> {
    /// Not a lock: the slots a writer may hold at the fork (see `release_in_child`).
    exemplars: &'a ExemplarTable,
    // Released in declaration order: the reverse of the order taken.
    profiler: ProfilerForkGuard<'a>,
    _imported: MutexGuard<'a, BTreeMap<u64, Imported>>,
    _resetting: MutexGuard<'a, ()>,
    _config: RwLockWriteGuard<'a, Config>,
}

impl Monitor {
    /// Takes every lock of this monitor, waiting for whoever holds one, in the order of the module
    /// documentation.
    pub(crate) fn lock_for_fork(&self) -> ForkGuard<'_> {
        let config = self.config.write();
        let resetting = self.resetting.lock();
        let imported = self.imported.lock();
        let profiler = self.profiler.lock_for_fork();
        ForkGuard {
            exemplars: &self.exemplars,
            profiler,
            _imported: imported,
            _resetting: resetting,
            _config: config,
        }
    }
}

impl ForkGuard<'_> {
    /// In the child: makes the profiler forget the samples the fork cut off and releases the exemplar
    /// slots held by writers it cut off, then releases every lock.
    pub(crate) fn release_in_child(self) {
        let Self {
            exemplars,
            profiler,
            _imported,
            _resetting,
            _config,
        } = self;
        exemplars.release_held_in_child();
        profiler.in_child();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::operation::{Operation, Outcome};

    #[test]
    fn the_guard_holds_every_lock_until_released() {
        let monitor = Monitor::new();
        monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
        let guard = monitor.lock_for_fork();
        assert!(monitor.config.try_write_for_test().is_none(), "config held");
        assert!(monitor.resetting.try_lock_for_test().is_none());
        assert!(monitor.imported.try_lock_for_test().is_none());
        // Recording takes no lock, and goes on.
        monitor.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
        guard.release_in_child();
        monitor.reset();
        monitor.configure(r#"{"profiler": {"max_stacks": 8}}"#).unwrap();
        assert_eq!(monitor.profiler_stats().max_stacks, 8);
    }
}
