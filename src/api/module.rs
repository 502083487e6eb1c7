//! The `abi_stable` root module: how a Rust host loads the cdylib at run time with every type layout
//! checked, so that a host built against an incompatible interface gets an error instead of undefined
//! behaviour.
//!
//! ```no_run
//! use abi_stable::library::RootModule;
//! use abi_stable::std_types::{RResult, RStr};
//! use cache_monitor::module::CacheMonitorModuleRef;
//!
//! let module = CacheMonitorModuleRef::load_from_file("target/release/libcache_monitor.so".as_ref())?;
//! println!("{}", (module.version_string())());
//! (module.record())(0, 0, 1_200, b"user:42".as_slice().into());
//! match (module.render_prometheus())() {
//!     RResult::ROk(text) => println!("{text}"),
//!     RResult::RErr(error) => eprintln!("render failed ({}): {}", error.status, error.message),
//! }
//! assert_eq!((module.configure())(RStr::from_str("{")), -6);
//! eprintln!("{}", (module.last_error())()); // this thread's last failure: invalid JSON ...
//! # Ok::<(), abi_stable::library::LibraryError>(())
//! ```
//!
//! It offers what the C ABI offers, with the same status codes and the same last-error messages (per
//! thread). Loading through `abi_stable` never unloads the library (that is how `abi_stable` works): to
//! hot-swap versions, load copies with `dlopen`/`libloading` and use the C ABI's state export and import.
//!
//! The module is versioned on its own ([`MODULE_VERSION`]): 0.1 was the first release's, whose renders
//! returned an empty text when they failed; 0.2 returns [`TextResult`]s and adds the SVG flamegraph,
//! `last_error`, the exporter, `record_with_frames`, `record_batch`, `finish`, `version_string`,
//! `set_enabled`, `is_enabled` and `record_with_exemplar`. A host
//! built against 0.1 gets `LibraryError::IncompatibleVersionNumber` from this library, not a wrong call.

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use abi_stable::{StableAbi, export_root_module};

use crate::error::Error;
use crate::ffi::boundary::{self, Failure, guard, guarded};
use crate::ffi::{self, CacheMonitorFormat, serving};
use crate::monitor::Monitor;
use crate::recording::exemplars;

/// The interface version of [`CacheMonitorModule`], which `abi_stable` compares at load (for 0.x
/// versions, hosts and libraries must agree on the minor number). Bumped on its own, when the module
/// changes: 0.2 since the renders return [`TextResult`].
pub const MODULE_VERSION: VersionStrings = VersionStrings::new("0.2.0");

/// Why a call of the module failed: the C ABI's status code (`CacheMonitorStatus`, negative) and the
/// message `last_error` would give for it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ModuleError {
    /// The status code, as the C ABI returns it (`-20` for a render that failed, for example).
    pub status: i32,
    /// What went wrong.
    pub message: RString,
}

/// What every render returns: the text (possibly empty: no sampled stacks, say), or why there is none.
pub type TextResult = RResult<RString, ModuleError>;

/// One operation for [`CacheMonitorModule::record_batch`]: the arguments of one `record`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ModuleRecord<'a> {
    /// Operation code (built in or registered).
    pub operation: u32,
    /// Outcome code: hit 0, miss 1, ok 2, error 3.
    pub result: u32,
    /// Duration in nanoseconds.
    pub duration_ns: u64,
    /// The key, empty for none.
    pub key: RSlice<'a, u8>,
}

