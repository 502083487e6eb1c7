//! [`Backing`]: the memory behind a monitor's large parts, a `static` for the process-wide monitor, the
//! heap otherwise.
//!
//! The large parts (shards, window rings, the pattern table) are all atomics, valid when all-zero. As
//! zero-initialised statics they sit in `.bss`, cost memory only for the pages threads touch, and go away
//! with the library's mapping when a host unloads it: nothing of them is left behind on the heap after a
//! `dlclose`, however many times a host swaps library versions.

use std::ops::Deref;

/// Types for which all-zero bytes are a valid, meaningful value (their "empty" state).
///
/// # Safety
/// Implement only for types made solely of atomics and integers (in arrays or padding wrappers) whose
/// zero value means "empty".
pub(crate) unsafe trait Zeroable: Sized {}

/// The memory backing one large part: borrowed from a `static`, or owned on the heap. Either way the part
/// starts all-zero ([`Zeroable`]) and is read through `Deref`.
pub(crate) enum Backing<T: 'static> {
    /// The process-wide monitor's part.
    Static(&'static T),
    /// Any other monitor's part.
    Heap(Box<T>),
}

impl<T: Zeroable> Backing<T> {
    /// A zeroed part on the heap, allocated zeroed (so untouched pages stay unmapped), never on the stack.
    pub(crate) fn heap() -> Self {
        let zeroed = Box::<T>::new_zeroed();
        // SAFETY: `T: Zeroable` promises that all-zero bytes are a valid `T`.
        Self::Heap(unsafe { zeroed.assume_init() })
    }
}

impl<T> Deref for Backing<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        match self {
            Self::Static(part) => part,
            Self::Heap(part) => part,
        }
    }
}
