//! The C ABI: a thin translation layer over [`Monitor::global`].
//!
//! Every function validates its arguments, calls the monitor, and maps the result to a
//! [`CacheMonitorStatus`]; none of them lets a panic unwind into the host. `include/cache_monitor.h` is
//! generated from this module by `cbindgen` (see `build.rs`); its preamble, which says what every function
//! guarantees about threads, locks, signals, `fork` and `dlclose`, is in `cbindgen.toml`.
//!
//! Every function, type and status code says since which minor version of the ABI it exists: 1.0 the
//! first (record, begin, end, gauges, reset, the Prometheus and OpenMetrics renders, last error, strerror),
//! 1.1 the analysis (hit-rate and stats JSON), 1.2 state export, import and shutdown, 1.3 the profiler
//! (flamegraphs, `record_with_frames`), 1.4 the exporter (`serve*`), 1.5 `record_batch` and
//! `EXPORTER_NOT_BUILT`, 1.6 state files (`STATE_FILE`), the allocating render, `finish`, the version
//! string, the outcome names, the codes that split `BUSY` and `INTERNAL`, and exemplars
//! (`record_with_exemplar`, `INVALID_EXEMPLAR`).

pub(crate) mod boundary;
pub(crate) mod serving;
pub mod status;

use std::ffi::{CStr, c_char};

use boundary::{Failure, bytes, guard, guard_status, refuse, text_outputs, utf8, write_allocated};
#[allow(deprecated)]
pub use status::CacheMonitorResult;
pub use status::{
    CacheMonitorFormat, CacheMonitorGauge, CacheMonitorOperation, CacheMonitorOutcome, CacheMonitorStatus,
};

use crate::config::duration::MAX_DURATION_NS;
use crate::error::Error;
use crate::monitor::{Monitor, Refused};
use crate::recording::exemplars;
use crate::recording::latency::MAX_TRACKED_NS;
use crate::recording::operation::{Gauge, Operation};

/// Major version of the C ABI: bumped when a function changes or disappears.
pub const CACHE_MONITOR_ABI_VERSION_MAJOR: u32 = 1;
/// Minor version of the C ABI: bumped when functions, types, status codes or configuration keys are added
/// (1.5: `cache_monitor_record_batch` and `CACHE_MONITOR_STATUS_EXPORTER_NOT_BUILT`; 1.6: state files, the
/// `"state"` and `"enabled"` configuration keys and `CACHE_MONITOR_STATUS_STATE_FILE`,
/// `cache_monitor_render_alloc`, `cache_monitor_free`, `cache_monitor_finish`, `cache_monitor_version_string`,
/// `CacheMonitorOutcome`, `CacheMonitorFormat`, the status codes -21 to -26, `cache_monitor_set_enabled`,
/// `cache_monitor_is_enabled` and `cache_monitor_record_with_exemplar`).
pub const CACHE_MONITOR_ABI_VERSION_MINOR: u32 = 6;
/// `(major << 16) | minor`, what `cache_monitor_abi_version` returns for this header.
pub const CACHE_MONITOR_ABI_VERSION: u32 = (CACHE_MONITOR_ABI_VERSION_MAJOR << 16) | CACHE_MONITOR_ABI_VERSION_MINOR;

/// Durations above this many nanoseconds (2^42 - 1, about 73 minutes) are recorded as this many: a host
/// whose clock went back passes a "negative" duration, which wraps to nearly 2^64 and would otherwise
/// make a histogram's `_sum` fall. The same ceiling as the latency histogram's.
pub const CACHE_MONITOR_MAX_DURATION_NS: u64 = 4_398_046_511_103;

/// The header's ceiling is the one `Monitor::record` applies, the last duration the latency histogram
/// resolves.
const _: () = assert!(CACHE_MONITOR_MAX_DURATION_NS == MAX_DURATION_NS && MAX_DURATION_NS == MAX_TRACKED_NS);

/// The crate's version and the ABI's, as a string literal (a test checks it against the constants).
macro_rules! version_text {
    () => {
        concat!("cache-monitor ", env!("CARGO_PKG_VERSION"), " (C ABI 1.6)")
    };
}

/// What `cache_monitor_version_string` returns, without its NUL: the crate's version and the ABI's (for
/// the `abi_stable` module).
#[cfg(any(feature = "abi-stable", test))]
pub(crate) const VERSION_TEXT: &str = version_text!();

