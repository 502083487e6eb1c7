//! The C ABI: a thin translation layer over [`Monitor::global`].
//!
//! Every function validates its arguments, calls the monitor, and maps the result to a
//! [`CacheMonitorStatus`]; none of them lets a panic unwind into the host. `include/cache_monitor.h` is
//! generated from this module by `cbindgen` (see `build.rs`).

pub(crate) mod boundary;
mod serving;
pub mod status;

use std::ffi::c_char;

use boundary::{bytes, guard, text_outputs, utf8, utf8_bytes};
pub use status::{CacheMonitorGauge, CacheMonitorOperation, CacheMonitorResult, CacheMonitorStatus};

use crate::monitor::Monitor;
use crate::recording::operation::{Gauge, Operation};

/// Major version of the C ABI: bumped when a function changes or disappears.
pub const CACHE_MONITOR_ABI_VERSION_MAJOR: u32 = 1;
/// Minor version of the C ABI: bumped when functions, status codes or configuration keys are added (1.5:
/// `CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT`).
pub const CACHE_MONITOR_ABI_VERSION_MINOR: u32 = 5;
/// `(major << 16) | minor`, what `cache_monitor_abi_version` returns for this header.
pub const CACHE_MONITOR_ABI_VERSION: u32 = (CACHE_MONITOR_ABI_VERSION_MAJOR << 16) | CACHE_MONITOR_ABI_VERSION_MINOR;

/// The library's ABI version, `(major << 16) | minor`. A host built against header version `H` can use
/// the library when the majors are equal and the library's minor is at least `H`'s.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_abi_version() -> u32 {
    CACHE_MONITOR_ABI_VERSION
}

/// Changes the configuration with a JSON object naming only the keys to change, for example
/// `{"namespace": "myapp_cache", "buckets": [0.0001, 0.001, 0.01], "operations": ["compact"],
/// "profiler": {"sample_every": 100, "max_stacks": 1024, "weight": "samples"}}`.
/// An unknown key or a bad value returns an error and changes nothing.
///
/// # Safety
/// `json` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_configure(json: *const c_char) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let json = unsafe { utf8(json) }?;
        Ok(Monitor::global().configure(json)?)
    })
}

/// Records one finished operation: its code (`CacheMonitorOperation` or a registered custom code), its
/// result (`CacheMonitorResult`), its duration in nanoseconds, and optionally its key (NULL with length 0
/// for none; any bytes). Lock-free; safe to call from any number of threads.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_record(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = unsafe { bytes(key, key_len) }?;
        Ok(Monitor::global().record_codes(op, result, duration_ns, key)?)
    })
}

/// Records one finished operation exactly as `cache_monitor_record` does (same validation, same counts)
/// and, when the profiler samples it, adds the host's logical call site to the sampled stack: `frames`
/// is `frames_len` bytes of UTF-8, frames separated by `;`, outermost first (for example
/// `main.main;main.serve;cache.(*Cache).Get`), placed under the native frames and above the operation.
/// For hosts whose stacks cannot be unwound (Go through cgo). NULL with length 0 means no frames. Each
/// frame is cut to 128 bytes and the innermost frames are kept within 512 bytes.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes; `frames` must be NULL or point to
/// `frames_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_record_with_frames(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
    frames: *const c_char,
    frames_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = unsafe { bytes(key, key_len) }?;
        // SAFETY: the caller passes NULL or `frames_len` readable bytes.
        let frames = unsafe { utf8_bytes(frames.cast(), frames_len) }?;
        Ok(Monitor::global().record_codes_with_frames(op, result, duration_ns, key, frames)?)
    })
}

/// Counts an operation as in flight until `cache_monitor_end` (which may run on another thread).
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_begin(op: u32) -> i32 {
    guard(|| Ok(Monitor::global().begin(Operation::from_code(op))?))
}

/// Ends an operation started with `cache_monitor_begin` and records it as `cache_monitor_record` does.
/// With a valid `op` the operation stops counting as in flight even if the other arguments are refused.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_end(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
) -> i32 {
    guard(|| {
        let monitor = Monitor::global();
        monitor.end(Operation::from_code(op))?;
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = unsafe { bytes(key, key_len) }?;
        Ok(monitor.record_codes(op, result, duration_ns, key)?)
    })
}

