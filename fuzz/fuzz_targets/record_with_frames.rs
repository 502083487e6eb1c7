//! `record_with_frames`: keys, frames, codes and durations through the C ABI's
//! `cache_monitor_record_with_frames`, into the process-wide monitor (reset before every input), then
//! every render read back through the C ABI's buffer contract.
//!
//! Checked:
//! - a record with valid codes, a readable key and UTF-8 frames returns OK; an OK record had valid codes,
//!   a readable key and readable frames (a NULL pointer with a length is `NULL_POINTER`, not counted);
//! - the rendered `operations_total` is at least the OK records and at most those with valid codes and
//!   a readable key and frames (exactly the latter with `strict`: issue 14, item 4, a record with bad frames counts);
//! - the Prometheus text and OpenMetrics parse strictly (no raw line feed in a label value, every label
//!   escaped), histograms are consistent (`_count` equals `+Inf`), the texts are UTF-8 and hold no raw
//!   NUL (issue 14, item 13), `_sum` is at least the longest duration recorded, clamped (issue 14,
//!   item 7, wrapping durations);
//! - when the input asks for sampling (every record, so the frames are cut and stored in the stack
//!   table), the profiler took exactly one sample per record counted.
//!
//! The folded flamegraph is not rendered here: symbolising the native stacks takes 0.1 to 1 s per render
//! and, being instrumented code, drew the whole corpus to inputs that render it. How frames are made
//! safe for a folded line is unit-tested in `src/profiler/folded.rs`.
//!
//! The pattern table is process-wide and keeps learned patterns across resets (at most 64), so after a
//! long run most keys count as `other`: an input replayed alone can take other paths.

#![no_main]

use std::ffi::CString;
use std::sync::Once;

use cache_monitor::Monitor;
use cache_monitor::ffi::{
    CacheMonitorStatus, cache_monitor_configure, cache_monitor_record_with_frames, cache_monitor_render,
    cache_monitor_render_openmetrics, cache_monitor_reset,
};
use cache_monitor_fuzz::{check_text, known_defect, total};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// Records read from one input; later ones are ignored.
const MAX_RECORDS: usize = 32;
/// Operation codes accepted: the 7 built-in ones and the 2 custom ones configured at start.
const OPERATIONS: u32 = 9;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Bit 0: sample every record (so frames reach the profiler); bits 1-2: pattern depth - 1.
    setup: u8,
    records: Vec<Record>,
}

#[derive(Arbitrary, Debug)]
struct Record {
    operation: u8,
    result: u8,
    duration_ns: u64,
    key: Vec<u8>,
    frames: Vec<u8>,
    /// Pass NULL instead of the key (with its length).
    null_key: bool,
    /// Pass NULL instead of the frames (with their length).
    null_frames: bool,
}

fuzz_target!(|input: Input| run(&input));

fn configure(json: &str) {
    let json = CString::new(json).expect("no NUL in a literal");
    // SAFETY: a NUL-terminated string that outlives the call.
    let status = unsafe { cache_monitor_configure(json.as_ptr()) };
    assert_eq!(status, CacheMonitorStatus::Ok as i32, "configure {json:?}");
}

