//! Opening, creating, checking and mapping a state file.
//!
//! # Format
//!
//! A state file is one page of header followed by the shared region (see `layout`), at fixed offsets:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `CMSTATE\0` |
//! | 8..12 | layout version |
//! | 12..16 | byte-order mark `0x01020304`, native order |
//! | 16..24 | header size (one page) |
//! | 24..32 | total size |
//! | 32..40 | layout hash: every size and offset of the region |
//! | 40..48 | creation time (Unix seconds) |
//! | 48..112 | the creating library's version, NUL-padded |
//!
//! Bytes from `LOCK_BYTES_START` (1024) on are never written: they are lock targets (see `ofd_lock`).
//!
//! # Creation
//!
//! A file is created complete or not at all: it is written as an unnamed `O_TMPFILE` in the target
//! directory (or under a temporary name where the file system lacks `O_TMPFILE`), sized, given its header
//! and initial region, and only then linked under its name with a call that fails if the name exists. Two
//! processes creating one file at once both build one; the loser of the link drops its copy and opens
//! the winner's. No reader can see a file half made, and a crash while creating leaves no file behind.
//!
//! # Trust
//!
//! The file is input: anyone with write access can change any byte. Opening checks everything the header
//! claims against the file and the library (type, owner, permissions, size, magic, version, byte order,
//! layout), and every later read of an index or length from the region is bounds-checked where it is
//! used. A file truncated by another process *while mapped* raises `SIGBUS` on access, as with every
//! memory-mapped file; files are created `0600` in a `0700` directory so that only their owner can.

use std::ffi::CString;
use std::fmt;
use std::fs::{DirBuilder, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// The first bytes of every state file.
pub const MAGIC: [u8; 8] = *b"CMSTATE\0";
/// The layout this library reads and writes. Files of another version are refused, never reinterpreted.
/// Version 5: a window ring bank's tag counts the writers in it, and a bank is never taken over (version
/// 4: a tag held only the period and a clearing bit). Version 4: a shard's journal keeps the sum before a record and its counting cells' total modulo 4, and
/// is never closed (version 3: their parities, and a store closed it; version 2: every cell's value
/// before the record). Version 2: latency cells are native-histogram buckets per series
/// (version 1: log-linear buckets per operation).
pub const LAYOUT_VERSION: u32 = 5;
/// The size of the header, and the region's offset in the file.
pub const HEADER_BYTES: usize = 4096;
/// Header bytes from here on are lock targets only (one per writer slot and a few for cold operations).
pub(crate) const LOCK_BYTES_START: u64 = 1024;

const BYTE_ORDER_MARK: u32 = 0x0102_0304;
const CREATOR_BYTES: usize = 64;

/// What this library build expects of a file: its total size and the hash of its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Header plus region, in bytes.
    pub(crate) total_bytes: u64,
    /// A hash of every size and offset in the region.
    pub(crate) layout_hash: u64,
}

/// A problem with a state file, naming the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateFileError {
    /// The file (as given).
    pub path: PathBuf,
    /// What is wrong, and where it helps, what to do.
    pub problem: String,
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state file {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for StateFileError {}

/// How to open a state file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenOptions {
    /// Create the file (and its directory) when it does not exist.
    pub(crate) create: bool,
    /// Permission bits of a new file; an existing file may not grant more than these.
    pub(crate) mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: true,
            mode: 0o600,
        }
    }
}

/// The header fields, as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) total_bytes: u64,
    pub(crate) layout_hash: u64,
    pub(crate) created: u64,
    pub(crate) creator: String,
}

impl Header {
    fn encode(shape: Shape) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&LAYOUT_VERSION.to_ne_bytes());
        bytes[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_ne_bytes());
        bytes[16..24].copy_from_slice(&(HEADER_BYTES as u64).to_ne_bytes());
        bytes[24..32].copy_from_slice(&shape.total_bytes.to_ne_bytes());
        bytes[32..40].copy_from_slice(&shape.layout_hash.to_ne_bytes());
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        bytes[40..48].copy_from_slice(&created.to_ne_bytes());
        let creator = concat!("cache-monitor ", env!("CARGO_PKG_VERSION")).as_bytes();
        let creator = &creator[..creator.len().min(CREATOR_BYTES)];
        bytes[48..48 + creator.len()].copy_from_slice(creator);
        bytes
    }

    /// Parses and checks a header against this library: `Err` says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let half = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        if bytes.len() < 112 {
            return Err(format!("too short to be a state file ({} bytes)", bytes.len()));
        }
        if bytes[0..8] != MAGIC {
            return Err(if bytes[..HEADER_BYTES.min(bytes.len())].iter().all(|b| *b == 0) {
                "its header is all zeros: not a state file (or overwritten); remove it".to_owned()
            } else {
                format!(
                    "not a cache-monitor state file (it starts with {:?})",
                    String::from_utf8_lossy(&bytes[0..8])
                )
            });
        }
        if half(12) != BYTE_ORDER_MARK {
            return Err("written on a machine of another byte order".to_owned());
        }
        let version = half(8);
        if version != LAYOUT_VERSION {
            return Err(format!(
                "layout version {version}, but this library reads version {LAYOUT_VERSION}; \
                 two versions never share a file: point one of them at another path"
            ));
        }
        if word(16) != HEADER_BYTES as u64 {
            return Err(format!("header size {} instead of {HEADER_BYTES}", word(16)));
        }
        let creator = &bytes[48..48 + CREATOR_BYTES];
        let end = creator.iter().position(|b| *b == 0).unwrap_or(CREATOR_BYTES);
        Ok(Self {
            version,
            total_bytes: word(24),
            layout_hash: word(32),
            created: word(40),
            creator: String::from_utf8_lossy(&creator[..end]).into_owned(),
        })
    }
}

