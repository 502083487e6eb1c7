//! `import_state`: arbitrary bytes as a state snapshot, imported by a monitor that has recorded a few
//! operations of its own and requires a bearer token. See `cache_monitor_fuzz::import_and_check` for what
//! is checked. Random bytes rarely parse as a snapshot: the corpus starts from real exports, and
//! `import_state_edits` mutates a valid export structurally.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let importer = cache_monitor_fuzz::importer(true, true);
    cache_monitor_fuzz::import_and_check(&importer, data);
});
