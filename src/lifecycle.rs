//! What the library runs on its own, and what it gives back before it is unloaded.

use crate::monitor::Monitor;

/// Stops and joins every thread the library started (the HTTP exporter's; renders join theirs before
/// returning). Idempotent.
pub(crate) fn shutdown() {
    #[cfg(feature = "exporter")]
    crate::exporter::global::serve_stop();
}

/// Runs when the library is unloaded (`dlclose`) or the process exits: frees the heap the process-wide
/// monitor holds (imported state, the reset baseline), which would otherwise outlive the unmapped
/// library. Its large parts are statics and leave with the mapping (see `backing`).
extern "C" fn release_on_unload() {
    // Nothing may unwind out of a loader callback.
    let _ = std::panic::catch_unwind(|| {
        if let Some(monitor) = Monitor::global_if_used() {
            monitor.release_heap();
        }
    });
}

/// Registers [`release_on_unload`] as an ELF destructor of this object.
#[used]
#[unsafe(link_section = ".fini_array")]
static RELEASE_ON_UNLOAD: extern "C" fn() = release_on_unload;
