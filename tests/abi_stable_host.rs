//! A Rust host loading the cdylib through `abi_stable`: the layout of every type is checked at load, so
//! a host built against a mismatched interface (or an incompatible version) gets a clean error.

mod support;

use abi_stable::StableAbi;
use abi_stable::library::{LibraryError, RootModule};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr};
use cache_monitor::module::{CacheMonitorModuleRef, ModuleError, ModuleRecord, TextResult};
use support::{cdylib, exposition};

/// The text of a render, failing the test with the module's error otherwise.
fn text(result: TextResult) -> String {
    match result {
        RResult::ROk(text) => text.into_string(),
        RResult::RErr(error) => panic!("render failed: {error:?}"),
    }
}

#[test]
fn a_rust_host_loads_the_module_with_its_layout_checked_and_uses_it() {
    let module = CacheMonitorModuleRef::load_from_file(&cdylib()).expect("a layout-checked load");
    assert_eq!(
        (module.abi_version())() >> 16,
        cache_monitor::ffi::CACHE_MONITOR_ABI_VERSION_MAJOR
    );
    assert_eq!(
        (module.version_string())().as_str(),
        format!("cache-monitor {} (C ABI 1.6)", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!((module.configure())(RStr::from_str(r#"{"namespace": "plugin"}"#)), 0);
    assert_eq!((module.record())(0, 0, 1_000, RSlice::from_slice(b"user:1")), 0);
    assert_eq!((module.begin())(1), 0);
    assert_eq!((module.finish())(1, 2, 3_000, RSlice::from_slice(b"")), 0);
    assert_eq!((module.begin())(1), 0);
    assert_eq!((module.end())(1, 2, 3_000, RSlice::from_slice(b"")), 0, "end is finish");
    assert_eq!(
        (module.record())(99, 0, 1, RSlice::from_slice(b"")),
        -2,
        "unknown operation code"
    );
    assert_eq!((module.last_error())().as_str(), "unknown operation code 99");
    assert_eq!((module.configure())(RStr::from_str("{")), -6, "invalid JSON");
    assert!((module.last_error())().starts_with("invalid JSON: "));
    assert_eq!(
        (module.record_with_frames())(
            0,
            1,
            500,
            RSlice::from_slice(b"user:2"),
            RSlice::from_slice(b"go.main;\xff")
        ),
        0,
        "frames that are not UTF-8 do not cost the record"
    );
    let batch = [
        ModuleRecord {
            operation: 0,
            result: 0,
            duration_ns: 10,
            key: RSlice::from_slice(b"user:3"),
        },
        ModuleRecord {
            operation: 0,
            result: 7,
            duration_ns: 10,
            key: RSlice::from_slice(b""),
        },
    ];
    let mut recorded = 99;
    assert_eq!((module.record_batch())(RSlice::from_slice(&batch), &mut recorded), -3);
    assert_eq!(recorded, 1, "the batch stops at the refused record");

    // Switched off, records are taken and count nothing.
    assert_eq!((module.is_enabled())(), 1);
    assert_eq!((module.set_enabled())(0), 0);
    assert_eq!((module.is_enabled())(), 0);
    assert_eq!((module.record())(0, 0, 1_000, RSlice::from_slice(b"user:1")), 0);
    assert_eq!((module.set_enabled())(1), 0);
    assert_eq!((module.is_enabled())(), 1);

    // An exemplar on the bucket its record counts in; a refused label set records nothing.
    let delete_ok = |labels: &str| {
        (module.record_with_exemplar())(2, 2, 1_200_000, RSlice::from_slice(b""), RStr::from_str(labels))
    };
    assert_eq!(delete_ok("trace_id=abc"), 0);
    assert_eq!(delete_ok("trace id=abc"), -26, "INVALID_EXEMPLAR");
    assert!(
        (module.last_error())().contains("\"trace id\""),
        "{}",
        (module.last_error())()
    );
    let openmetrics = text((module.render_openmetrics())());
    assert!(
        openmetrics.contains(
            "plugin_operation_duration_seconds_bucket{operation=\"delete\",result=\"ok\",le=\"0.0025\"} 1 \
             # {trace_id=\"abc\"} 0.0012 "
        ),
        "{openmetrics}"
    );

    let parsed = exposition::parse(&text((module.render_prometheus())()));
    assert_eq!(
        parsed.value("plugin_operations_total", &[("operation", "get"), ("result", "hit")]),
        Some(2.0)
    );
    assert_eq!(
        parsed.value("plugin_operations_total", &[("operation", "get"), ("result", "miss")]),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("plugin_operations_total", &[("operation", "put"), ("result", "ok")]),
        Some(2.0),
        "finish and end each record once"
    );
    assert_eq!(
        parsed.value("plugin_stats", &[("metric", "operations_in_flight")]),
        Some(0.0)
    );
    let json: serde_json::Value = serde_json::from_str(&text((module.render_stats_json())())).expect("JSON");
    assert_eq!(json["operations_in_flight"], 0);
    assert!(text((module.render_openmetrics())()).ends_with("# EOF\n"));
    assert!(text((module.render_hit_rate_json())()).starts_with('{'));
    assert_eq!(
        text((module.render_flamegraph_folded())()),
        "",
        "nothing sampled: an empty text, not an error"
    );
    assert!(text((module.render_flamegraph_svg())()).contains("</svg>"));
    assert!(text((module.export_state())()).contains("cache-monitor-state"));
    assert_eq!(
        (module.import_state())(RSlice::from_slice(b"nope")),
        -12,
        "malformed snapshot"
    );

    // The exporter, or its stand-in in a build without it.
    let not_serving = (module.serve_address())();
    if cfg!(feature = "exporter") {
        assert_eq!(
            not_serving,
            RResult::RErr(ModuleError {
                status: -17,
                message: "the exporter is not serving".into()
            })
        );
        assert_eq!(
            (module.serve())(RStr::from_str(" 127.0.0.1:0")),
            -14,
            "spaces are refused"
        );
        assert_eq!((module.serve())(RStr::from_str("127.0.0.1:0")), 0);
        let address = text((module.serve_address())());
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        assert_eq!((module.serve_stop())(), 0);
    } else {
        assert!(matches!(not_serving, RResult::RErr(ModuleError { status: -19, .. })));
        assert_eq!((module.serve())(RStr::from_str("127.0.0.1:0")), -19);
    }
    assert_eq!((module.shutdown())(), 0);

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
        const VERSION_STRINGS: VersionStrings = cache_monitor::module::MODULE_VERSION;
    }
}

/// A host built against the first release's module, 0.1, whose renders returned a bare text (empty on
/// failure): refused, since the layouts differ (`abi_stable` compares layouts before versions).
#[allow(dead_code)] // the load is refused, so nothing is ever called
mod first_release {
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
        const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.0");
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
        pub version_string: extern "C" fn() -> RStr<'static>,
        pub configure: extern "C" fn(json: RStr<'_>) -> i32,
        pub record: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
        pub record_with_frames: extern "C" fn(
            operation: u32,
            result: u32,
            duration_ns: u64,
            key: RSlice<'_, u8>,
            frames: RSlice<'_, u8>,
        ) -> i32,
        pub record_batch: extern "C" fn(records: RSlice<'_, ModuleRecord<'_>>, recorded: &mut usize) -> i32,
        pub begin: extern "C" fn(operation: u32) -> i32,
        pub finish: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
        pub end: extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>) -> i32,
        pub set_gauge: extern "C" fn(gauge: u32, value: u64) -> i32,
        pub reset: extern "C" fn() -> i32,
        pub render_prometheus: extern "C" fn() -> TextResult,
        pub render_openmetrics: extern "C" fn() -> TextResult,
        pub render_hit_rate_json: extern "C" fn() -> TextResult,
        pub render_stats_json: extern "C" fn() -> TextResult,
        pub render_flamegraph_folded: extern "C" fn() -> TextResult,
        pub render_flamegraph_svg: extern "C" fn() -> TextResult,
        pub export_state: extern "C" fn() -> TextResult,
        pub import_state: extern "C" fn(snapshot: RSlice<'_, u8>) -> i32,
        pub last_error: extern "C" fn() -> RString,
        pub serve: extern "C" fn(address: RStr<'_>) -> i32,
        pub serve_stop: extern "C" fn() -> i32,
        pub serve_address: extern "C" fn() -> TextResult,
        pub set_enabled: extern "C" fn(enabled: i32) -> i32,
        pub is_enabled: extern "C" fn() -> i32,
        pub record_with_exemplar:
            extern "C" fn(operation: u32, result: u32, duration_ns: u64, key: RSlice<'_, u8>, labels: RStr<'_>) -> i32,
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
fn a_host_built_against_the_first_release_module_gets_a_clean_error() {
    let error = first_release::CacheMonitorModuleRef::load_from_file(&cdylib())
        .err()
        .expect("the load is refused");
    assert!(matches!(error, LibraryError::AbiInstability(_)), "{error}");
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
