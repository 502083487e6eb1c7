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
/// `cache_monitor_record_batch` and `CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT`).
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
    // `move`: the arguments stay in registers instead of being spilled for the closure to borrow.
    guard(move || {
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = unsafe { bytes(key, key_len) }?;
        Ok(Monitor::global().record_raw(op, result, duration_ns, key, "")?)
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

/// One operation for `cache_monitor_record_batch` (since ABI 1.5): the arguments of one
/// `cache_monitor_record` call.
///
/// Layout (C rules, no padding anywhere): `operation` at offset 0, `result` at 4, `duration_ns` at 8,
/// `key` at 16 and `key_len` right after it; 32 bytes on 64-bit targets, 24 on 32-bit ones. The 64-bit
/// field comes after two 32-bit ones and the pointer-sized fields last, so no field needs a hole before
/// it and the size is a multiple of the alignment whether `uint64_t` aligns to 4 or 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CacheMonitorRecord {
    /// Operation code: a `CacheMonitorOperation` or a registered custom code.
    pub operation: u32,
    /// Result code: a `CacheMonitorResult`.
    pub result: u32,
    /// Duration of the operation in nanoseconds.
    pub duration_ns: u64,
    /// The key's bytes (any bytes), or NULL with `key_len` 0 for none.
    pub key: *const u8,
    /// Length of `key` in bytes.
    pub key_len: usize,
}

/// Compile-time proof of the layout `CacheMonitorRecord` documents (hosts that build the array by hand,
/// such as the Go package, rely on it).
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(CacheMonitorRecord, operation) == 0);
    assert!(offset_of!(CacheMonitorRecord, result) == 4);
    assert!(offset_of!(CacheMonitorRecord, duration_ns) == 8);
    assert!(offset_of!(CacheMonitorRecord, key) == 16);
    assert!(offset_of!(CacheMonitorRecord, key_len) == 16 + size_of::<usize>());
    assert!(size_of::<CacheMonitorRecord>() == 16 + 2 * size_of::<usize>());
};

