//! [`MonitorHandle`]: a monitor that can be held anywhere, by a cache, a collector or the exporter's
//! thread.

use std::ops::Deref;
use std::sync::Arc;

use super::Monitor;

/// A monitor to hold on to: the process-wide one, one that lives for the whole program, or a shared one.
/// Cheap to clone, `Send` and `Sync`, and a [`Monitor`] through `Deref`.
///
/// Converts from `&'static Monitor` and `Arc<Monitor>`, so APIs that take `impl Into<MonitorHandle>`
/// accept either.
#[derive(Clone)]
pub enum MonitorHandle {
    /// The process-wide monitor behind the C ABI, [`Monitor::global`] (created when first used).
    Global,
    /// A monitor that lives for the whole program, such as a `static` one.
    Static(&'static Monitor),
    /// A reference-counted monitor, shared with whoever else holds it.
    Shared(Arc<Monitor>),
}

impl Deref for MonitorHandle {
    type Target = Monitor;

    #[inline]
    fn deref(&self) -> &Monitor {
        match self {
            Self::Global => Monitor::global(),
            Self::Static(monitor) => monitor,
            Self::Shared(monitor) => monitor,
        }
    }
}

impl From<&'static Monitor> for MonitorHandle {
    fn from(monitor: &'static Monitor) -> Self {
        Self::Static(monitor)
    }
}

impl From<Arc<Monitor>> for MonitorHandle {
    fn from(monitor: Arc<Monitor>) -> Self {
        Self::Shared(monitor)
    }
}

impl std::fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Global => "MonitorHandle::Global",
            Self::Static(_) => "MonitorHandle::Static",
            Self::Shared(_) => "MonitorHandle::Shared",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::operations::Operation;
    use crate::recording::operation::Outcome;

    #[test]
    fn every_kind_of_handle_reaches_its_monitor() {
        let shared = Arc::new(Monitor::new());
        let handle = MonitorHandle::from(Arc::clone(&shared));
        handle.record(Operation::GET, Outcome::Hit, 1, b"").unwrap();
        assert_eq!(shared.totals().series[0][0].count, 1);
        let leaked: &'static Monitor = Box::leak(Box::new(Monitor::new()));
        assert!(std::ptr::eq(&*MonitorHandle::from(leaked), leaked));
        assert!(std::ptr::eq(&*MonitorHandle::Global, Monitor::global()));
    }
}