/// An open state file: the descriptor (whose open file description holds this process's slot locks)
/// and where it was opened.
#[derive(Debug)]
pub(crate) struct StateFile {
    fd: OwnedFd,
    path: PathBuf,
    header: Header,
}

impl StateFile {
    /// Opens `path`, creating it when asked and absent, and checks it against `shape`. `init` fills a
    /// new file's region (the bytes after the header, zero when it is called) before anyone can see it.
    pub(crate) fn open(
        path: &Path,
        shape: Shape,
        options: OpenOptions,
        init: &dyn Fn(NonNull<u8>, usize),
    ) -> Result<Self, StateFileError> {
        let error = |problem: String| StateFileError {
            path: path.to_owned(),
            problem,
        };
        if path.as_os_str().is_empty() {
            return Err(error("the path is empty".to_owned()));
        }
        // Two rounds: a creator that loses the race to link its file opens the winner's.
        for _ in 0..2 {
            match open_existing(path) {
                Ok(fd) => return Self::check(fd, path, shape, options).map_err(error),
                Err(e) if e.kind() == io::ErrorKind::NotFound && options.create => {
                    create(path, shape, options.mode, init).map_err(|e| error(format!("cannot create it: {e}")))?;
                }
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(error(
                        "is a symbolic link; state files are opened without following links".to_owned(),
                    ));
                }
                Err(e) => return Err(error(format!("cannot open it: {e}"))),
            }
        }
        Err(error("it vanished while being created; try again".to_owned()))
    }

    fn check(fd: OwnedFd, path: &Path, shape: Shape, options: OpenOptions) -> Result<Self, String> {
        let file = File::from(fd);
        let metadata = file.metadata().map_err(|e| format!("cannot stat it: {e}"))?;
        if !metadata.file_type().is_file() {
            return Err("not a regular file".to_owned());
        }
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if metadata.uid() != me {
            return Err(format!("owned by uid {}, not by this user (uid {me})", metadata.uid()));
        }
        let mode = metadata.permissions().mode() & 0o777;
        if mode & !options.mode & 0o077 != 0 {
            return Err(format!(
                "its permissions {mode:04o} grant more than {:04o}: `chmod {:o}` it, or configure the mode",
                options.mode, options.mode
            ));
        }
        let mut bytes = vec![0u8; HEADER_BYTES];
        let read = read_prefix(&file, &mut bytes).map_err(|e| format!("cannot read its header: {e}"))?;
        let header = Header::decode(&bytes[..read])?;
        let size = metadata.len();
        if header.total_bytes != shape.total_bytes || header.layout_hash != shape.layout_hash {
            return Err(format!(
                "its layout ({} bytes, hash {:016x}) is not this library's ({} bytes, hash {:016x}), \
                 though both say version {LAYOUT_VERSION}; point one of them at another path",
                header.total_bytes, header.layout_hash, shape.total_bytes, shape.layout_hash
            ));
        }
        if size != header.total_bytes {
            return Err(format!(
                "{size} bytes long, but its header says {}: truncated or extended; remove it",
                header.total_bytes
            ));
        }
        Ok(Self {
            fd: file.into(),
            path: path.to_owned(),
            header,
        })
    }

    /// The descriptor, for locks.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path it was opened at.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its header.
    #[cfg(test)]
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Opens the same file again: a new open file description, holding no locks (a forked child's first
    /// step before it claims slots of its own). Checks that the path still names the same file.
    pub(crate) fn reopen(&self) -> io::Result<Self> {
        let fd = open_existing(&self.path)?;
        let (old, new) = (
            File::from(self.fd.try_clone()?).metadata()?,
            File::from(fd.try_clone()?).metadata()?,
        );
        if (old.dev(), old.ino()) != (new.dev(), new.ino()) {
            return Err(io::Error::other("the path names another file now"));
        }
        Ok(Self {
            fd,
            path: self.path.clone(),
            header: self.header.clone(),
        })
    }

    /// Maps the whole file shared and writable: at any address, or over `reserved` (which must be
    /// page-aligned and at least the file's size, and is then replaced by the mapping).
    pub(crate) fn map(&self, reserved: Option<NonNull<u8>>) -> io::Result<Mapping> {
        Mapping::new(self.fd.as_fd(), self.header.total_bytes as usize, reserved)
    }
}