/// What `cache_monitor_version_string` returns.
const VERSION_STRING: &CStr = match CStr::from_bytes_with_nul(concat!(version_text!(), "\0").as_bytes()) {
    Ok(text) => text,
    Err(_) => panic!("the version string has one NUL, at its end"),
};

/// The library's ABI version, `(major << 16) | minor` (since ABI 1.0). A host built against header
/// version `H` can use the library when the majors are equal and the library's minor is at least `H`'s.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_abi_version() -> u32 {
    CACHE_MONITOR_ABI_VERSION
}

/// The library's crate version and ABI version as one static, NUL-terminated line, such as
/// `cache-monitor 0.1.0 (C ABI 1.6)`, for a host to log, say when it hot-swaps copies of the library (since
/// ABI 1.6). Never NULL; the text lives as long as the library stays loaded.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_version_string() -> *const c_char {
    VERSION_STRING.as_ptr()
}

/// Changes the configuration with a JSON object naming only the keys to change, for example
/// `{"namespace": "myapp_cache", "buckets": [0.0001, 0.001, 0.01], "operations": ["compact"],
/// "profiler": {"sample_every": 100, "max_stacks": 1024, "weight": "samples"}}` (since ABI 1.0).
/// An unknown key or a bad value returns an error and changes nothing; new histogram buckets once
/// something is recorded return `BUCKETS_LOCKED` (until `cache_monitor_reset`).
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

/// Switches monitoring on (`enabled` non-zero) or off (zero) at run time, as `{"enabled": true/false}`
/// does (since ABI 1.6). Off, every record returns OK at once and counts nothing (nor do `count`s and
/// `begin`s); everything counted stays rendered and served, the exporter and the state file keep
/// working, and switching back on resumes counting. Never fails: returns `CACHE_MONITOR_STATUS_OK`.
/// Lock-free for the recording threads; takes the configuration lock, so do not call it from a signal
/// handler.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_set_enabled(enabled: i32) -> i32 {
    guard(|| {
        Monitor::global().set_enabled(enabled != 0);
        Ok(())
    })
}

/// 1 when records count, 0 when monitoring is switched off (since ABI 1.6). Lock-free.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_is_enabled() -> i32 {
    i32::from(Monitor::global().is_enabled())
}

/// Records one finished operation (since ABI 1.0): its code (`CacheMonitorOperation` or a registered custom
/// code), its outcome (`CacheMonitorOutcome`), its duration in nanoseconds, and optionally its key (NULL
/// with length 0 for none; any bytes, NUL bytes and invalid UTF-8 included). Durations above
/// `CACHE_MONITOR_MAX_DURATION_NS` (about 73 minutes) are recorded as that ceiling, so that one "negative"
/// duration cannot make a histogram's sum fall. Lock-free; safe to call from any number of threads.
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
    // The common record is counted without a call, so that it needs no stack frame of its own, and
    // without an unwinding guard, because it cannot panic (`record_raw_without_call`). Every other record
    // goes on, guarded, to `record_in_full`, as a tail call. With a key and without, apart: neither then
    // keeps more of the arguments for its tail call than the caller-saved registers hold, and neither
    // saves registers for the other's sake.
    if key_len == 0 {
        record_without_key(op, result, duration_ns)
    } else {
        // SAFETY: as this function.
        unsafe { record_with_key(op, result, duration_ns, key, key_len) }
    }
}

/// `cache_monitor_record` of a record without a key (`key_len` is 0, whatever `key` is).
#[inline(never)]
extern "C" fn record_without_key(op: u32, result: u32, duration_ns: u64) -> i32 {
    if let Some(monitor) = Monitor::global_if_used()
        && monitor.record_raw_without_call(op, result, duration_ns, b"")
    {
        return CacheMonitorStatus::Ok as i32;
    }
    // SAFETY: no key.
    unsafe { record_in_full(op, result, duration_ns, std::ptr::null(), 0) }
}

