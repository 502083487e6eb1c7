//! What every C entry point does at the boundary: catch panics, read arguments safely, write outputs with
//! the snprintf-style buffer contract, and keep each thread's last error message.

use std::cell::Cell;
use std::ffi::{CStr, c_char};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::CacheMonitorStatus;
use crate::error::{Error, QuoteLimiter};
use crate::recording::exemplars::ExemplarError;

/// The longest last-error message kept, in bytes; longer messages are cut (at a character boundary) and
/// end with `...`. Quoted input inside a message is cut sooner (`error::QUOTED_INPUT_BYTES`).
pub(crate) const LAST_ERROR_BYTES: usize = 256;

/// A thread's last error message: a fixed buffer and the length used.
///
/// Per thread, so that two threads failing at once each read their own message; plain `Cell`s of plain
/// data, `const`-initialised, so the thread-local needs no destructor (a thread-local destructor
/// registered on a host thread would keep `dlclose` from unloading the library: see `os_thread`) and a
/// failing call takes no lock and allocates nothing.
struct LastError {
    bytes: Cell<[u8; LAST_ERROR_BYTES]>,
    len: Cell<usize>,
}

thread_local! {
    static LAST_ERROR: LastError = const {
        LastError {
            bytes: Cell::new([0; LAST_ERROR_BYTES]),
            len: Cell::new(0),
        }
    };
}

/// Checked at compile time: the thread-local above registers no destructor.
const _: () = assert!(!std::mem::needs_drop::<LastError>());

/// A `fmt::Write` into a fixed buffer that keeps what fits, cut at a character boundary, and remembers
/// that it cut.
struct FixedText {
    bytes: [u8; LAST_ERROR_BYTES],
    len: usize,
    cut: bool,
}

/// Bytes [`FixedText`] keeps free for the `...` that marks a cut message.
const CUT_MARK: &str = "...";

impl FixedText {
    fn new() -> Self {
        Self {
            bytes: [0; LAST_ERROR_BYTES],
            len: 0,
            cut: false,
        }
    }

    /// The text, with `...` at the end when it was cut.
    fn finish(mut self) -> ([u8; LAST_ERROR_BYTES], usize) {
        if self.cut {
            // Only whole characters of `&str`s were copied in, so the bytes are UTF-8.
            let text = std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default();
            let end = text.floor_char_boundary(LAST_ERROR_BYTES - CUT_MARK.len());
            self.bytes[end..end + CUT_MARK.len()].copy_from_slice(CUT_MARK.as_bytes());
            self.len = end + CUT_MARK.len();
        }
        (self.bytes, self.len)
    }
}

impl std::fmt::Write for FixedText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if self.cut {
            return Ok(());
        }
        let room = LAST_ERROR_BYTES - self.len;
        let take = if text.len() <= room {
            text.len()
        } else {
            self.cut = true;
            text.floor_char_boundary(room)
        };
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Why a C call failed: a library error (with its message), a bad argument, or a format code that is
/// not one (a C ABI concept the Rust API has no error for).
pub(crate) enum Failure {
    Error(Error),
    Status(CacheMonitorStatus),
    UnknownFormat(u32),
    /// An exemplar's label set, refused without allocating (records allocate nothing, failing or not).
    Exemplar(ExemplarError),
}

impl From<ExemplarError> for Failure {
    #[cold]
    fn from(error: ExemplarError) -> Self {
        Self::Exemplar(error)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Error(error)
    }
}

impl From<crate::monitor::Refused> for Failure {
    #[cold]
    fn from(refused: crate::monitor::Refused) -> Self {
        Self::Error(refused.into())
    }
}

impl From<CacheMonitorStatus> for Failure {
    fn from(status: CacheMonitorStatus) -> Self {
        Self::Status(status)
    }
}

/// Runs `body`, turning its result into a status code; a panic becomes `Internal` instead of unwinding
/// into the host (which would abort it).
#[inline(always)]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match guarded(body) {
        Ok(()) => CacheMonitorStatus::Ok as i32,
        Err(status) => status,
    }
}

/// [`guard`] for the hot path: `body` returns the status code itself, its failures through [`refuse`], so
/// that no `Result` holding a [`Failure`] (several words, through memory) is built or moved on the way.
#[inline(always)]
pub(crate) fn guard_status(body: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(_) => fail(Failure::Status(CacheMonitorStatus::Internal)),
    }
}

/// The status of `failure`, its message kept as the calling thread's last error (for the bodies of
/// [`guard_status`]).
#[cold]
#[inline(never)]
pub(crate) fn refuse(failure: impl Into<Failure>) -> i32 {
    fail(failure.into())
}