/// A shared, writable mapping of a whole state file.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// Whether dropping the mapping unmaps it. A mapping placed over reserved space is replaced by fresh
    /// anonymous memory instead: the space stays its owner's (a `static` goes with the library's own
    /// mapping).
    unmap_on_drop: bool,
}

// SAFETY: the mapping is shared memory accessed only through atomics; the handle itself is an address and
// a length.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, reserved: Option<NonNull<u8>>) -> io::Result<Self> {
        let (address, flags) = match reserved {
            Some(at) => (at.as_ptr().cast(), libc::MAP_SHARED | libc::MAP_FIXED),
            None => (std::ptr::null_mut(), libc::MAP_SHARED),
        };
        // SAFETY: mapping a descriptor we hold; with MAP_FIXED, `address` is page-aligned space of at least
        // `len` bytes that the caller owns and gives up to the mapping (the contract of `StateFile::map`).
        let base = unsafe {
            libc::mmap(
                address,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self {
            base,
            len,
            unmap_on_drop: reserved.is_none(),
        })
    }

    /// The first byte of the file.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The mapping's length: the file's size.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.unmap_on_drop {
            // SAFETY: `base..base+len` is a mapping this value made and nothing borrows past its drop.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        } else {
            // SAFETY: `base..base+len` is reserved space this value mapped over; it becomes zeroed private
            // memory again, as it was (a failure leaves the file mapped there, which is harmless).
            unsafe {
                libc::mmap(
                    self.base.as_ptr().cast(),
                    self.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
        }
    }
}

fn open_existing(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("the path contains a NUL byte"))
}