/// Sets a gauge the host owns (`CacheMonitorGauge`): the cache's size in bytes or its entry count.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_set_gauge(gauge: u32, value: u64) -> i32 {
    guard(|| {
        let gauge = Gauge::from_code(gauge).ok_or(crate::error::Error::UnknownGauge(gauge))?;
        Monitor::global().set_gauge(gauge, value);
        Ok(())
    })
}

/// Forgets every recorded operation and sampled stack and zeroes the gauges; operations in flight stay in
/// flight.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_reset() -> i32 {
    guard(|| {
        Monitor::global().reset();
        Ok(())
    })
}

text_outputs! {
    /// Writes the Prometheus text exposition (format 0.0.4) to `buf`.
    ///
    /// Buffer contract (shared by every `cache_monitor_render*` call): `*len` receives the text's size in
    /// bytes. If `cap` is at least that, the text is copied, NUL-terminated when `cap` leaves room, and the
    /// call returns OK; otherwise nothing is copied and it returns `CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL`,
    /// so call again with a buffer of `*len + 1` bytes (or more: the text grows as counts grow). `buf` may be
    /// NULL when `cap` is 0.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_prometheus()
    }

    /// Writes the OpenMetrics 1.0.0 exposition to `buf`, with the buffer contract of `cache_monitor_render`.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_openmetrics(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_openmetrics()
    }

    /// Writes the hit-rate report as JSON (rolling windows, operations, key patterns; schema in the README),
    /// with the buffer contract of `cache_monitor_render`.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_hit_rate_json(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_hit_rate_json()
    }

    /// Writes the real-time stats report as JSON (in flight, operations per second, latencies, alerts; schema
    /// in the README), with the buffer contract of `cache_monitor_render`.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_stats_json(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_stats_json()
    }

    /// Writes everything the library has counted since its last reset (its own and imported state) as a
    /// versioned snapshot for `cache_monitor_import_state` of another copy of the library, with the buffer
    /// contract of `cache_monitor_render`. The swap protocol is in the README.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_export_state(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().export_state()
    }
}

/// Adds a snapshot from `cache_monitor_export_state` of another copy of the library to this one's
/// counts. A second snapshot from the same source replaces the first. Malformed snapshots return
/// `CACHE_MONITOR_STATUS_INVALID_SNAPSHOT`, other formats or versions
/// `CACHE_MONITOR_STATUS_FOREIGN_SNAPSHOT`, an incompatible configuration `CACHE_MONITOR_STATUS_BUSY`;
/// nothing changes on error.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_import_state(data: *const u8, len: usize) -> i32 {
    guard(|| {
        if data.is_null() {
            return Err(CacheMonitorStatus::NullPointer.into());
        }
        // SAFETY: the caller passes `len` readable bytes at the non-null `data`.
        let snapshot = unsafe { bytes(data, len) }?;
        Ok(Monitor::global().import_state(snapshot)?)
    })
}

/// Stops everything the library runs on its own (the HTTP exporter, if started), joining its threads,
/// so that the library can be unloaded with `dlclose`. Recording and rendering keep working afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_shutdown() -> i32 {
    guard(|| {
        crate::lifecycle::shutdown();
        Ok(())
    })
}

text_outputs! {
    /// Writes the sampled stacks as folded stacks (`frame;frame;frame weight` per line, outermost frame
    /// first, as `flamegraph.pl` and `inferno-flamegraph` read) to `buf`, with the buffer contract of
    /// `cache_monitor_render`. Weighted by samples or by total microseconds (`profiler.weight`); empty until
    /// sampling is configured (`{"profiler": {"sample_every": 100}}`).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_flamegraph_folded(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_flamegraph_folded()
    }

    /// Writes the sampled stacks as an SVG flamegraph to `buf`, with the buffer contract of
    /// `cache_monitor_render`. It is drawn on a short-lived thread of the library's own, joined before the
    /// call returns (so that nothing the drawing leaves in thread-local storage outlives it).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_flamegraph_svg(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        Monitor::global().render_flamegraph_svg()?
    }

    /// Writes the message of the most recent failed call (process-wide; empty if none) to `buf`, with the
    /// buffer contract of `cache_monitor_render`. Failures with `BUFFER_TOO_SMALL` do not replace it.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_last_error(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        boundary::last_error()
    }
}