/// [`guard`] for a body that produces a value: the value, or the status of its failure (whose message is
/// then the calling thread's last error).
#[inline(always)]
pub(crate) fn guarded<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, i32> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => Err(fail(failure)),
        Err(_) => Err(fail(Failure::Status(CacheMonitorStatus::Internal))),
    }
}

/// The status of `failure`, after keeping its message as the calling thread's last error (except for
/// `BufferTooSmall`, the normal first step of the buffer contract). Takes no lock and allocates nothing
/// of its own: the message is formatted straight into a fixed buffer, quoted input cut short.
#[cold]
fn fail(failure: Failure) -> i32 {
    let status = match &failure {
        Failure::Error(error) => CacheMonitorStatus::from(error),
        Failure::Status(status) => *status,
        Failure::UnknownFormat(_) => CacheMonitorStatus::UnknownFormat,
        Failure::Exemplar(_) => CacheMonitorStatus::InvalidExemplar,
    };
    if status != CacheMonitorStatus::BufferTooSmall {
        let mut text = QuoteLimiter::new(FixedText::new());
        let _ = match &failure {
            Failure::Error(error) => write!(text, "{error}"),
            Failure::Status(status) => text.write_str(&status.description().to_string_lossy()),
            Failure::UnknownFormat(code) => write!(text, "unknown render format code {code}"),
            // The same text as `Error::InvalidExemplar`'s.
            Failure::Exemplar(error) => write!(text, "invalid exemplar: {error}"),
        };
        let (bytes, len) = text.into_inner().finish();
        // `try_with` fails only while the thread's thread-locals are being torn down; the message is then
        // lost, the status is not.
        let _ = LAST_ERROR.try_with(|last| {
            last.bytes.set(bytes);
            last.len.set(len);
        });
    }
    status as i32
}

/// The message of the calling thread's most recent failed call, empty if none of its calls failed.
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|last| String::from_utf8_lossy(&last.bytes.get()[..last.len.get()]).into_owned())
        .unwrap_or_default()
}

/// Borrows `len` bytes at `ptr`; NULL is accepted with length zero.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` readable bytes that stay unchanged during the call.
#[inline(always)]
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], CacheMonitorStatus> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(CacheMonitorStatus::NullPointer)
        };
    }
    if len > isize::MAX as usize {
        return Err(CacheMonitorStatus::InvalidLength);
    }
    // SAFETY: `ptr` is non-null and, by this function's contract, points to `len` readable bytes that do
    // not change while borrowed; `len <= isize::MAX` was checked above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows a NUL-terminated UTF-8 string.
///
/// # Safety
/// Unless NULL, `ptr` must point to a NUL-terminated string that stays unchanged during the call.
pub(crate) unsafe fn utf8<'a>(ptr: *const c_char) -> Result<&'a str, CacheMonitorStatus> {
    if ptr.is_null() {
        return Err(CacheMonitorStatus::NullPointer);
    }
    // SAFETY: non-null, and NUL-terminated and stable by this function's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|_| CacheMonitorStatus::InvalidUtf8)
}

/// Copies `text` to the host's buffer with the snprintf-style contract:
///
/// - `*len` always receives the size of the text in bytes, without a terminating NUL;
/// - if the text and its NUL fit (`len < cap`), both are copied and the call succeeds, so a successful
///   call always leaves a NUL-terminated text;
/// - if not (`cap <= len`: an exact fit leaves no room for the NUL), nothing is copied and the call fails
///   with `BufferTooSmall`, so the host can retry with a buffer of `*len + 1` bytes. `buf` may be NULL when
///   `cap` is 0, to ask for the size alone.
///
/// # Safety
/// Unless NULL, `buf` must be writable for `cap` bytes and `len` writable for one `size_t`.
pub(crate) unsafe fn write_text(text: &[u8], buf: *mut u8, cap: usize, len: *mut usize) -> Result<(), Failure> {
    if len.is_null() || (buf.is_null() && cap != 0) {
        return Err(CacheMonitorStatus::NullPointer.into());
    }
    // SAFETY: `len` is non-null and writable by this function's contract.
    unsafe { len.write(text.len()) };
    if text.len() >= cap {
        return Err(CacheMonitorStatus::BufferTooSmall.into());
    }
    // SAFETY: `cap > text.len() >= 0`, so `buf` is non-null (a NULL `buf` comes with `cap == 0`) and writable
    // for `cap >= text.len() + 1` bytes; a Rust string cannot overlap the host's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len());
        buf.add(text.len()).write(0);
    }
    Ok(())
}

