//! A monitor's state as data: the read model and the wire format.
//!
//! - `counts.rs`: `CountsSinceReset`, everything counted since the last reset (totals, window histories,
//!   the latency history, sampled stacks), own or imported. Reads of a monitor produce one (renders take
//!   what the rolling windows need, exports everything), imports are kept as one per source, and they add
//!   up.
//! - `snapshot.rs`: `StateSnapshot`, the versioned JSON a monitor exports and another imports, so a host
//!   can hot-swap library versions without losing a count; converted from and to `CountsSinceReset`.
//!
//! # Swap protocol (the host's side)
//!
//! 1. Load the new library B (a different file from A: `dlopen` of the same file returns A again).
//! 2. `B.import_state(A.export_state())`: B, still empty, adopts A's configuration and counts.
//! 3. Stop routing calls to A: switch the host's function table to B, and wait until no call into A is
//!    running (a read-write lock around calls does both). Keep scrapes on A until step 4 is done.
//! 4. `B.import_state(A.export_state())` again: a second import from the same source *replaces* the first,
//!    so B now holds A's final counts. From here on, scrape B: every counter is at least what A showed.
//! 5. `A.shutdown()`, then `dlclose(A)`.
//!
//! Imported state is kept beside the importing monitor's own counters (never written into its shards),
//! one entry per source instance, at most [`MAX_IMPORT_SOURCES`]. An export contains the monitor's own
//! counts *and* what it imported, so chains of swaps (A to B to C ...) carry everything forward.

pub(crate) mod counts;
pub(crate) mod snapshot;

pub use snapshot::{MAX_IMPORT_SOURCES, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};
