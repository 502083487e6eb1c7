//! The `abi_stable` root module: how a Rust host loads the cdylib at run time with every type layout
//! checked, so that a host built against an incompatible interface gets an error instead of undefined
//! behaviour.
//!
//! ```no_run
//! use abi_stable::library::RootModule;
//! use cache_monitor::module::CacheMonitorModuleRef;
//!
//! let module = CacheMonitorModuleRef::load_from_file("target/release/libcache_monitor.so".as_ref())?;
//! (module.record())(0, 0, 1_200, b"user:42".as_slice().into());
//! println!("{}", (module.render_prometheus())());
//! # Ok::<(), abi_stable::library::LibraryError>(())
//! ```
//!
//! Loading through `abi_stable` never unloads the library (that is how `abi_stable` works): to hot-swap
//! versions, load copies with `dlopen`/`libloading` and use the C ABI's state export and import.

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RSlice, RStr, RString};
use abi_stable::{StableAbi, export_root_module, package_version_strings};

use crate::ffi::{self, boundary::guard};
use crate::monitor::Monitor;

/// The functions of the library, as a layout-checked `abi_stable` prefix type. Every function returns
/// the C ABI's status codes (0 on success); renders return the text (empty if rendering failed).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = CacheMonitorModuleRef)))]
#[sabi(missing_field(panic))]
pub struct CacheMonitorModule {
    /// `(major << 16) | minor` of the C ABI.
    pub abi_version: extern "C" fn() -> u32,
    /// Applies a JSON configuration object.
    pub configure: extern "C" fn(json: RStr<'_>) -> i32,
    /// Records one operation: code, result code, duration in nanoseconds, key (may be empty).
    pub record: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
    /// Counts an operation in flight.
    pub begin: extern "C" fn(operation: u32) -> i32,
    /// Ends an operation in flight and records it.
    pub end: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
    /// Sets a host gauge.
    pub set_gauge: extern "C" fn(gauge: u32, value: u64) -> i32,
    /// Forgets everything recorded.
    pub reset: extern "C" fn() -> i32,
    /// Prometheus text exposition.
    pub render_prometheus: extern "C" fn() -> RString,
    /// OpenMetrics exposition.
    pub render_openmetrics: extern "C" fn() -> RString,
    /// The hit-rate report as JSON.
    pub render_hit_rate_json: extern "C" fn() -> RString,
    /// The stats report as JSON.
    pub render_stats_json: extern "C" fn() -> RString,
    /// Folded stacks.
    pub render_flamegraph_folded: extern "C" fn() -> RString,
    /// The state snapshot.
    pub export_state: extern "C" fn() -> RString,
    /// Imports a state snapshot.
    pub import_state: extern "C" fn(snapshot: RSlice<'_, u8>) -> i32,
    /// Stops what the library runs on its own.
    #[sabi(last_prefix_field)]
    pub shutdown: extern "C" fn() -> i32,
}

impl RootModule for CacheMonitorModuleRef {
    abi_stable::declare_root_module_statics! {CacheMonitorModuleRef}
    const BASE_NAME: &'static str = "cache_monitor";
    const NAME: &'static str = "cache_monitor";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

pub use export::root_module;

/// The export itself, in a module of its own: `export_root_module` also generates the `LibHeader` static
/// that `abi_stable` loaders look up, which carries no documentation.
#[allow(missing_docs)]
mod export {
    use super::*;

    /// The root module this library exports.
    #[export_root_module]
    pub fn root_module() -> CacheMonitorModuleRef {
        CacheMonitorModule {
            abi_version: ffi::cache_monitor_abi_version,
            configure,
            record,
            begin: ffi::cache_monitor_begin,
            end,
            set_gauge: ffi::cache_monitor_set_gauge,
            reset: ffi::cache_monitor_reset,
            render_prometheus,
            render_openmetrics,
            render_hit_rate_json,
            render_stats_json,
            render_flamegraph_folded,
            export_state,
            import_state,
            shutdown: ffi::cache_monitor_shutdown,
        }
        .leak_into_prefix()
    }
}

/// Runs `body` at the C ABI's boundary: panics caught, errors turned into its status codes (and its last
/// error message).
fn status(body: impl FnOnce() -> Result<(), crate::error::Error>) -> i32 {
    guard(|| Ok(body()?))
}

/// Runs a render with panics caught (an empty text then).
fn text(render: impl FnOnce() -> String) -> RString {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(render)).map_or_else(|_| RString::new(), RString::from)
}

extern "C" fn configure(json: RStr<'_>) -> i32 {
    status(|| Monitor::global().configure(json.as_str()))
}

extern "C" fn record(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32 {
    status(|| Monitor::global().record_codes(operation, result, duration_ns, key.as_slice()))
}

extern "C" fn end(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32 {
    status(|| {
        let monitor = Monitor::global();
        monitor.end(crate::config::operations::Operation::from_code(operation))?;
        monitor.record_codes(operation, result, duration_ns, key.as_slice())
    })
}

extern "C" fn render_prometheus() -> RString {
    text(|| Monitor::global().render_prometheus())
}

extern "C" fn render_openmetrics() -> RString {
    text(|| Monitor::global().render_openmetrics())
}

extern "C" fn render_hit_rate_json() -> RString {
    text(|| Monitor::global().render_hit_rate_json())
}

extern "C" fn render_stats_json() -> RString {
    text(|| Monitor::global().render_stats_json())
}

extern "C" fn render_flamegraph_folded() -> RString {
    text(|| Monitor::global().render_flamegraph_folded())
}

extern "C" fn export_state() -> RString {
    text(|| Monitor::global().export_state())
}

extern "C" fn import_state(snapshot: RSlice<'_, u8>) -> i32 {
    status(|| Monitor::global().import_state(snapshot.as_slice()))
}
