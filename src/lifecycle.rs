//! What the library runs on its own, and stopping it all before the library is unloaded.

/// Stops and joins every thread the library started. Idempotent.
pub(crate) fn shutdown() {
    // The library starts no thread of its own yet; the HTTP exporter will register here.
}
