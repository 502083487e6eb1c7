//! Render-time naming of sampled stacks: return addresses to demangled function names (inlined
//! functions included), without the frames of this library's own recording path.

use std::collections::HashMap;
use std::ffi::c_void;

/// The name given to a frame that cannot be symbolised.
pub(crate) const UNKNOWN: &str = "[unknown]";

/// Frames of the recording path itself: this library, and the unwinder it samples with.
const OWN_PREFIXES: [&str; 4] = ["cache_monitor::", "<cache_monitor::", "backtrace::", "<backtrace::"];

/// The C ABI functions that record (exported unmangled, so not under `cache_monitor::`).
const OWN_EXPORTS: [&str; 5] = [
    "cache_monitor_record",
    "cache_monitor_finish",
    "cache_monitor_end",
    "cache_monitor_record_with_frames",
    "cache_monitor_record_batch",
];

/// Standard library frames that sit between the C ABI functions and the monitor (`catch_unwind`).
const GLUE_PREFIXES: [&str; 6] = [
    "std::panicking::",
    "std::panic::catch_unwind",
    "__rust_try",
    "core::ops::function::FnOnce::call_once",
    "<core::panic::unwind_safe::AssertUnwindSafe<",
    "core::panic::unwind_safe::",
];

/// Names return addresses, remembering each address for the life of one render.
///
/// Dropping it also drops the `backtrace` crate's process-wide cache of mapped object files and parsed
/// debug information: kept between renders, those mappings and allocations would outlive the library
/// when a host unloads it (`dlclose`), once per load. The price is that every render maps and parses
/// them again (tens of milliseconds for a large binary).
#[derive(Default)]
pub(crate) struct Symbolizer {
    names: HashMap<usize, Vec<String>>,
}

impl Drop for Symbolizer {
    fn drop(&mut self) {
        backtrace::clear_symbol_cache();
    }
}

impl Symbolizer {
    /// The frames of a stack, outermost first, from its return addresses (innermost first), with the
    /// library's own frames at the leaf end removed.
    pub(crate) fn stack(&mut self, ips: &[usize]) -> Vec<String> {
        for &ip in ips {
            self.names.entry(ip).or_insert_with(|| resolve(ip));
        }
        let leaf_first: Vec<&str> = ips
            .iter()
            .filter_map(|ip| self.names.get(ip))
            .flatten()
            .map(String::as_str)
            .collect();
        let kept = trim_own_frames(&leaf_first);
        kept.iter().rev().map(|name| (*name).to_owned()).collect()
    }
}

/// The names at return address `ip`, innermost (inlined) first; `[unknown]` when there are none.
fn resolve(ip: usize) -> Vec<String> {
    let mut names = Vec::new();
    // `resolve` looks up the call instruction just before `ip` (it subtracts one), as a return
    // address needs.
    backtrace::resolve(ip as *mut c_void, |symbol| {
        if let Some(name) = symbol.name() {
            // `{:#}`: demangled, without the hash suffix of Rust symbols.
            names.push(format!("{name:#}"));
        }
    });
    if names.is_empty() {
        names.push(UNKNOWN.to_owned());
    }
    names
}

/// `frames` (innermost first) without the library's frames at the innermost end: the longest run of
/// own frames, and the standard library glue between them, that starts at the leaf.
pub(crate) fn trim_own_frames<'a, 'b>(frames: &'b [&'a str]) -> &'b [&'a str] {
    let mut cut = 0;
    for (i, name) in frames.iter().enumerate() {
        if is_own(name) {
            cut = i + 1;
        } else if !is_glue(name) {
            break;
        }
    }
    &frames[cut..]
}

fn is_own(name: &str) -> bool {
    OWN_PREFIXES.iter().any(|p| name.starts_with(p)) || OWN_EXPORTS.contains(&name)
}

fn is_glue(name: &str) -> bool {
    GLUE_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_removes_only_the_leaf_run_of_own_frames() {
        let stack = [
            "backtrace::backtrace::trace_unsynchronized",
            "cache_monitor::profiler::Profiler::sample",
            "std::panicking::catch_unwind::do_call",
            "__rust_try",
            "cache_monitor_record",
            "alpha_inner",
            "core::ops::function::FnOnce::call_once",
            "cache_monitor::helper_named_by_host",
            "main",
        ];
        assert_eq!(trim_own_frames(&stack), &stack[5..], "stops at the first host frame");
        let rust_host = [
            "cache_monitor::profiler::Profiler::sample",
            "cache_monitor::monitor::Monitor::record",
            "my_app::lookup",
            "std::panicking::try",
        ];
        assert_eq!(trim_own_frames(&rust_host), &rust_host[2..]);
        let glue_only = ["std::panicking::try", "main"];
        assert_eq!(
            trim_own_frames(&glue_only),
            &glue_only[..],
            "glue is only cut together with own frames beyond it"
        );
    }

    #[inline(never)]
    fn a_function_with_a_recognisable_name() -> usize {
        std::hint::black_box(42)
    }

    #[test]
    fn addresses_resolve_to_demangled_names() {
        let address = a_function_with_a_recognisable_name as fn() -> usize as usize;
        // One past the entry: `resolve` looks up the byte before a return address.
        let names = resolve(address + 1);
        assert!(
            names
                .iter()
                .any(|n| n.ends_with("tests::a_function_with_a_recognisable_name")),
            "{names:?}"
        );
        assert_eq!(resolve(8), [UNKNOWN]);
    }
}