/// `cache_monitor_record` of a record with a key (`key_len` is not 0).
///
/// # Safety
/// As `cache_monitor_record`.
#[inline(never)]
unsafe extern "C" fn record_with_key(op: u32, result: u32, duration_ns: u64, key: *const u8, key_len: usize) -> i32 {
    // SAFETY: the caller passes `key_len` readable bytes (or NULL, refused by `bytes` and in full).
    if let Ok(key) = unsafe { bytes(key, key_len) }
        && let Some(monitor) = Monitor::global_if_used()
        && monitor.record_raw_without_call(op, result, duration_ns, key)
    {
        return CacheMonitorStatus::Ok as i32;
    }
    // SAFETY: as this function.
    unsafe { record_in_full(op, result, duration_ns, key, key_len) }
}

/// `cache_monitor_record` of a record that needs a call (see there), or that is refused.
///
/// # Safety
/// As `cache_monitor_record`.
#[inline(never)]
unsafe extern "C" fn record_in_full(op: u32, result: u32, duration_ns: u64, key: *const u8, key_len: usize) -> i32 {
    // `move`: the arguments stay in registers instead of being spilled for the closure to borrow.
    guard_status(move || {
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = match unsafe { bytes(key, key_len) } {
            Ok(key) => key,
            Err(status) => return refuse(status),
        };
        let recorded = match Monitor::global_if_used() {
            Some(monitor) => monitor.record_raw(op, result, duration_ns, key, b""),
            None => record_into_new_global(op, result, duration_ns, key),
        };
        match recorded {
            Ok(()) => CacheMonitorStatus::Ok as i32,
            Err(refused) => refuse(refused),
        }
    })
}

/// The process's first use of the monitor through a record: makes the process-wide monitor, then records.
/// Apart, so that every other record makes no call that its values would have to be saved around.
#[cold]
#[inline(never)]
fn record_into_new_global(op: u32, result: u32, duration_ns: u64, key: &[u8]) -> Result<(), Refused> {
    Monitor::global().record_raw(op, result, duration_ns, key, b"")
}

/// Records one finished operation exactly as `cache_monitor_record` does (same validation, same counts)
/// and, when the profiler samples it, adds the host's logical call site to the sampled stack (since ABI
/// 1.3): `frames` is `frames_len` bytes, frames separated by `;`, outermost first (for example
/// `main.main;main.serve;cache.(*Cache).Get`), placed under the native frames and above the operation.
/// For hosts whose stacks cannot be unwound (Go through cgo). NULL with length 0 means no frames. Each
/// frame is cut to 128 bytes and the innermost frames are kept within 512 bytes.
///
/// `frames` is `const char *` where `key` is `const uint8_t *`, but both are length-delimited bytes: no
/// NUL terminator is read, and a NUL inside counts as a byte. The frames are meant to be UTF-8, and
/// they never cost the record: bytes that are not UTF-8 are shown as U+FFFD in the flamegraph, the record
/// counts and the call returns OK (since ABI 1.6; before, such a call returned `INVALID_UTF8` and
/// recorded nothing). The frames are only read when the record is sampled. Like `key`, a NULL `frames`
/// with a length is `NULL_POINTER` and an impossible length `INVALID_LENGTH`, and those records are not
/// counted.
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
        let frames = unsafe { bytes(frames.cast(), frames_len) }?;
        Ok(Monitor::global().record_codes_with_frames(op, result, duration_ns, key, frames)?)
    })
}

