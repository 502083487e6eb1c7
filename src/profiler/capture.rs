//! What a sample captures, on the sampling thread, without allocating: the native call stack as raw
//! return addresses and the host-supplied frames as bytes, together with the operation they lead to.

use std::ffi::c_void;

use crate::recording::operation::Operation;

/// Native frames kept per sample, innermost first; deeper stacks lose their outermost frames.
pub const MAX_DEPTH: usize = 64;

/// Bytes kept of a sample's host frames (`;`-separated); longer lists lose their outermost frames.
pub const HOST_FRAMES_BYTES: usize = 512;

/// Bytes kept of one host frame; longer frames are cut (at a character boundary).
pub const HOST_FRAME_BYTES: usize = 128;

/// [`HOST_FRAMES_BYTES`] in 64-bit words, as a stack table stores them.
pub(crate) const HOST_WORDS: usize = HOST_FRAMES_BYTES / 8;

const _: () = assert!(HOST_FRAMES_BYTES.is_multiple_of(8) && HOST_FRAMES_BYTES < 1 << 16);

/// Everything but the frames themselves: the operation, how many frames there are, and whether some
/// were dropped. Packed into one word so a table compares it at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) operation: u32,
    /// Native frames in `StackKey::ips`, at most [`MAX_DEPTH`].
    pub(crate) depth: u8,
    /// Bytes in `StackKey::host`, at most [`HOST_FRAMES_BYTES`].
    pub(crate) host_len: u16,
    /// The native stack was deeper than [`MAX_DEPTH`].
    pub(crate) native_truncated: bool,
    /// Outer host frames did not fit in [`HOST_FRAMES_BYTES`].
    pub(crate) host_truncated: bool,
}

impl Shape {
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.operation)
            | u64::from(self.depth) << 32
            | u64::from(self.host_len) << 40
            | u64::from(self.native_truncated) << 56
            | u64::from(self.host_truncated) << 57
    }

    pub(crate) fn unpack(word: u64) -> Self {
        Self {
            operation: word as u32,
            depth: (word >> 32) as u8,
            host_len: (word >> 40) as u16,
            native_truncated: word >> 56 & 1 == 1,
            host_truncated: word >> 57 & 1 == 1,
        }
    }
}

/// One sample's identity, built on the sampling thread's stack.
pub(crate) struct StackKey {
    pub(crate) shape: Shape,
    /// Return addresses, innermost first; entries from `shape.depth` on are zero.
    pub(crate) ips: [usize; MAX_DEPTH],
    /// The host frames, outermost first, `;`-separated, packed little-endian; bytes from
    /// `shape.host_len` on are zero.
    pub(crate) host: [u64; HOST_WORDS],
    /// Hash of all of the above.
    pub(crate) hash: u64,
}

impl StackKey {
    /// The calling thread's stack leading to `operation`, with `host_frames` (meant to be UTF-8; other
    /// bytes are kept as they are and shown as U+FFFD when rendered) as its leaf frames.
    ///
    /// Frames at or below `below` (an address in the caller's own stack frame) are the capture
    /// machinery's and are skipped. No allocation, no lock of this library's (the unwinder reads the
    /// loader's tables; on glibc 2.35+ without a lock).
    #[inline(always)]
    pub(crate) fn capture(operation: Operation, host_frames: &[u8], below: usize) -> Self {
        let mut key = Self {
            shape: Shape {
                operation: operation.code(),
                ..Shape::default()
            },
            ips: [0; MAX_DEPTH],
            host: [0; HOST_WORDS],
            hash: 0,
        };
        key.capture_native(below);
        key.set_host_frames(host_frames);
        key.hash = key.compute_hash();
        key
    }