/// Starts the HTTP exporter (since ABI 1.1): serves the process-wide monitor's metrics on `addr`, an
/// `IP:port` such as `"127.0.0.1:9464"` or `"[::1]:9464"`; NULL or `""` means `127.0.0.1:9464`, port 0
/// picks a free port (see `cache_monitor_serve_address`). Endpoints: `/` (index), `/metrics` (text
/// 0.0.4, OpenMetrics on request, gzip when accepted). Authentication and limits come from the
/// configuration's `"http"` section. The exporter runs on one thread of its own until
/// `cache_monitor_serve_stop`.
///
/// Returns `INVALID_ADDRESS` for an address that is not `IP:port`, `ALREADY_SERVING` if the exporter
/// runs, `BIND_FAILED` if the address cannot be bound (see `cache_monitor_last_error`), `SERVE_FAILED`
/// if its thread cannot start, and `EXPORTER_NOT_BUILT`, whatever the address, when the library was built
/// without the exporter (since ABI 1.5).
///
/// # Safety
/// `addr` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_serve(addr: *const c_char) -> i32 {
    guard(|| {
        serving::built()?;
        let addr = if addr.is_null() {
            ""
        } else {
            // SAFETY: the caller passes NULL (handled above) or a NUL-terminated string.
            unsafe { utf8(addr) }?
        };
        serving::serve(addr)?;
        Ok(())
    })
}

/// Stops the HTTP exporter (since ABI 1.1): closes its listener and connections and joins its thread,
/// so the library can be unloaded once this returns; a host that `dlclose`s the library must call it
/// first. Responses in progress get up to two seconds. Returns OK, also when the exporter was not
/// serving; `EXPORTER_NOT_BUILT` when the library was built without the exporter (since ABI 1.5).
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_serve_stop() -> i32 {
    guard(|| {
        serving::built()?;
        serving::serve_stop();
        Ok(())
    })
}

text_outputs! {
    /// Writes the address the exporter listens on (`IP:port`, with the actual port when 0 was asked for)
    /// to `buf`, with the buffer contract of `cache_monitor_render` (since ABI 1.1). Returns `NOT_SERVING`
    /// when the exporter is not running, `EXPORTER_NOT_BUILT` when the library was built without it (since
    /// ABI 1.5).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_serve_address(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        serving::address()?.to_string()
    }
}

/// Describes a status code. Never NULL: unknown codes get a generic description.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_strerror(code: i32) -> *const c_char {
    CacheMonitorStatus::from_code(code)
        .map_or(c"unknown status code", CacheMonitorStatus::description)
        .as_ptr()
}

/// Signature of `cache_monitor_abi_version`, for hosts that look functions up with `dlsym`.
pub type CacheMonitorAbiVersionFn = extern "C" fn() -> u32;
/// Signature of `cache_monitor_configure`.
pub type CacheMonitorConfigureFn = unsafe extern "C" fn(json: *const c_char) -> i32;
/// Signature of `cache_monitor_record` and `cache_monitor_end`.
pub type CacheMonitorRecordFn =
    unsafe extern "C" fn(op: u32, result: u32, duration_ns: u64, key: *const u8, key_len: usize) -> i32;