/// Records `count` operations in one call (since ABI 1.5), in order, each exactly as
/// `cache_monitor_record` would (same validation, same counts, same profiler sampling), without
/// allocating. A host pays the cost of crossing into the library once per batch instead of once per
/// operation (a cgo call costs more than a record).
///
/// `*recorded` receives how many records were recorded. On a record that `cache_monitor_record` would
/// refuse, the call stops there and returns that record's status: records `0 .. *recorded` counted, the
/// refused one (index `*recorded`) and those after it did not. `records` may be NULL when `count` is 0;
/// NULL with a count is `NULL_POINTER`, a count whose array cannot exist `INVALID_LENGTH` (both with
/// `*recorded` = 0). A NULL `recorded` is `NULL_POINTER` and records nothing. The array is read with
/// unaligned loads, so it need not be aligned.
///
/// # Safety
/// `records` must be NULL or point to `count` readable `CacheMonitorRecord`s, each of whose `key` is
/// NULL or points to `key_len` readable bytes; `recorded` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_record_batch(
    records: *const CacheMonitorRecord,
    count: usize,
    recorded: *mut usize,
) -> i32 {
    if recorded.is_null() {
        return guard(|| Err(CacheMonitorStatus::NullPointer.into()));
    }
    let mut done = 0;
    let status = guard(|| {
        if records.is_null() && count != 0 {
            return Err(CacheMonitorStatus::NullPointer.into());
        }
        if count > isize::MAX as usize / size_of::<CacheMonitorRecord>() {
            return Err(CacheMonitorStatus::InvalidLength.into());
        }
        let monitor = Monitor::global();
        for i in 0..count {
            // SAFETY: `i < count`, and the caller passes `count` readable records at `records`, which is
            // non-null when `count > 0` (checked above); their total size fits in `isize` (checked above),
            // so `add` stays inside the array. Unaligned loads, as documented.
            let record = unsafe { records.add(i).read_unaligned() };
            // SAFETY: the caller passes NULL or `key_len` readable bytes in every record.
            let key = unsafe { bytes(record.key, record.key_len) }?;
            monitor.record_codes(record.operation, record.result, record.duration_ns, key)?;
            done += 1;
        }
        Ok(())
    });
    // SAFETY: `recorded` is non-null (checked above) and writable by the caller's contract. Written after
    // the guard, so it is exact also when a record failed or panicked.
    unsafe { recorded.write(done) };
    status
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
/// Signature of `cache_monitor_record_batch`.
pub type CacheMonitorRecordBatchFn =
    unsafe extern "C" fn(records: *const CacheMonitorRecord, count: usize, recorded: *mut usize) -> i32;
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
    let _: CacheMonitorRecordBatchFn = cache_monitor_record_batch;
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

    /// A record of `op` and `result` with the key `key`.
    fn record_of(op: u32, result: u32, key: &[u8]) -> CacheMonitorRecord {
        CacheMonitorRecord {
            operation: op,
            result,
            duration_ns: 1_000,
            key: key.as_ptr(),
            key_len: key.len(),
        }
    }

    #[test]
    fn record_batch_stops_at_the_first_refused_record_and_says_how_many_counted() {
        let get = CacheMonitorOperation::Get as u32;
        let hit = CacheMonitorResult::Hit as u32;
        let mut batch = [
            record_of(get, hit, b"user:1"),
            record_of(get, hit, b""),
            record_of(get, 99, b"user:2"),
            record_of(get, hit, b"user:3"),
        ];
        let mut recorded = usize::MAX;
        // SAFETY (every call below): `batch` holds the count of records passed, each key a live slice or
        // NULL with length 0 (or NULL with a length, refused before any read); `recorded` is a live local.
        let status = unsafe { cache_monitor_record_batch(batch.as_ptr(), batch.len(), &mut recorded) };
        assert_eq!(status, CacheMonitorStatus::UnknownResult as i32);
        assert_eq!(recorded, 2);

        batch[2].result = hit;
        batch[1].key = std::ptr::null();
        batch[1].key_len = 3;
        let status = unsafe { cache_monitor_record_batch(batch.as_ptr(), batch.len(), &mut recorded) };
        assert_eq!(status, CacheMonitorStatus::NullPointer as i32);
        assert_eq!(recorded, 1);

        batch[1].key_len = 0;
        batch[3].operation = 1_000;
        let status = unsafe { cache_monitor_record_batch(batch.as_ptr(), batch.len(), &mut recorded) };
        assert_eq!(status, CacheMonitorStatus::UnknownOperation as i32);
        assert_eq!(recorded, 3);

        batch[3].operation = get;
        let status = unsafe { cache_monitor_record_batch(batch.as_ptr(), batch.len(), &mut recorded) };
        assert_eq!(status, CacheMonitorStatus::Ok as i32);
        assert_eq!(recorded, 4);
    }

    #[test]
    fn record_batch_checks_its_pointers_and_count() {
        let mut recorded = usize::MAX;
        // SAFETY (every call below): NULL arrays and impossible counts are refused before any read;
        // `recorded` is a live local or NULL.
        unsafe {
            assert_eq!(cache_monitor_record_batch(std::ptr::null(), 0, &mut recorded), 0);
            assert_eq!(recorded, 0);
            recorded = usize::MAX;
            let status = cache_monitor_record_batch(std::ptr::null(), 1, &mut recorded);
            assert_eq!(status, CacheMonitorStatus::NullPointer as i32);
            assert_eq!(recorded, 0);
            let one = [record_of(0, 0, b"")];
            let status = cache_monitor_record_batch(one.as_ptr(), usize::MAX, &mut recorded);
            assert_eq!(status, CacheMonitorStatus::InvalidLength as i32);
            assert_eq!(recorded, 0);
            let status = cache_monitor_record_batch(one.as_ptr(), 1, std::ptr::null_mut());
            assert_eq!(status, CacheMonitorStatus::NullPointer as i32);
        }
    }

    #[test]
    fn record_batch_reads_unaligned_arrays() {
        // Two records packed one byte into a buffer: neither is aligned.
        let records = [record_of(0, 0, b"user:9"), record_of(1, 2, b"")];
        let size = std::mem::size_of::<CacheMonitorRecord>();
        let mut packed = vec![0u8; 1 + 2 * size];
        for (i, record) in records.iter().enumerate() {
            // SAFETY: the destination holds `size` writable bytes at `1 + i * size`; unaligned writes.
            unsafe {
                packed
                    .as_mut_ptr()
                    .add(1 + i * size)
                    .cast::<CacheMonitorRecord>()
                    .write_unaligned(*record)
            };
        }
        let mut recorded = 0;
        // SAFETY: `packed[1..]` holds two records (read unaligned by the callee); the key is a static.
        let status = unsafe { cache_monitor_record_batch(packed.as_ptr().add(1).cast(), 2, &mut recorded) };
        assert_eq!((status, recorded), (0, 2));
    }
}
