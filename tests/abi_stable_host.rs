//! A Rust host loading the cdylib through `abi_stable`: the layout of every type is checked at load, so
//! a host built against a mismatched interface (or an incompatible version) gets a clean error.

mod support;

use abi_stable::StableAbi;
use abi_stable::library::{LibraryError, RootModule};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RSlice, RStr};
use cache_monitor::module::CacheMonitorModuleRef;
use support::{cdylib, exposition};

#[test]
fn a_rust_host_loads_the_module_with_its_layout_checked_and_uses_it() {
    let module = CacheMonitorModuleRef::load_from_file(&cdylib()).expect("a layout-checked load");
    assert_eq!(
        (module.abi_version())() >> 16,
        cache_monitor::ffi::CACHE_MONITOR_ABI_VERSION_MAJOR
    );
    assert_eq!((module.configure())(RStr::from_str(r#"{"namespace": "plugin"}"#)), 0);
    assert_eq!((module.record())(0, 0, 1_000, RSlice::from_slice(b"user:1")), 0);
    assert_eq!((module.begin())(1), 0);
    assert_eq!((module.end())(1, 2, 3_000, RSlice::from_slice(b"")), 0);
    assert_eq!(
        (module.record())(99, 0, 1, RSlice::from_slice(b"")),
        -2,
        "unknown operation code"
    );
    assert_eq!((module.configure())(RStr::from_str("{")), -6, "invalid JSON");

    let text = (module.render_prometheus())();
    let parsed = exposition::parse(&text);
    assert_eq!(
        parsed.value("plugin_operations_total", &[("operation", "get"), ("result", "hit")]),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("plugin_operations_total", &[("operation", "put"), ("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("plugin_stats", &[("metric", "operations_in_flight")]),
        Some(0.0)
    );
    let json: serde_json::Value = serde_json::from_str(&(module.render_stats_json())()).expect("JSON");
    assert_eq!(json["operations_in_flight"], 0);
    assert!((module.export_state())().contains("cache-monitor-state"));
    assert_eq!(
        (module.import_state())(RSlice::from_slice(b"nope")),
        -12,
        "malformed snapshot"
    );

    // The loaded library is its own copy: the crate linked into this test binary saw none of it.
    let linked = cache_monitor::Monitor::global().totals();
    assert!(linked.series.iter().flatten().all(|s| s.count == 0));
}

/// What a host built against another shape of the interface holds: same names, but `record` takes its
/// duration as milliseconds in an `f64`.
#[allow(dead_code)] // the load is refused, so nothing is ever called
mod mismatched {
    use super::*;

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = CacheMonitorModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct CacheMonitorModule {
        pub abi_version: extern "C" fn() -> u32,
        pub configure: extern "C" fn(json: RStr<'_>) -> i32,
        #[sabi(last_prefix_field)]
        pub record: extern "C" fn(operation: u32, result: u32, duration_ms: f64, key: RSlice<'_, u8>) -> i32,
    }

    impl RootModule for CacheMonitorModuleRef {
        abi_stable::declare_root_module_statics! {CacheMonitorModuleRef}
        const BASE_NAME: &'static str = "cache_monitor";
        const NAME: &'static str = "cache_monitor";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// The library's exact shape, but a host built for a later, incompatible release.
#[allow(dead_code)] // the load is refused, so nothing is ever called
mod newer {
    use abi_stable::std_types::RString;

    use super::*;

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = CacheMonitorModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct CacheMonitorModule {
        pub abi_version: extern "C" fn() -> u32,
        pub configure: extern "C" fn(json: RStr<'_>) -> i32,
        pub record: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
        pub begin: extern "C" fn(operation: u32) -> i32,
        pub end: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
        pub set_gauge: extern "C" fn(gauge: u32, value: u64) -> i32,
        pub reset: extern "C" fn() -> i32,
        pub render_prometheus: extern "C" fn() -> RString,
        pub render_openmetrics: extern "C" fn() -> RString,
        pub render_hit_rate_json: extern "C" fn() -> RString,
        pub render_stats_json: extern "C" fn() -> RString,
        pub render_flamegraph_folded: extern "C" fn() -> RString,
        pub export_state: extern "C" fn() -> RString,
        pub import_state: extern "C" fn(snapshot: RSlice<'_, u8>) -> i32,
        #[sabi(last_prefix_field)]
        pub shutdown: extern "C" fn() -> i32,
    }

    impl RootModule for CacheMonitorModuleRef {
        abi_stable::declare_root_module_statics! {CacheMonitorModuleRef}
        const BASE_NAME: &'static str = "cache_monitor";
        const NAME: &'static str = "cache_monitor";
        const VERSION_STRINGS: VersionStrings = VersionStrings::new("7.0.0");
    }
}

#[test]
fn a_host_built_against_a_mismatched_interface_gets_a_clean_error() {
    let error = mismatched::CacheMonitorModuleRef::load_from_file(&cdylib())
        .err()
        .expect("the load is refused");
    assert!(matches!(error, LibraryError::AbiInstability(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("record") || message.contains("f64"),
        "the error names the mismatch: {message}"
    );
}

#[test]
fn a_host_built_for_an_incompatible_version_gets_a_clean_error() {
    let error = newer::CacheMonitorModuleRef::load_from_file(&cdylib())
        .err()
        .expect("the load is refused");
    assert!(
        matches!(error, LibraryError::IncompatibleVersionNumber { .. }),
        "{error}"
    );
}
