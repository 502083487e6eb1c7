//! Zeroed memory for the region's large parts: everything there is atomics, valid when all-zero, so a
//! region is allocated zeroed (untouched pages stay unmapped) instead of built on the stack.

/// A zeroed `T` on the heap, allocated zeroed, never on the stack.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
pub(crate) unsafe fn zeroed_box<T>() -> Box<T> {
    // SAFETY: the caller promises that all-zero bytes are a valid `T`.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// A zeroed `T` for a `static`.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
pub(crate) const unsafe fn zeroed<T>() -> T {
    // SAFETY: the caller promises that all-zero bytes are a valid `T`.
    unsafe { std::mem::MaybeUninit::zeroed().assume_init() }
}