    fn capture_native(&mut self, below: usize) {
        let mut depth = 0;
        let mut skipping = true;
        let ips = &mut self.ips;
        let mut truncated = false;
        let mut visit = |frame: &backtrace::Frame| {
            let sp = frame.sp() as usize;
            // Frames deeper than the caller of `capture` have a smaller stack address (the stack grows
            // down); an unknown (zero) address never skips.
            if skipping && sp != 0 && sp <= below {
                return true;
            }
            skipping = false;
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            if depth == MAX_DEPTH {
                truncated = true;
                return false;
            }
            ips[depth] = ip;
            depth += 1;
            true
        };
        // SAFETY: `trace_unsynchronized` is unsafe only because it skips the lock `trace` takes; that lock
        // serialises platform unwinders that are not thread-safe (dbghelp on Windows). On the
        // `_Unwind_Backtrace` unwinder used on Linux and other Unix systems, concurrent traces are safe.
        // The callback cannot panic: it only compares and writes within bounds checked above.
        unsafe { backtrace::trace_unsynchronized(&mut visit) };
        self.shape.depth = depth as u8;
        self.shape.native_truncated = truncated;
    }

    /// Stores `frames` (`;`-separated, outermost first) without empty or blank frames, each cut to
    /// [`HOST_FRAME_BYTES`], keeping the innermost ones that fit in [`HOST_FRAMES_BYTES`]. Works on bytes:
    /// frames that are not UTF-8 are trimmed of ASCII blanks only and cut before a continuation byte, and
    /// rendering replaces what is not UTF-8 with U+FFFD.
    fn set_host_frames(&mut self, frames: &[u8]) {
        let mut bytes = [0u8; HOST_FRAMES_BYTES];
        // Written back to front, innermost frame first, then moved to the start.
        let mut start = HOST_FRAMES_BYTES;
        for frame in frames.rsplit(|&b| b == b';') {
            let frame = trim(frame);
            if frame.is_empty() {
                continue;
            }
            let frame = &frame[..floor_char_boundary(frame, HOST_FRAME_BYTES)];
            let separator = usize::from(start < HOST_FRAMES_BYTES);
            let Some(at) = start.checked_sub(frame.len() + separator) else {
                self.shape.host_truncated = true;
                break;
            };
            bytes[at..at + frame.len()].copy_from_slice(frame);
            if separator == 1 {
                bytes[at + frame.len()] = b';';
            }
            start = at;
        }
        let len = HOST_FRAMES_BYTES - start;
        bytes.copy_within(start.., 0);
        bytes[len..].fill(0);
        for (word, chunk) in self.host.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(chunk);
            *word = u64::from_le_bytes(eight);
        }
        self.shape.host_len = len as u16;
    }

    fn compute_hash(&self) -> u64 {
        let words = self.ips[..usize::from(self.shape.depth)]
            .iter()
            .map(|&ip| ip as u64)
            .chain(self.host[..host_words(self.shape.host_len)].iter().copied());
        let mut hash = self.shape.pack();
        for word in words {
            hash = (hash ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31);
        }
        finalise(hash)
    }
}

/// `frame` without leading and trailing white space: Unicode's when it is UTF-8, ASCII's otherwise.
fn trim(frame: &[u8]) -> &[u8] {
    match std::str::from_utf8(frame) {
        Ok(text) => text.trim().as_bytes(),
        Err(_) => frame.trim_ascii(),
    }
}

/// The largest length at most `max` that does not cut a UTF-8 character of `bytes` (one that does not
/// end before a continuation byte).
fn floor_char_boundary(bytes: &[u8], max: usize) -> usize {
    let mut end = max.min(bytes.len());
    while end > 0 && end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    end
}

/// Words holding `len` bytes of host frames.
pub(crate) fn host_words(len: u16) -> usize {
    usize::from(len).div_ceil(8)
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit, so the low bits a table
/// indexes by are well mixed.
fn finalise(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    hash ^ hash >> 33
}

/// Host frames as stored (see [`StackKey::host`]) back to text: bytes that are not UTF-8, and NUL bytes
/// (which would end the folded text for a C host reading it as a string), become U+FFFD.
pub(crate) fn host_frames_text(words: &[u64], len: u16) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    String::from_utf8_lossy(&bytes[..usize::from(len).min(bytes.len())]).replace('\0', "\u{fffd}")
}