/// Records one finished operation exactly as `cache_monitor_record` does and makes `labels` the latest
/// exemplar of the histogram bucket it counts in (since ABI 1.6): OpenMetrics shows it on that bucket's
/// `_bucket` line (`# {trace_id="abc"} 0.0012 1700000000.123`: the labels, the duration in seconds, the
/// wall-clock time of the record), the protobuf exposition in that bucket. Exemplars stay in this
/// process (state files and snapshots do not carry them) and `cache_monitor_reset` forgets them.
///
/// `labels` is `labels_len` bytes of UTF-8 text (no NUL terminator is read): `name=value` lines separated
/// by `\n`, an optional `\n` after the last, for example `"trace_id=4bf92f3577b34da6\nspan_id=00f067aa"`.
/// A value runs to the end of its line, so it may hold `=` and `,` but not a line feed. NULL with length
/// 0 (or an empty text) is no labels: the exemplar carries its value and time alone. OpenMetrics' rules
/// apply: names `[a-zA-Z_][a-zA-Z0-9_]*` not beginning with `__`, no name twice, at most 128 characters
/// in the names and values together.
///
/// The labels are checked before anything is counted, and a refused call records nothing: text that is
/// not UTF-8 returns `INVALID_UTF8`; a line that is not `name=value`, a bad or repeated name or more
/// than 128 characters return `INVALID_EXEMPLAR`; otherwise the codes, key and pointers are refused as
/// `cache_monitor_record` refuses them. Lock-free and allocation-free like `cache_monitor_record`, with a
/// wall-clock read more; when another thread is writing the same bucket's exemplar at that instant, this
/// one's is dropped (the record still counts). Switched off, it returns OK and keeps nothing.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes; `labels` must be NULL or point to
/// `labels_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_record_with_exemplar(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
    labels: *const c_char,
    labels_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or `key_len` readable bytes.
        let key = unsafe { bytes(key, key_len) }?;
        // SAFETY: the caller passes NULL or `labels_len` readable bytes.
        let labels = unsafe { bytes(labels.cast(), labels_len) }?;
        let labels = std::str::from_utf8(labels).map_err(|_| CacheMonitorStatus::InvalidUtf8)?;
        let labels = exemplars::parse_text(labels)?;
        Ok(Monitor::global().record_codes_with_labels(op, result, duration_ns, key, labels)?)
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
    /// Outcome code: a `CacheMonitorOutcome`.
    pub result: u32,
    /// Duration of the operation in nanoseconds (above `CACHE_MONITOR_MAX_DURATION_NS`, recorded as that).
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
        let monitor = Monitor::global().batch();
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

/// Counts an operation as in flight until `cache_monitor_finish` (which may run on another thread) (since
/// ABI 1.0). In flight is counted per operation and never below zero: a `finish` without a `begin` does
/// not hide the operations of another kind in flight.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_begin(op: u32) -> i32 {
    guard(|| Ok(Monitor::global().begin(Operation::from_code(op))?))
}

/// Ends an operation started with `cache_monitor_begin` **and records it** (since ABI 1.6): the operation
/// stops counting as in flight, and it is recorded exactly as `cache_monitor_record` would record it. Do
/// not also call `cache_monitor_record` for it: that would count it twice. (Rust's `Monitor::end` only
/// ends; `Monitor::start` and its guard's `finish` are the Rust counterpart of begin and finish.) With a
/// valid `op` the operation stops counting as in flight even if the other arguments are refused: such a
/// call returns the refusal's code and records nothing.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_finish(
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

/// Deprecated name of `cache_monitor_finish` (since ABI 1.0; deprecated since 1.6): exactly the same
/// function, which ends the operation **and records it**. Unlike Rust's `Monitor::end`, it records, which
/// its name does not say; use `cache_monitor_finish`.
///
/// # Safety
/// `key` must be NULL or point to `key_len` readable bytes.
#[deprecated(note = "use cache_monitor_finish: it ends the operation and records it, as this does")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_end(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
) -> i32 {
    // SAFETY: the same arguments, under the same contract.
    unsafe { cache_monitor_finish(op, result, duration_ns, key, key_len) }
}

/// Sets a gauge the host owns (`CacheMonitorGauge`): the cache's size in bytes or its entry count (since
/// ABI 1.0).
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_set_gauge(gauge: u32, value: u64) -> i32 {
    guard(|| {
        let gauge = Gauge::from_code(gauge).ok_or(Error::UnknownGauge(gauge))?;
        Monitor::global().set_gauge(gauge, value);
        Ok(())
    })
}

/// Forgets every recorded operation and sampled stack and zeroes the gauges; operations in flight stay in
/// flight (since ABI 1.0).
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_reset() -> i32 {
    guard(|| {
        Monitor::global().reset();
        Ok(())
    })
}

/// Renders `format` from the process-wide monitor: the one place that says what each format is.
pub(crate) fn render_bytes(format: CacheMonitorFormat) -> Result<Vec<u8>, Error> {
    let monitor = Monitor::global();
    Ok(match format {
        CacheMonitorFormat::Prometheus => monitor.render_prometheus().into_bytes(),
        CacheMonitorFormat::Openmetrics => monitor.render_openmetrics().into_bytes(),
        CacheMonitorFormat::HitRateJson => monitor.render_hit_rate_json().into_bytes(),
        CacheMonitorFormat::StatsJson => monitor.render_stats_json().into_bytes(),
        CacheMonitorFormat::FlamegraphFolded => monitor.render_flamegraph_folded().into_bytes(),
        CacheMonitorFormat::FlamegraphSvg => monitor.render_flamegraph_svg()?.into_bytes(),
        CacheMonitorFormat::StateSnapshot => monitor.export_state().into_bytes(),
        CacheMonitorFormat::Protobuf => monitor.render_protobuf(),
    })
}

