//! What every C entry point does at the boundary: catch panics, read arguments safely, write outputs with
//! the snprintf-style buffer contract, and keep the last error message.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::sync::Mutex;

use super::status::CacheMonitorStatus;
use crate::error::Error;

/// The message of the most recent failed call, for `cache_monitor_last_error`.
static LAST_ERROR: Mutex<String> = Mutex::new(String::new());

/// Why a C call failed: a library error (with its message) or a bad argument.
pub(crate) enum Failure {
    Error(Error),
    Status(CacheMonitorStatus),
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
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CacheMonitorStatus::Ok as i32,
        Ok(Err(failure)) => fail(failure),
        Err(_) => fail(Failure::Status(CacheMonitorStatus::Internal)),
    }
}

#[cold]
fn fail(failure: Failure) -> i32 {
    let (status, message) = match failure {
        Failure::Error(error) => (CacheMonitorStatus::from(&error), error.to_string()),
        Failure::Status(status) => (status, status.description().to_string_lossy().into_owned()),
    };
    if status != CacheMonitorStatus::BufferTooSmall {
        *LAST_ERROR.lock() = message;
    }
    status as i32
}

/// The message of the most recent failed call, empty if none failed.
pub(crate) fn last_error() -> String {
    LAST_ERROR.lock().clone()
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

/// Borrows `len` bytes of UTF-8 at `ptr`; NULL is accepted with length zero.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn utf8_bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a str, CacheMonitorStatus> {
    // SAFETY: forwarded caller contract.
    let bytes = unsafe { bytes(ptr, len) }?;
    std::str::from_utf8(bytes).map_err(|_| CacheMonitorStatus::InvalidUtf8)
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
/// - `*len` always receives the size of the text in bytes (without a terminating NUL);
/// - if it fits (`len <= cap`) the text is copied, followed by a NUL when there is room for one;
/// - if not, nothing is copied and the call fails with `BufferTooSmall`, so the host can retry with a
///   buffer of `*len + 1` bytes. `buf` may be NULL when `cap` is 0, to ask for the size alone.
///
/// # Safety
/// Unless NULL, `buf` must be writable for `cap` bytes and `len` writable for one `size_t`.
pub(crate) unsafe fn write_text(text: &[u8], buf: *mut u8, cap: usize, len: *mut usize) -> Result<(), Failure> {
    if len.is_null() || (buf.is_null() && cap != 0) {
        return Err(CacheMonitorStatus::NullPointer.into());
    }
    // SAFETY: `len` is non-null and writable by this function's contract.
    unsafe { len.write(text.len()) };
    if text.len() > cap {
        return Err(CacheMonitorStatus::BufferTooSmall.into());
    }
    if text.is_empty() && buf.is_null() {
        return Ok(());
    }
    // SAFETY: `buf` is non-null here (a NULL `buf` implies `cap == 0`, hence empty text, handled above) and
    // writable for `cap >= text.len()` bytes; a Rust string cannot overlap the host's buffer.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len()) };
    if cap > text.len() {
        // SAFETY: `text.len() < cap`, so this byte is inside the writable buffer.
        unsafe { buf.add(text.len()).write(0) };
    }
    Ok(())
}

/// Defines C entry points that write a text to the host's buffer, with [`guard`] around them and the
/// buffer contract of [`write_text`]: every `cache_monitor_render*` function, `cache_monitor_export_state`,
/// `cache_monitor_last_error` and `cache_monitor_serve_address`.
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
        assert!(unsafe { write_text(b"hello", exact.as_mut_ptr(), 5, &mut len) }.is_ok());
        assert_eq!(&exact, b"hello");

        let mut roomy = [0xAAu8; 8];
        assert!(unsafe { write_text(b"hello", roomy.as_mut_ptr(), 8, &mut len) }.is_ok());
        assert_eq!(&roomy[..7], b"hello\0\xAA");

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

    #[test]
    fn utf8_bytes_checks_pointer_length_and_encoding() {
        // SAFETY: every pointer is NULL or a live literal of at least the length passed, except the
        // impossible length, which is rejected before any read.
        unsafe {
            assert_eq!(utf8_bytes(b"a;b".as_ptr(), 3), Ok("a;b"));
            assert_eq!(utf8_bytes(std::ptr::null(), 0), Ok(""));
            assert_eq!(utf8_bytes(std::ptr::null(), 1), Err(CacheMonitorStatus::NullPointer));
            assert_eq!(utf8_bytes(b"\xff;a".as_ptr(), 3), Err(CacheMonitorStatus::InvalidUtf8));
            assert_eq!(
                utf8_bytes(b"x".as_ptr(), usize::MAX),
                Err(CacheMonitorStatus::InvalidLength)
            );
            assert_eq!(
                utf8_bytes("é".as_ptr(), 1),
                Err(CacheMonitorStatus::InvalidUtf8),
                "a length that cuts a character"
            );
        }
    }
}