/// Copies `text` into a new buffer from the C allocator (`malloc`), NUL-terminated, for
/// `cache_monitor_render_alloc`: `*out` receives it and `*len` its size without the NUL. The host releases
/// it with `cache_monitor_free`.
///
/// # Safety
/// `out` and `len` must be writable (their NULL checks are the caller's).
pub(crate) unsafe fn write_allocated(text: &[u8], out: *mut *mut u8, len: *mut usize) -> Result<(), Failure> {
    // SAFETY: `malloc` may be called with any size; a NULL result is handled below.
    let copy = unsafe { libc::malloc(text.len() + 1) }.cast::<u8>();
    if copy.is_null() {
        return Err(Error::Render(format!("out of memory for a text of {} bytes", text.len())).into());
    }
    // SAFETY: `copy` is a fresh allocation of `text.len() + 1` bytes, which cannot overlap `text`; `out` and
    // `len` are writable by this function's contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), copy, text.len());
        copy.add(text.len()).write(0);
        out.write(copy);
        len.write(text.len());
    }
    Ok(())
}

/// Defines C entry points that write a text to the host's buffer, with [`guard`] around them and the
/// buffer contract of [`write_text`]: every `cache_monitor_render*` function but `_alloc`,
/// `cache_monitor_export_state`, `cache_monitor_last_error` and `cache_monitor_serve_address`.
///
/// Each definition is written out in full, doc comment and signature as the header shows them, with a body
/// that evaluates to the text (a `String`; `?` returns an error status):
///
/// ```text
/// text_outputs! {
///     /// Writes the Prometheus text exposition ...
///     #[unsafe(no_mangle)]
///     pub unsafe extern "C" fn cache_monitor_render(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
///         Monitor::global().render_prometheus()
///     }
/// }
/// ```
///
/// cbindgen does not expand macros, so `build.rs` hands it `src/ffi/mod.rs` with the `text_outputs! {`
/// line and its closing `}` line taken out: the definitions inside are then plain functions to it, and the
/// header keeps every symbol with its documentation.
macro_rules! text_outputs {
    ($(
        $(#[doc = $doc:literal])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name:ident(buf: *mut u8, cap: usize, len: *mut usize) -> i32 $text:block
    )*) => {$(
        $(#[doc = $doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
            $crate::ffi::boundary::guard(|| {
                let text: String = $text;
                // SAFETY: the caller's contract, stated in the doc comment of every text output: `buf` is
                // NULL or writable for `cap` bytes, and `len` is NULL or writable.
                unsafe { $crate::ffi::boundary::write_text(text.as_bytes(), buf, cap, len) }
            })
        }
    )*};
}

pub(crate) use text_outputs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_text_follows_the_buffer_contract() {
        let mut len = 0usize;
        // SAFETY (all calls below): buffers and `len` are live locals of the sizes passed.
        let size_query = unsafe { write_text(b"hello", std::ptr::null_mut(), 0, &mut len) };
        assert!(matches!(
            size_query,
            Err(Failure::Status(CacheMonitorStatus::BufferTooSmall))
        ));
        assert_eq!(len, 5);

        let mut exact = [0xAAu8; 5];
        let exact_fit = unsafe { write_text(b"hello", exact.as_mut_ptr(), 5, &mut len) };
        assert!(
            matches!(exact_fit, Err(Failure::Status(CacheMonitorStatus::BufferTooSmall))),
            "no room for the NUL"
        );
        assert_eq!((exact, len), ([0xAA; 5], 5), "nothing written to an exact fit");

        let mut just = [0xAAu8; 6];
        assert!(unsafe { write_text(b"hello", just.as_mut_ptr(), 6, &mut len) }.is_ok());
        assert_eq!((&just, len), (b"hello\0", 5));

        let mut roomy = [0xAAu8; 8];
        assert!(unsafe { write_text(b"hello", roomy.as_mut_ptr(), 8, &mut len) }.is_ok());
        assert_eq!(&roomy, b"hello\0\xAA\xAA");

        let empty_query = unsafe { write_text(b"", std::ptr::null_mut(), 0, &mut len) };
        assert!(matches!(
            empty_query,
            Err(Failure::Status(CacheMonitorStatus::BufferTooSmall))
        ));
        assert_eq!(len, 0);
        let mut one = [0xAAu8; 1];
        assert!(unsafe { write_text(b"", one.as_mut_ptr(), 1, &mut len) }.is_ok());
        assert_eq!((one, len), ([0], 0), "an empty text is a lone NUL");

        let mut small = [0xAAu8; 4];
        assert!(unsafe { write_text(b"hello", small.as_mut_ptr(), 4, &mut len) }.is_err());
        assert_eq!(small, [0xAA; 4], "nothing written on failure");

        let missing_len = unsafe { write_text(b"x", roomy.as_mut_ptr(), 8, std::ptr::null_mut()) };
        assert!(matches!(
            missing_len,
            Err(Failure::Status(CacheMonitorStatus::NullPointer))
        ));
        let missing_buf = unsafe { write_text(b"x", std::ptr::null_mut(), 8, &mut len) };
        assert!(matches!(
            missing_buf,
            Err(Failure::Status(CacheMonitorStatus::NullPointer))
        ));
    }

    #[test]
    fn write_allocated_copies_with_a_nul() {
        let mut out = std::ptr::null_mut();
        let mut len = usize::MAX;
        // SAFETY: `out` and `len` are live locals.
        assert!(unsafe { write_allocated(b"abc", &mut out, &mut len) }.is_ok());
        // SAFETY: `out` holds `len + 1` bytes from `malloc`, freed right after.
        let copied = unsafe { std::slice::from_raw_parts(out, len + 1) }.to_vec();
        // SAFETY: allocated by `malloc` above and not used afterwards.
        unsafe { libc::free(out.cast()) };
        assert_eq!((copied.as_slice(), len), (&b"abc\0"[..], 3));
    }

    /// Fails on this thread with `error`, then reads this thread's last error.
    fn fail_and_read(error: Error) -> (i32, String) {
        let status = guard(|| Err(error.into()));
        (status, last_error())
    }

    #[test]
    fn each_thread_reads_its_own_last_error() {
        let barrier = std::sync::Barrier::new(8);
        let messages: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8u32)
                .map(|i| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        assert_eq!(last_error(), "", "a new thread has no last error");
                        let status = guard(|| Err(Error::UnknownOperation(100 + i).into()));
                        assert_eq!(status, CacheMonitorStatus::UnknownOperation as i32);
                        barrier.wait(); // every thread has failed before any reads
                        barrier.wait();
                        last_error()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let expected: Vec<String> = (0..8).map(|i| format!("unknown operation code {}", 100 + i)).collect();
        assert_eq!(messages, expected);
    }

    #[test]
    fn buffer_too_small_keeps_the_last_error_and_success_does_not_clear_it() {
        let (status, message) = fail_and_read(Error::UnknownGauge(7));
        assert_eq!(
            (status, message.as_str()),
            (CacheMonitorStatus::UnknownGauge as i32, "unknown gauge code 7")
        );
        let status = guard(|| Err(CacheMonitorStatus::BufferTooSmall.into()));
        assert_eq!(status, CacheMonitorStatus::BufferTooSmall as i32);
        assert_eq!(guard(|| Ok(())), 0);
        assert_eq!(last_error(), "unknown gauge code 7");
        let status = guard(|| Err(CacheMonitorStatus::NullPointer.into()));
        assert_eq!(status, CacheMonitorStatus::NullPointer as i32);
        assert_eq!(last_error(), "a required pointer argument was NULL");
    }

    #[test]
    fn last_errors_are_bounded_and_quote_a_short_prefix() {
        let huge = "x".repeat(1 << 20);
        let (_, message) = fail_and_read(Error::InvalidAddress(huge.clone()));
        assert_eq!(
            message,
            format!(
                "invalid listen address \"{}...\": expected IP:port, such as 127.0.0.1:9464 or [::1]:9464",
                "x".repeat(crate::error::QUOTED_INPUT_BYTES)
            )
        );
        // Unquoted text past the buffer is cut at a character boundary and marked.
        let (_, message) = fail_and_read(Error::ServeFailed("é".repeat(300)));
        assert_eq!(
            message.len(),
            LAST_ERROR_BYTES - 1,
            "a cut two-byte character is dropped whole"
        );
        assert!(message.starts_with("the exporter could not start: éé"), "{message}");
        assert!(message.ends_with("é..."), "{message}");
        let exact = "y".repeat(LAST_ERROR_BYTES - "the exporter could not start: ".len());
        let (_, message) = fail_and_read(Error::ServeFailed(exact.clone()));
        assert_eq!(
            message,
            format!("the exporter could not start: {exact}"),
            "an exact fit is not cut"
        );
    }

    #[test]
    fn guard_catches_panics() {
        let code = guard(|| panic!("boom"));
        assert_eq!(code, CacheMonitorStatus::Internal as i32);
        assert_eq!(guard(|| Ok(())), 0);
    }

    #[test]
    fn bytes_rejects_null_with_length_and_impossible_lengths() {
        // SAFETY: NULL pointers are never dereferenced; the dangling one is rejected on length alone.
        unsafe {
            assert_eq!(bytes(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(bytes(std::ptr::null(), 3), Err(CacheMonitorStatus::NullPointer));
            assert_eq!(bytes(b"x".as_ptr(), usize::MAX), Err(CacheMonitorStatus::InvalidLength));
        }
    }
}