/// [`render_bytes`] of a text format (the binary protobuf exposition is refused as a failed render).
pub(crate) fn render(format: CacheMonitorFormat) -> Result<String, Error> {
    String::from_utf8(render_bytes(format)?)
        .map_err(|_| Error::Render(format!("{format:?} is not text: use cache_monitor_render_alloc")))
}

text_outputs! {
    /// Writes the Prometheus text exposition (format 0.0.4) to `buf` (since ABI 1.0).
    ///
    /// Buffer contract (shared by every `cache_monitor_render*` call but `cache_monitor_render_alloc`, as
    /// `snprintf`'s): `*len` receives the text's size in bytes, without a terminating NUL. If `cap` is
    /// greater than that, the text and a NUL are copied and the call returns OK, so a successful call
    /// always leaves a NUL-terminated text. Otherwise (`cap <= *len`: an exact fit leaves no room for the
    /// NUL) nothing is copied and it returns `CACHE_MONITOR_STATUS_BUFFER_TOO_SMALL`; call again with a
    /// buffer of `*len + 1` bytes or more, since the text grows as counts grow. `buf` may be NULL when
    /// `cap` is 0, to ask for the size alone. Each call renders anew: `cache_monitor_render_alloc` renders
    /// once. (Before ABI 1.6 an exact fit returned OK without a NUL.)
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::Prometheus)?
    }

    /// Writes the OpenMetrics 1.0.0 exposition to `buf`, with the buffer contract of `cache_monitor_render`
    /// (since ABI 1.0).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_openmetrics(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::Openmetrics)?
    }

    /// Writes the hit-rate report as JSON (rolling windows, operations, key patterns; schema in the README),
    /// with the buffer contract of `cache_monitor_render` (since ABI 1.1).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_hit_rate_json(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::HitRateJson)?
    }

    /// Writes the real-time stats report as JSON (in flight, operations per second, latencies, alerts; schema
    /// in the README), with the buffer contract of `cache_monitor_render` (since ABI 1.1).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_stats_json(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::StatsJson)?
    }

    /// Writes everything the library has counted since its last reset (its own and imported state) as a
    /// versioned snapshot for `cache_monitor_import_state` of another copy of the library, with the buffer
    /// contract of `cache_monitor_render` (since ABI 1.2). The swap protocol is in the README.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_export_state(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::StateSnapshot)?
    }
}

/// Adds a snapshot from `cache_monitor_export_state` of another copy of the library to this one's
/// counts (since ABI 1.2). A second snapshot from the same source replaces the first. Malformed snapshots
/// return `CACHE_MONITOR_STATUS_INVALID_SNAPSHOT`, other formats or versions
/// `CACHE_MONITOR_STATUS_FOREIGN_SNAPSHOT`, a configuration that cannot be merged
/// `CACHE_MONITOR_STATUS_INCOMPATIBLE_SNAPSHOT`, a new source when the most sources are imported already
/// `CACHE_MONITOR_STATUS_TOO_MANY_IMPORT_SOURCES` (both `BUSY` before ABI 1.6). NULL `data` is
/// `NULL_POINTER`, whatever `len`.
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
/// so that the library can be unloaded with `dlclose` (since ABI 1.2). Recording and rendering keep
/// working afterwards.
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
    /// `cache_monitor_render` (since ABI 1.3). Weighted by samples or by total microseconds
    /// (`profiler.weight`); empty until sampling is configured (`{"profiler": {"sample_every": 100}}`).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_flamegraph_folded(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::FlamegraphFolded)?
    }

    /// Writes the sampled stacks as an SVG flamegraph to `buf`, with the buffer contract of
    /// `cache_monitor_render` (since ABI 1.3). With no stack to draw it is a small SVG that says why
    /// (sampling off, no sample yet) and how to turn sampling on (`{"profiler": {"sample_every": 100}}`).
    /// It is drawn on a short-lived thread of the library's own, joined before the call returns (so that
    /// nothing the drawing leaves in thread-local storage outlives it). A drawing that fails returns
    /// `RENDER_FAILED` (`INTERNAL` before ABI 1.6).
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_render_flamegraph_svg(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        render(CacheMonitorFormat::FlamegraphSvg)?
    }

    /// Writes the message of the calling thread's most recent failed call (empty if none of its calls
    /// failed) to `buf`, with the buffer contract of `cache_monitor_render` (since ABI 1.0). Per thread since
    /// ABI 1.6 (process-wide before): read it on the thread whose call failed. A successful call does not
    /// clear it, and failures with `BUFFER_TOO_SMALL` do not replace it. At most 256 bytes, and quoted
    /// input inside it (a refused value, key or address) at most 64 bytes, marked `...` where cut.
    ///
    /// # Safety
    /// `buf` must be NULL or writable for `cap` bytes; `len` must be NULL or writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cache_monitor_last_error(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
        boundary::last_error()
    }
}