/// Signature of `cache_monitor_record_with_frames`.
pub type CacheMonitorRecordWithFramesFn = unsafe extern "C" fn(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
    frames: *const c_char,
    frames_len: usize,
) -> i32;
/// Signature of `cache_monitor_begin`.
pub type CacheMonitorBeginFn = extern "C" fn(op: u32) -> i32;
/// Signature of `cache_monitor_set_gauge`.
pub type CacheMonitorSetGaugeFn = extern "C" fn(gauge: u32, value: u64) -> i32;
/// Signature of `cache_monitor_reset` and `cache_monitor_shutdown`.
pub type CacheMonitorResetFn = extern "C" fn() -> i32;
/// Signature of every `cache_monitor_render*` function, `cache_monitor_last_error`,
/// `cache_monitor_export_state` and `cache_monitor_serve_address`.
pub type CacheMonitorRenderFn = unsafe extern "C" fn(buf: *mut u8, cap: usize, len: *mut usize) -> i32;
/// Signature of `cache_monitor_import_state`.
pub type CacheMonitorImportStateFn = unsafe extern "C" fn(data: *const u8, len: usize) -> i32;
/// Signature of `cache_monitor_strerror`.
pub type CacheMonitorStrerrorFn = extern "C" fn(code: i32) -> *const c_char;
/// Signature of `cache_monitor_serve`.
pub type CacheMonitorServeFn = unsafe extern "C" fn(addr: *const c_char) -> i32;
/// Signature of `cache_monitor_serve_stop`.
pub type CacheMonitorServeStopFn = extern "C" fn() -> i32;

/// Compile-time proof that the exported functions have the signatures the typedefs promise.
const _: () = {
    let _: CacheMonitorAbiVersionFn = cache_monitor_abi_version;
    let _: CacheMonitorConfigureFn = cache_monitor_configure;
    let _: CacheMonitorRecordFn = cache_monitor_record;
    let _: CacheMonitorRecordFn = cache_monitor_end;
    let _: CacheMonitorRecordWithFramesFn = cache_monitor_record_with_frames;
    let _: CacheMonitorBeginFn = cache_monitor_begin;
    let _: CacheMonitorSetGaugeFn = cache_monitor_set_gauge;
    let _: CacheMonitorResetFn = cache_monitor_reset;
    let _: CacheMonitorRenderFn = cache_monitor_render;
    let _: CacheMonitorRenderFn = cache_monitor_render_openmetrics;
    let _: CacheMonitorRenderFn = cache_monitor_render_flamegraph_folded;
    let _: CacheMonitorRenderFn = cache_monitor_render_flamegraph_svg;
    let _: CacheMonitorRenderFn = cache_monitor_last_error;
    let _: CacheMonitorRenderFn = cache_monitor_render_hit_rate_json;
    let _: CacheMonitorRenderFn = cache_monitor_render_stats_json;
    let _: CacheMonitorRenderFn = cache_monitor_export_state;
    let _: CacheMonitorImportStateFn = cache_monitor_import_state;
    let _: CacheMonitorResetFn = cache_monitor_shutdown;
    let _: CacheMonitorStrerrorFn = cache_monitor_strerror;
    let _: CacheMonitorServeFn = cache_monitor_serve;
    let _: CacheMonitorServeStopFn = cache_monitor_serve_stop;
    let _: CacheMonitorRenderFn = cache_monitor_serve_address;
};

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn strerror_never_returns_null() {
        // SAFETY: `cache_monitor_strerror` returns a pointer to a static NUL-terminated string.
        let unknown = unsafe { CStr::from_ptr(cache_monitor_strerror(-999)) };
        assert_eq!(unknown, c"unknown status code");
        // SAFETY: as above.
        let ok = unsafe { CStr::from_ptr(cache_monitor_strerror(0)) };
        assert_eq!(ok, c"success");
    }

    #[cfg(not(feature = "exporter"))]
    #[test]
    fn built_without_the_exporter_every_serve_function_says_so() {
        let not_built = CacheMonitorStatus::ExporterNotBuilt as i32;
        // SAFETY: a NUL-terminated string.
        let named = unsafe { cache_monitor_serve(c"127.0.0.1:0".as_ptr()) };
        // SAFETY: NULL is allowed (the default address).
        let default = unsafe { cache_monitor_serve(std::ptr::null()) };
        assert_eq!((named, default), (not_built, not_built));
        assert_eq!(cache_monitor_serve_stop(), not_built);
        let mut len = 0usize;
        // SAFETY: NULL with capacity 0 asks for the size; `len` is a live local.
        let address = unsafe { cache_monitor_serve_address(std::ptr::null_mut(), 0, &mut len) };
        assert_eq!(address, not_built);
        assert_eq!(cache_monitor_shutdown(), CacheMonitorStatus::Ok as i32);
    }
}