fn read_prefix(file: &File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    while read < buffer.len() {
        match file.read_at(&mut buffer[read..], read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// The mode of a directory made to hold a file of `mode`: search permission wherever reading is allowed.
fn directory_mode(mode: u32) -> u32 {
    0o700 | (mode & 0o077) | ((mode & 0o044) >> 2)
}

/// Builds a complete file and links it under `path`; `Ok` also when another process linked first.
fn create(path: &Path, shape: Shape, mode: u32, init: &dyn Fn(NonNull<u8>, usize)) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !directory.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(directory_mode(mode))
            .create(&directory)?;
    }
    let (file, temporary_name) = match unnamed_file(&directory, mode) {
        Ok(file) => (file, None),
        Err(_) => {
            let name = temporary_path(path);
            (named_file(&name, mode)?, Some(name))
        }
    };
    let built = fill(&file, shape, mode, init).and_then(|()| match &temporary_name {
        None => link_unnamed(&file, path),
        Some(name) => std::fs::hard_link(name, path),
    });
    if let Some(name) = &temporary_name {
        let _ = std::fs::remove_file(name);
    }
    match built {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn unnamed_file(directory: &Path, mode: u32) -> io::Result<File> {
    let directory = c_path(directory)?;
    // SAFETY: `directory` is a NUL-terminated string that outlives the call.
    let fd = unsafe {
        libc::open(
            directory.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{:x}", std::process::id(), random_u64()));
    path.with_file_name(name)
}

fn named_file(path: &Path, mode: u32) -> io::Result<File> {
    let c = c_path(path)?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn fill(file: &File, shape: Shape, mode: u32, init: &dyn Fn(NonNull<u8>, usize)) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.set_len(shape.total_bytes)?;
    file.write_all_at(&Header::encode(shape), 0)?;
    let mapping = Mapping::new(file.as_fd(), shape.total_bytes as usize, None)?;
    let region_bytes = mapping.len() - HEADER_BYTES;
    // SAFETY: the mapping is `total_bytes` long, at least the header, so the region starts inside it.
    let region = unsafe { NonNull::new_unchecked(mapping.base().as_ptr().add(HEADER_BYTES)) };
    init(region, region_bytes);
    Ok(())
}

/// Gives an `O_TMPFILE` file its name, failing with `AlreadyExists` if the name is taken.
fn link_unnamed(file: &File, path: &Path) -> io::Result<()> {
    let source =
        CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|_| io::Error::other("descriptor path"))?;
    let target = c_path(path)?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A random number from the kernel (the time as a fallback).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is valid for writes of its length; getrandom writes at most that many bytes.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled == bytes.len() as isize {
        return u64::from_ne_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use super::*;

    const SHAPE: Shape = Shape {
        total_bytes: (HEADER_BYTES + 8192) as u64,
        layout_hash: 0x5eed,
    };

    fn stamp(region: NonNull<u8>, len: usize) {
        assert_eq!(len, 8192);
        // SAFETY: the region is at least 8 bytes, page-aligned, and only this test reads it.
        unsafe { (*region.as_ptr().cast::<AtomicU64>()).store(42, Relaxed) };
    }

    fn first_word(mapping: &Mapping) -> u64 {
        // SAFETY: the file is larger than the header plus a word; the word is 8-aligned.
        unsafe { (*mapping.base().as_ptr().add(HEADER_BYTES).cast::<AtomicU64>()).load(Relaxed) }
    }

    #[test]
    fn created_complete_with_private_permissions_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/state");
        let file = StateFile::open(&path, SHAPE, OpenOptions::default(), &stamp).unwrap();
        let mapping = file.map(None).unwrap();
        assert_eq!(first_word(&mapping), 42, "initialised before it was linked");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            file.header().creator,
            concat!("cache-monitor ", env!("CARGO_PKG_VERSION"))
        );
        let again = StateFile::open(&path, SHAPE, OpenOptions::default(), &|_, _| panic!("exists")).unwrap();
        assert_eq!(first_word(&again.map(None).unwrap()), 42);
    }

    #[test]
    fn concurrent_creators_end_with_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let made = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let file = StateFile::open(&path, SHAPE, OpenOptions::default(), &|region, len| {
                        made.fetch_add(1, Relaxed);
                        stamp(region, len)
                    })
                    .unwrap();
                    assert_eq!(first_word(&file.map(None).unwrap()), 42);
                });
            }
        });
        assert!(made.load(Relaxed) >= 1);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn every_kind_of_bad_file_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let open = |path: &Path| {
            StateFile::open(
                path,
                SHAPE,
                OpenOptions {
                    create: false,
                    mode: 0o600,
                },
                &stamp,
            )
        };
        let problem = |path: &Path| open(path).unwrap_err().problem;
        let write = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };

        assert!(problem(&path).contains("cannot open"), "missing, not created");
        write(b"");
        assert!(problem(&path).contains("too short"));
        write(&vec![0u8; SHAPE.total_bytes as usize]);
        assert!(problem(&path).contains("all zeros"));
        write(b"#!/bin/sh\necho not a state file\n".repeat(200).as_slice());
        assert!(problem(&path).contains("not a cache-monitor state file"));

        let good = Header::encode(SHAPE);
        let mut bytes = good.to_vec();
        bytes.resize(SHAPE.total_bytes as usize, 0);
        let mut other_version = bytes.clone();
        other_version[8..12].copy_from_slice(&(LAYOUT_VERSION + 1).to_ne_bytes());
        write(&other_version);
        assert!(problem(&path).contains(&format!("layout version {}", LAYOUT_VERSION + 1)));
        let mut other_layout = bytes.clone();
        other_layout[32..40].copy_from_slice(&1u64.to_ne_bytes());
        write(&other_layout);
        assert!(problem(&path).contains("layout"));
        write(&bytes[..bytes.len() - 100]);
        assert!(problem(&path).contains("truncated"));
        write(&bytes);
        assert!(open(&path).is_ok());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(problem(&path).contains("permissions"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(problem(&link).contains("symbolic link"));
        assert!(problem(dir.path()).contains("not a regular file") || problem(dir.path()).contains("cannot open"));
    }

    #[test]
    fn a_reopened_file_has_its_own_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let file = StateFile::open(&path, SHAPE, OpenOptions::default(), &stamp).unwrap();
        let again = file.reopen().unwrap();
        assert!(crate::recording::ofd_lock::try_lock(file.fd(), LOCK_BYTES_START).unwrap());
        assert!(!crate::recording::ofd_lock::try_lock(again.fd(), LOCK_BYTES_START).unwrap());
    }

    #[test]
    fn a_mapping_can_replace_reserved_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let file = StateFile::open(&path, SHAPE, OpenOptions::default(), &stamp).unwrap();
        let mut reserved = vec![0u64; SHAPE.total_bytes as usize / 8 + 4096];
        let address = reserved.as_mut_ptr() as usize;
        let aligned = (address + 4095) & !4095;
        let at = NonNull::new(aligned as *mut u8).unwrap();
        let mapping = file.map(Some(at)).unwrap();
        assert_eq!(mapping.base(), at);
        assert_eq!(first_word(&mapping), 42);
        drop(mapping);
        // SAFETY: the space is still `reserved`'s (now anonymous again), 8-aligned, past the header.
        let word = unsafe { (*at.as_ptr().add(HEADER_BYTES).cast::<AtomicU64>()).load(Relaxed) };
        assert_eq!(word, 0, "given back as zeroed memory");
        drop(reserved);
    }
}