/// Starts the HTTP exporter (since ABI 1.4): serves the process-wide monitor's metrics on `addr`, an
/// `IP:port` such as `"127.0.0.1:9464"` or `"[::1]:9464"`, without surrounding spaces; NULL or `""`
/// means `127.0.0.1:9464`, port 0 picks a free port (see `cache_monitor_serve_address`). Endpoints: `/`
/// (index), `/metrics` (text 0.0.4, OpenMetrics on request, gzip when accepted), `/hit-rate.json`,
/// `/stats.json`, `/flamegraph.svg`, `/flamegraph.folded`. Authentication and limits come from the
/// configuration's `"http"` section. The exporter runs on one thread of its own until
/// `cache_monitor_serve_stop`.
///
/// Returns `INVALID_ADDRESS` for an address that is not `IP:port` (since ABI 1.6 also one with spaces
/// around it, which was trimmed before), `ALREADY_SERVING` if the exporter runs, `BIND_FAILED` if the
/// address cannot be bound (see `cache_monitor_last_error`), `SERVE_FAILED` if its thread cannot start,
/// and `EXPORTER_NOT_BUILT`, whatever the address, when the library was built without the exporter
/// (since ABI 1.5).
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

/// Stops the HTTP exporter (since ABI 1.4): closes its listener and connections and joins its thread,
/// so the library can be unloaded once this returns; a host that `dlclose`s the library must call it
/// (or `cache_monitor_shutdown`) first. Responses in progress get up to two seconds. Returns OK, also when
/// the exporter was not serving; `EXPORTER_NOT_BUILT` when the library was built without the exporter
/// (since ABI 1.5).
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
    /// to `buf`, with the buffer contract of `cache_monitor_render` (since ABI 1.4). Returns `NOT_SERVING`
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

/// Describes a status code (since ABI 1.0). Never NULL: unknown codes get a generic description. The text
/// is static and lives as long as the library stays loaded.
#[unsafe(no_mangle)]
pub extern "C" fn cache_monitor_strerror(code: i32) -> *const c_char {
    CacheMonitorStatus::from_code(code)
        .map_or(c"unknown status code", CacheMonitorStatus::description)
        .as_ptr()
}

/// Renders `format` (a `CacheMonitorFormat`) once into a new buffer that the library allocates (since
/// ABI 1.6): on OK, `*out` points to the text followed by a NUL and `*len` is its size without the NUL.
/// Release the buffer with `cache_monitor_free` (not `free`, in case the host's allocator is another).
/// Unlike the buffer contract of `cache_monitor_render`, the text is rendered exactly once: no size query,
/// no retry, no second symbolisation of an SVG or serialisation of a state snapshot.
///
/// On failure `*out` is NULL and `*len` 0 (when they are not NULL themselves) and nothing needs freeing:
/// `NULL_POINTER` for a NULL `out` or `len`, `UNKNOWN_FORMAT` for a code that is not a
/// `CacheMonitorFormat`, `RENDER_FAILED` when the render (or the allocation) fails.
///
/// # Safety
/// `out` must be NULL or writable for one pointer; `len` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_render_alloc(format: u32, out: *mut *mut u8, len: *mut usize) -> i32 {
    if !out.is_null() {
        // SAFETY: non-null, and writable by the caller's contract.
        unsafe { out.write(std::ptr::null_mut()) };
    }
    if !len.is_null() {
        // SAFETY: non-null, and writable by the caller's contract.
        unsafe { len.write(0) };
    }
    guard(|| {
        if out.is_null() || len.is_null() {
            return Err(CacheMonitorStatus::NullPointer.into());
        }
        let format = CacheMonitorFormat::from_code(format).ok_or(Failure::UnknownFormat(format))?;
        let body = render_bytes(format)?;
        // SAFETY: `out` and `len` are non-null (checked above) and writable by the caller's contract.
        unsafe { write_allocated(&body, out, len) }
    })
}