/// The functions of the library, as a layout-checked `abi_stable` prefix type. Every function that
/// changes something returns the C ABI's status codes (0 on success, negative on failure, with the
/// calling thread's [`last_error`](CacheMonitorModule::last_error)); every render returns a
/// [`TextResult`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = CacheMonitorModuleRef)))]
#[sabi(missing_field(panic))]
pub struct CacheMonitorModule {
    /// `(major << 16) | minor` of the C ABI.
    pub abi_version: extern "C" fn() -> u32,
    /// The crate's version and the C ABI's, such as `cache-monitor 0.1.0 (C ABI 1.6)`.
    pub version_string: extern "C" fn() -> RStr<'static>,
    /// Applies a JSON configuration object.
    pub configure: extern "C" fn(json: RStr<'_>) -> i32,
    /// Records one operation: code, outcome code, duration in nanoseconds, key (may be empty).
    pub record: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
    /// Records like `record` and gives the profiler the host's frames (`;`-separated, outermost first).
    pub record_with_frames: extern "C" fn(
        operation: u32,
        result: u32,
        duration_ns: u64,
        key: RSlice<'_, u8>,
        frames: RSlice<'_, u8>,
    ) -> i32,
    /// Records every record in order, stopping at the first refused one, whose status it returns;
    /// `recorded` receives how many were recorded (as `cache_monitor_record_batch`).
    pub record_batch: extern "C" fn(records: RSlice<'_, ModuleRecord<'_>>, recorded: &mut usize) -> i32,
    /// Counts an operation in flight.
    pub begin: extern "C" fn(operation: u32) -> i32,
    /// Ends an operation in flight **and records it** (as `cache_monitor_finish`).
    pub finish: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
    /// The same function as `finish`, under the name of module 0.1: it ends the operation and records it.
    pub end: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
    /// Sets a host gauge.
    pub set_gauge: extern "C" fn(gauge: u32, value: u64) -> i32,
    /// Forgets everything recorded.
    pub reset: extern "C" fn() -> i32,
    /// Prometheus text exposition.
    pub render_prometheus: extern "C" fn() -> TextResult,
    /// OpenMetrics exposition.
    pub render_openmetrics: extern "C" fn() -> TextResult,
    /// The hit-rate report as JSON.
    pub render_hit_rate_json: extern "C" fn() -> TextResult,
    /// The stats report as JSON.
    pub render_stats_json: extern "C" fn() -> TextResult,
    /// Folded stacks (empty until sampling is configured).
    pub render_flamegraph_folded: extern "C" fn() -> TextResult,
    /// The SVG flamegraph.
    pub render_flamegraph_svg: extern "C" fn() -> TextResult,
    /// The state snapshot.
    pub export_state: extern "C" fn() -> TextResult,
    /// Imports a state snapshot.
    pub import_state: extern "C" fn(snapshot: RSlice<'_, u8>) -> i32,
    /// The message of the calling thread's most recent failed call (empty if none).
    pub last_error: extern "C" fn() -> RString,
    /// Starts the HTTP exporter on `IP:port` (empty for `127.0.0.1:9464`); `EXPORTER_NOT_BUILT` (-19)
    /// when the library was built without it.
    pub serve: extern "C" fn(address: RStr<'_>) -> i32,
    /// Stops the HTTP exporter and joins its thread.
    pub serve_stop: extern "C" fn() -> i32,
    /// The address the exporter listens on.
    pub serve_address: extern "C" fn() -> TextResult,
    /// Switches monitoring on (non-zero) or off (zero), as `cache_monitor_set_enabled`; always OK.
    pub set_enabled: extern "C" fn(enabled: i32) -> i32,
    /// 1 when records count, 0 when monitoring is switched off (as `cache_monitor_is_enabled`).
    pub is_enabled: extern "C" fn() -> i32,
    /// Records like `record` and makes `labels` the latest exemplar of the record's bucket (as
    /// `cache_monitor_record_with_exemplar`: `name=value` lines separated by `\n`, at most 128
    /// characters; a refused label set records nothing and returns `INVALID_EXEMPLAR`, -26).
    pub record_with_exemplar:
        extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>, labels: RStr<'_>) -> i32,
    /// Stops what the library runs on its own.
    #[sabi(last_prefix_field)]
    pub shutdown: extern "C" fn() -> i32,
}

impl RootModule for CacheMonitorModuleRef {
    abi_stable::declare_root_module_statics! {CacheMonitorModuleRef}
    const BASE_NAME: &'static str = "cache_monitor";
    const NAME: &'static str = "cache_monitor";
    const VERSION_STRINGS: VersionStrings = MODULE_VERSION;
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
            version_string,
            configure,
            record,
            record_with_frames,
            record_batch,
            begin: ffi::cache_monitor_begin,
            finish,
            end: finish,
            set_gauge: ffi::cache_monitor_set_gauge,
            reset: ffi::cache_monitor_reset,
            render_prometheus,
            render_openmetrics,
            render_hit_rate_json,
            render_stats_json,
            render_flamegraph_folded,
            render_flamegraph_svg,
            export_state,
            import_state,
            last_error,
            serve,
            serve_stop: ffi::cache_monitor_serve_stop,
            serve_address,
            set_enabled: ffi::cache_monitor_set_enabled,
            is_enabled: ffi::cache_monitor_is_enabled,
            record_with_exemplar,
            shutdown: ffi::cache_monitor_shutdown,
        }
        .leak_into_prefix()
    }
}

/// Runs `body` at the C ABI's boundary: panics caught, errors turned into its status codes (and the
/// calling thread's last error message).
fn status(body: impl FnOnce() -> Result<(), Error>) -> i32 {
    guard(|| Ok(body()?))
}

/// Runs a render at the C ABI's boundary: its text, or the status and message of its failure (a panic
/// included), never an empty text that would pass for "nothing to show".
fn text(render: impl FnOnce() -> Result<String, Error>) -> TextResult {
    match guarded(|| render().map_err(Failure::from)) {
        Ok(text) => RResult::ROk(RString::from(text)),
        Err(status) => RResult::RErr(ModuleError {
            status,
            message: RString::from(boundary::last_error()),
        }),
    }
}

extern "C" fn version_string() -> RStr<'static> {
    RStr::from_str(ffi::VERSION_TEXT)
}