fn run(input: &Input) {
    static START: Once = Once::new();
    START.call_once(|| configure(r#"{"namespace": "fuzz", "operations": ["compact", "warm"]}"#));
    let sampling = input.setup & 1 == 1;
    let depth = 1 + (input.setup >> 1 & 3);
    configure(&format!(
        r#"{{"profiler": {{"sample_every": {}}}, "patterns": {{"depth": {depth}}}}}"#,
        u8::from(sampling)
    ));
    assert_eq!(cache_monitor_reset(), CacheMonitorStatus::Ok as i32);

    let (mut ok, mut countable, mut longest) = (0u64, 0u64, 0u64);
    for record in input.records.iter().take(MAX_RECORDS) {
        let key = if record.null_key {
            std::ptr::null()
        } else {
            record.key.as_ptr()
        };
        let frames = if record.null_frames {
            std::ptr::null()
        } else {
            record.frames.as_ptr()
        };
        // SAFETY: each pointer is NULL or points to the given number of readable bytes, alive for the call.
        let status = unsafe {
            cache_monitor_record_with_frames(
                u32::from(record.operation),
                u32::from(record.result),
                record.duration_ns,
                key,
                record.key.len(),
                frames.cast(),
                record.frames.len(),
            )
        };
        // A NULL pointer with a length is NULL_POINTER for the frames as for the key (not counted);
        // frames that are not UTF-8 never cost the record (issue 14, item 4).
        let readable_key = !record.null_key || record.key.is_empty();
        let readable_frames = !record.null_frames || record.frames.is_empty();
        let valid_codes = u32::from(record.operation) < OPERATIONS && record.result < 4;
        let good_frames = readable_frames && std::str::from_utf8(&record.frames).is_ok();
        let countable_record = readable_key && valid_codes && readable_frames;
        if readable_key && valid_codes && good_frames {
            assert_eq!(
                status,
                CacheMonitorStatus::Ok as i32,
                "a valid record refused: {record:?}"
            );
        }
        if status == CacheMonitorStatus::Ok as i32 {
            assert!(countable_record, "an invalid record accepted: {record:?}");
            ok += 1;
            longest = longest.max(cache_monitor::config::clamp_duration(record.duration_ns));
        }
        countable += u64::from(countable_record);
    }

    let text = render(cache_monitor_render);
    let parsed = check_text(&text, None);
    let counted = total(&parsed, "fuzz_operations_total");
    assert!(
        ok as f64 <= counted && counted <= countable as f64,
        "{counted} counted: {ok} records OK, {countable} with valid codes and key"
    );
    known_defect(
        counted == countable as f64,
        "4 (frames that are not UTF-8 cost the record)",
        || format!("{counted} counted, {countable} records with valid codes and a readable key"),
    );
    let sum = total(&parsed, "fuzz_operation_duration_seconds_sum");
    known_defect(sum * 1e9 >= longest as f64 * (1.0 - 1e-9), "7 (durations wrap)", || {
        format!("_sum {sum} s after a record of {longest} ns")
    });
    check_text(&render(cache_monitor_render_openmetrics), None);

    if sampling {
        let samples = Monitor::global().profiler_stats().samples;
        assert_eq!(samples as f64, counted, "every record counted is sampled once");
    }
}

/// The text of one `cache_monitor_render*` call, through the buffer contract: ask for the size, then
/// render into a buffer of that size plus the NUL, retrying if the text outgrew it meanwhile.
fn render(function: unsafe extern "C" fn(*mut u8, usize, *mut usize) -> i32) -> String {
    let mut len = 0usize;
    // SAFETY: NULL with capacity 0 asks for the size; `len` is a live local.
    let status = unsafe { function(std::ptr::null_mut(), 0, &mut len) };
    assert!(
        status == CacheMonitorStatus::BufferTooSmall as i32 || (status == 0 && len == 0),
        "size query: {status}"
    );
    loop {
        let mut buffer = vec![0xAAu8; len + 1];
        // SAFETY: `buffer` is writable for its length; `len` is a live local.
        let status = unsafe { function(buffer.as_mut_ptr(), buffer.len(), &mut len) };
        if status == CacheMonitorStatus::BufferTooSmall as i32 {
            continue;
        }
        assert_eq!(status, CacheMonitorStatus::Ok as i32, "render");
        // The text can grow between the two calls (the process-wide monitor's windows follow the real
        // clock) until it fills the buffer exactly: then, as documented, there is no NUL.
        assert!(
            len == buffer.len() || buffer[len] == 0,
            "NUL-terminated when there is room"
        );
        buffer.truncate(len);
        return String::from_utf8(buffer).unwrap_or_else(|e| panic!("a render is not UTF-8: {e}"));
    }
}