/// Releases a buffer that `cache_monitor_render_alloc` returned (since ABI 1.6). NULL is accepted and does
/// nothing. Any thread may release any buffer; each exactly once.
///
/// # Safety
/// `ptr` must be NULL or a buffer from `cache_monitor_render_alloc` of this library that was not released
/// yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cache_monitor_free(ptr: *mut u8) {
    // SAFETY: `ptr` is NULL (which `free` accepts) or came from `malloc` in `write_allocated` and was not
    // released yet, by the caller's contract.
    unsafe { libc::free(ptr.cast()) }
}

/// Signature of `cache_monitor_abi_version`, for hosts that look functions up with `dlsym`.
pub type CacheMonitorAbiVersionFn = extern "C" fn() -> u32;
/// Signature of `cache_monitor_configure`.
pub type CacheMonitorConfigureFn = unsafe extern "C" fn(json: *const c_char) -> i32;
/// Signature of `cache_monitor_record`, `cache_monitor_finish` and `cache_monitor_end`.
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
/// Signature of `cache_monitor_record_with_exemplar` (since ABI 1.6).
pub type CacheMonitorRecordWithExemplarFn = unsafe extern "C" fn(
    op: u32,
    result: u32,
    duration_ns: u64,
    key: *const u8,
    key_len: usize,
    labels: *const c_char,
    labels_len: usize,
) -> i32;
/// Signature of `cache_monitor_record_batch`.
pub type CacheMonitorRecordBatchFn =
    unsafe extern "C" fn(records: *const CacheMonitorRecord, count: usize, recorded: *mut usize) -> i32;
/// Signature of `cache_monitor_set_enabled` (since ABI 1.6).
pub type CacheMonitorSetEnabledFn = extern "C" fn(enabled: i32) -> i32;
/// Signature of `cache_monitor_is_enabled` (since ABI 1.6).
pub type CacheMonitorIsEnabledFn = extern "C" fn() -> i32;
/// Signature of `cache_monitor_begin`.
pub type CacheMonitorBeginFn = extern "C" fn(op: u32) -> i32;
/// Signature of `cache_monitor_set_gauge`.
pub type CacheMonitorSetGaugeFn = extern "C" fn(gauge: u32, value: u64) -> i32;
/// Signature of `cache_monitor_reset` and `cache_monitor_shutdown`.
pub type CacheMonitorResetFn = extern "C" fn() -> i32;
/// Signature of every `cache_monitor_render*` function but `_alloc`, `cache_monitor_last_error`,
/// `cache_monitor_export_state` and `cache_monitor_serve_address`.
pub type CacheMonitorRenderFn = unsafe extern "C" fn(buf: *mut u8, cap: usize, len: *mut usize) -> i32;
/// Signature of `cache_monitor_render_alloc` (since ABI 1.6).
pub type CacheMonitorRenderAllocFn = unsafe extern "C" fn(format: u32, out: *mut *mut u8, len: *mut usize) -> i32;
/// Signature of `cache_monitor_free` (since ABI 1.6).
pub type CacheMonitorFreeFn = unsafe extern "C" fn(ptr: *mut u8);
/// Signature of `cache_monitor_import_state`.
pub type CacheMonitorImportStateFn = unsafe extern "C" fn(data: *const u8, len: usize) -> i32;
/// Signature of `cache_monitor_strerror`.
pub type CacheMonitorStrerrorFn = extern "C" fn(code: i32) -> *const c_char;
/// Signature of `cache_monitor_version_string` (since ABI 1.6).
pub type CacheMonitorVersionStringFn = extern "C" fn() -> *const c_char;
/// Signature of `cache_monitor_serve`.
pub type CacheMonitorServeFn = unsafe extern "C" fn(addr: *const c_char) -> i32;
/// Signature of `cache_monitor_serve_stop`.
pub type CacheMonitorServeStopFn = extern "C" fn() -> i32;