extern "C" fn configure(json: RStr<'_>) -> i32 {
    status(|| Monitor::global().configure(json.as_str()))
}

extern "C" fn record(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32 {
    status(|| Monitor::global().record_codes(operation, result, duration_ns, key.as_slice()))
}

extern "C" fn record_with_frames(
    operation: u32,
    result: u32,
    duration_ns: u64,
    key: RSlice<'_, u8>,
    frames: RSlice<'_, u8>,
) -> i32 {
    status(|| {
        Monitor::global().record_codes_with_frames(operation, result, duration_ns, key.as_slice(), frames.as_slice())
    })
}

extern "C" fn record_with_exemplar(
    operation: u32,
    result: u32,
    duration_ns: u64,
    key: RSlice<'_, u8>,
    labels: RStr<'_>,
) -> i32 {
    guard(|| {
        let labels = exemplars::parse_text(labels.as_str())?;
        Ok(Monitor::global().record_codes_with_labels(operation, result, duration_ns, key.as_slice(), labels)?)
    })
}

extern "C" fn record_batch(records: RSlice<'_, ModuleRecord<'_>>, recorded: &mut usize) -> i32 {
    *recorded = 0;
    status(|| {
        let monitor = Monitor::global();
        for record in records.iter() {
            monitor.record_codes(
                record.operation,
                record.result,
                record.duration_ns,
                record.key.as_slice(),
            )?;
            *recorded += 1;
        }
        Ok(())
    })
}

extern "C" fn finish(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32 {
    status(|| {
        let monitor = Monitor::global();
        monitor.end(crate::config::operations::Operation::from_code(operation))?;
        monitor.record_codes(operation, result, duration_ns, key.as_slice())
    })
}

extern "C" fn render_prometheus() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::Prometheus))
}

extern "C" fn render_openmetrics() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::Openmetrics))
}

extern "C" fn render_hit_rate_json() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::HitRateJson))
}

extern "C" fn render_stats_json() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::StatsJson))
}

extern "C" fn render_flamegraph_folded() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::FlamegraphFolded))
}

extern "C" fn render_flamegraph_svg() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::FlamegraphSvg))
}

extern "C" fn export_state() -> TextResult {
    text(|| ffi::render(CacheMonitorFormat::StateSnapshot))
}

extern "C" fn import_state(snapshot: RSlice<'_, u8>) -> i32 {
    status(|| Monitor::global().import_state(snapshot.as_slice()))
}

extern "C" fn last_error() -> RString {
    RString::from(boundary::last_error())
}

extern "C" fn serve(address: RStr<'_>) -> i32 {
    status(|| {
        serving::built()?;
        serving::serve(address.as_str())?;
        Ok(())
    })
}

extern "C" fn serve_address() -> TextResult {
    text(|| Ok(serving::address()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_render_is_an_error_with_its_status_and_message_not_an_empty_text() {
        let failed = text(|| Err(Error::Render("the drawing failed".to_owned())));
        assert_eq!(
            failed,
            RResult::RErr(ModuleError {
                status: ffi::CacheMonitorStatus::RenderFailed as i32,
                message: RString::from("cannot render: the drawing failed"),
            })
        );
        let panicked = text(|| panic!("boom"));
        assert_eq!(
            panicked,
            RResult::RErr(ModuleError {
                status: ffi::CacheMonitorStatus::Internal as i32,
                message: RString::from("internal error caught at the C boundary"),
            })
        );
        assert_eq!(
            text(|| Ok(String::new())),
            RResult::ROk(RString::new()),
            "empty is a text"
        );
    }

    #[test]
    fn a_batch_says_how_many_it_recorded() {
        let records = [
            ModuleRecord {
                operation: 0,
                result: 0,
                duration_ns: 1,
                key: RSlice::from_slice(b"user:1"),
            },
            ModuleRecord {
                operation: 0,
                result: 9,
                duration_ns: 1,
                key: RSlice::from_slice(b""),
            },
        ];
        let mut recorded = usize::MAX;
        let status = record_batch(RSlice::from_slice(&records), &mut recorded);
        assert_eq!((status, recorded), (ffi::CacheMonitorStatus::UnknownResult as i32, 1));
        assert_eq!(last_error().as_str(), "unknown result code 9");
    }
}