/// An address in the caller's stack frame, for [`StackKey::capture`]'s `below`.
#[inline(always)]
pub(crate) fn stack_marker(local: &u8) -> usize {
    std::hint::black_box(local as *const u8 as *const c_void) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(frames: &str) -> (String, Shape) {
        host_bytes(frames.as_bytes())
    }

    fn host_bytes(frames: &[u8]) -> (String, Shape) {
        let key = StackKey::capture(Operation::GET, frames, 0);
        (host_frames_text(&key.host, key.shape.host_len), key.shape)
    }

    #[test]
    fn host_frames_are_normalised() {
        assert_eq!(host("").0, "");
        assert_eq!(host("main.main;main.handler").0, "main.main;main.handler");
        assert_eq!(
            host(";a;; ;b ;").0,
            "a;b",
            "empty and blank frames dropped, frames trimmed"
        );
        let long = "é".repeat(100); // 200 bytes
        let (text, shape) = host(&format!("outer;{long}"));
        assert_eq!(
            text,
            format!("outer;{}", "é".repeat(64)),
            "cut to 128 bytes at a char boundary"
        );
        assert!(!shape.host_truncated);
    }

    #[test]
    fn host_frames_that_are_not_utf8_are_kept_and_rendered_with_replacement_characters() {
        assert_eq!(
            host_bytes(b"main.\xff;\xc3 ;cache.Get").0,
            "main.\u{fffd};\u{fffd};cache.Get"
        );
        assert_eq!(
            host_bytes(b" \xfe\x00 ").0,
            "\u{fffd}\u{fffd}",
            "ASCII blanks trimmed, NUL replaced"
        );
        let mut long = vec![0xffu8];
        long.extend("é".repeat(100).as_bytes());
        let (text, _) = host_bytes(&long);
        assert_eq!(
            text,
            format!("\u{fffd}{}", "é".repeat(63)),
            "cut to 128 bytes before a continuation byte"
        );
        assert_eq!(
            host("\u{a0}a\u{2003}").0,
            "a",
            "Unicode blanks trimmed from UTF-8 frames"
        );
    }

    #[test]
    fn too_many_host_frames_keep_the_innermost() {
        let frames: Vec<String> = (0..100).map(|i| format!("frame_{i:04}")).collect();
        let (text, shape) = host(&frames.join(";"));
        assert!(shape.host_truncated);
        assert!(text.len() <= HOST_FRAMES_BYTES);
        assert!(text.ends_with(";frame_0099"), "{text}");
        let kept: Vec<&str> = text.split(';').collect();
        assert_eq!(kept.len(), HOST_FRAMES_BYTES / 11, "10-byte frames plus separators");
        assert_eq!(kept, frames[100 - kept.len()..]);
    }

    #[test]
    fn shapes_round_trip() {
        let shape = Shape {
            operation: 15,
            depth: 64,
            host_len: 512,
            native_truncated: true,
            host_truncated: false,
        };
        assert_eq!(Shape::unpack(shape.pack()), shape);
    }

    #[inline(never)]
    fn capture_here(frames: &str) -> StackKey {
        let marker = 0u8;
        StackKey::capture(Operation::PUT, frames.as_bytes(), stack_marker(&marker))
    }

    #[test]
    fn keys_differ_by_call_site_operation_and_host_frames() {
        // An opaque count, so that an optimised build cannot unroll the loop into two call sites.
        let same_site: Vec<StackKey> = (0..std::hint::black_box(2)).map(|_| capture_here("a")).collect();
        let [first, again] = &same_site[..] else {
            unreachable!("two keys")
        };
        assert!(first.shape.depth > 2, "{:?}", first.shape);
        assert_eq!((first.hash, first.ips), (again.hash, again.ips));
        assert_ne!(first.hash, capture_here("b").hash, "other host frames");
        let other_site = capture_here("a");
        assert_ne!(first.ips, other_site.ips, "another call site");
        assert_ne!(first.hash, other_site.hash);
        let get = StackKey::capture(Operation::GET, b"a", 0);
        assert_ne!(get.shape.operation, first.shape.operation);
    }
}