/// Compile-time proof that the exported functions have the signatures the typedefs promise.
#[allow(deprecated)]
const _: () = {
    let _: CacheMonitorAbiVersionFn = cache_monitor_abi_version;
    let _: CacheMonitorVersionStringFn = cache_monitor_version_string;
    let _: CacheMonitorConfigureFn = cache_monitor_configure;
    let _: CacheMonitorRecordFn = cache_monitor_record;
    let _: CacheMonitorRecordFn = cache_monitor_finish;
    let _: CacheMonitorRecordFn = cache_monitor_end;
    let _: CacheMonitorRecordWithFramesFn = cache_monitor_record_with_frames;
    let _: CacheMonitorRecordWithExemplarFn = cache_monitor_record_with_exemplar;
    let _: CacheMonitorRecordBatchFn = cache_monitor_record_batch;
    let _: CacheMonitorSetEnabledFn = cache_monitor_set_enabled;
    let _: CacheMonitorIsEnabledFn = cache_monitor_is_enabled;
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
    let _: CacheMonitorRenderAllocFn = cache_monitor_render_alloc;
    let _: CacheMonitorFreeFn = cache_monitor_free;
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

    #[test]
    fn the_version_string_names_the_crate_and_the_abi() {
        // SAFETY: `cache_monitor_version_string` returns a pointer to a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(cache_monitor_version_string()) };
        let expected = format!(
            "cache-monitor {} (C ABI {}.{})",
            env!("CARGO_PKG_VERSION"),
            CACHE_MONITOR_ABI_VERSION_MAJOR,
            CACHE_MONITOR_ABI_VERSION_MINOR
        );
        assert_eq!(text.to_str(), Ok(expected.as_str()));
        assert_eq!(VERSION_TEXT, expected);
    }

    #[test]
    fn render_alloc_renders_the_binary_protobuf_exposition_whole() {
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len = 0;
        // SAFETY: `out` and `len` are live locals.
        let status = unsafe { cache_monitor_render_alloc(CacheMonitorFormat::Protobuf as u32, &mut out, &mut len) };
        assert_eq!(status, 0);
        // SAFETY: `out` holds `len + 1` bytes from `cache_monitor_render_alloc`, released right after.
        let body = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        // SAFETY: from `cache_monitor_render_alloc`, released once.
        unsafe { cache_monitor_free(out) };
        let families = crate::render::protobuf::decode(&body).expect("length-delimited messages");
        assert!(
            families
                .iter()
                .any(|f| f.name.as_deref() == Some("cuenv_cache_operations_total"))
        );
        assert!(
            render(CacheMonitorFormat::Protobuf).is_err() || body.is_ascii(),
            "not a text"
        );
    }

    #[test]
    fn render_alloc_refusals_leave_nothing_to_free() {
        let mut out: *mut u8 = std::ptr::dangling_mut();
        let mut len = usize::MAX;
        // SAFETY (every call below): `out` and `len` are live locals or NULL.
        let status = unsafe { cache_monitor_render_alloc(8, &mut out, &mut len) };
        assert_eq!(
            (status, out.is_null(), len),
            (CacheMonitorStatus::UnknownFormat as i32, true, 0)
        );
        assert_eq!(boundary::last_error(), "unknown render format code 8");
        let status = unsafe { cache_monitor_render_alloc(0, std::ptr::null_mut(), &mut len) };
        assert_eq!(status, CacheMonitorStatus::NullPointer as i32);
        out = std::ptr::dangling_mut();
        let status = unsafe { cache_monitor_render_alloc(0, &mut out, std::ptr::null_mut()) };
        assert_eq!((status, out.is_null()), (CacheMonitorStatus::NullPointer as i32, true));
        let status =
            unsafe { cache_monitor_render_alloc(CacheMonitorFormat::FlamegraphFolded as u32, &mut out, &mut len) };
        assert_eq!(status, 0);
        // SAFETY: `out` holds `len + 1` bytes from `cache_monitor_render_alloc`.
        assert_eq!(unsafe { *out.add(len) }, 0, "NUL-terminated");
        // SAFETY: from `cache_monitor_render_alloc`, released once; NULL is accepted.
        unsafe {
            cache_monitor_free(out);
            cache_monitor_free(std::ptr::null_mut());
        }
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
        let hit = CacheMonitorOutcome::Hit as u32;
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
