//! A state file attached to a recorder: the mapping, the descriptor whose open file description holds
//! this process's shard locks, and which owned shards this process holds.
//!
//! # Claiming a shard
//!
//! A thread's first record into the file claims one of the file's owned shards: the process marks the
//! shard in its own `held` bits (threads of one process share one open file description, whose locks
//! never conflict with each other), then takes the shard's lock byte with `F_OFD_SETLK`. Success means no
//! other live process holds the shard: it is free, or its owner is dead. Either way the claimer rolls back
//! a record the last owner left half-written (`journal`), notes the shard's in-flight counts as its
//! starting point (a dead owner's unfinished operations are not in flight), and continues the shard's
//! counters, which therefore only grow. If every owned shard is held, the thread writes a shared shard
//! with atomic read-modify-writes instead: slower, still exact among live processes, but without a
//! journal: a process killed inside a record into a shared shard can leave part of that one record.
//! Owned shards are the rule (64 threads of all the attached processes at a time); a reader rolls back a
//! dead owner's half record itself when nobody claims its shard again ([`Attachment::roll_back_dead_writers`]).
//!
//! A file descriptor and its locks are inherited across `fork`: the child would hold its parent's shards.
//! So after a fork the child forgets its routes and held bits (a `pthread_atfork` handler) and opens the
//! file again before its first claim, getting a description, and locks, of its own.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::recording::buckets::BucketIndex;
use crate::recording::ofd_lock::{self, Probe};
use crate::recording::region::Region;
use crate::recording::route::Routes;
use crate::recording::shard::Shard;
use crate::recording::state_file::{
    self, HEADER_BYTES, LOCK_BYTES_START, Mapping, OpenOptions, Shape, StateFile, StateFileError,
};
use crate::recording::thread_claim::OWNED_SHARDS;

/// The lock byte of the configuration (held while one process changes the file's shape).
const CONFIG_LOCK: u64 = LOCK_BYTES_START + 1000;
/// The lock byte of resets.
const RESET_LOCK: u64 = LOCK_BYTES_START + 1001;

const _: () = assert!(OWNED_SHARDS <= 64, "held shards fit one word");
const _: () = assert!(LOCK_BYTES_START + OWNED_SHARDS as u64 <= CONFIG_LOCK);

/// The shape every state file of this library build has.
pub(crate) fn shape() -> Shape {
    Shape {
        total_bytes: (HEADER_BYTES + size_of::<Region>()) as u64,
        layout_hash: Region::layout_hash(),
    }
}

/// The open file, behind a spin lock that a forked child can reset (a `std` mutex held by another thread
/// at the fork would stay locked in the child for good). Only cold paths take it, for a system call.
struct FileCell {
    locked: AtomicU32,
    file: UnsafeCell<Option<StateFile>>,
}

// SAFETY: `file` is only reached through `with`, which holds `locked`.
unsafe impl Sync for FileCell {}

impl FileCell {
    fn with<T>(&self, f: impl FnOnce(&mut Option<StateFile>) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        // SAFETY: `locked` gives this thread the only access until it is released below.
        let result = f(unsafe { &mut *self.file.get() });
        self.locked.store(0, Ordering::Release);
        result
    }
}

/// An attached state file.
pub(crate) struct Attachment {
    file: FileCell,
    mapping: Mapping,
    /// The process that opened `file`; another value (a forked child) reopens it before claiming.
    pid: AtomicU32,
    /// Owned shards this process holds, one bit each.
    held: AtomicU64,
    /// This process's identity, written into the shards it owns.
    identity: u64,
    /// Routes of this process's threads into the file's shards.
    pub(crate) routes: Routes,
}

impl Attachment {
    /// Opens (or creates) the state file at `path` and maps it, over `reserved` if given (page-aligned
    /// space of at least the file's size that the caller owns for as long as the process may touch it).
    /// `init` fills a new file's region.
    pub(crate) fn open(
        path: &Path,
        options: OpenOptions,
        reserved: Option<NonNull<u8>>,
        init: &dyn Fn(&Region),
    ) -> Result<Self, StateFileError> {
        let init_region = |region: NonNull<u8>, len: usize| {
            debug_assert!(len >= size_of::<Region>());
            // SAFETY: the new file's region is `len >= size_of::<Region>()` zeroed, page-aligned bytes, and
            // all-zero is a valid `Region` (atomics only).
            init(unsafe { region.cast::<Region>().as_ref() });
        };
        let file = StateFile::open(path, shape(), options, &init_region)?;
        let mapping = file.map(reserved).map_err(|e| StateFileError {
            path: path.to_owned(),
            problem: format!("cannot map it: {e}"),
        })?;
        Ok(Self {
            file: FileCell {
                locked: AtomicU32::new(0),
                file: UnsafeCell::new(Some(file)),
            },
            mapping,
            pid: AtomicU32::new(std::process::id()),
            held: AtomicU64::new(0),
            identity: state_file::random_u64() | 1,
            routes: Routes::new(),
        })
    }

    /// The mapped region.
    pub(crate) fn region(&self) -> &Region {
        // SAFETY: the mapping is the whole file, a header page then a `Region`, for as long as `self`
        // lives; the region is atomics only, valid whatever bytes the file holds.
        unsafe { &*self.mapping.base().as_ptr().add(HEADER_BYTES).cast::<Region>() }
    }

    /// The file's path, until the attachment is released.
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.file.with(|file| file.as_ref().map(|file| file.path().to_owned()))
    }

    /// Runs `f` with the descriptor of this process's open file description, reopening the file first in
    /// a forked child. `None` once the attachment is released.
    fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        self.file.with(|file| {
            let me = std::process::id();
            if self.pid.load(Ordering::Relaxed) != me
                && let Some(inherited) = file.as_ref()
            {
                let fresh = inherited.reopen()?;
                // Dropping the inherited descriptor leaves the parent's description, and its locks, alone.
                *file = Some(fresh);
                self.held.store(0, Ordering::Relaxed);
                self.pid.store(me, Ordering::Relaxed);
            }
            match file.as_ref() {
                Some(file) => f(file.fd()),
                None => Err(io::Error::other("the state file was released")),
            }
        })
    }

    /// Claims an owned shard for the calling thread (see the module docs); `None` if every one is held.
    pub(crate) fn claim_owned(&self) -> Option<usize> {
        let region = self.region();
        self.with_fd(|fd| {
            for index in 0..OWNED_SHARDS {
                let bit = 1u64 << index;
                if self.held.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                    continue; // another thread of this process holds it
                }
                if ofd_lock::try_lock(fd, LOCK_BYTES_START + index as u64)? {
                    adopt(&region.shards[index], &region.core.hot.buckets, self.identity);
                    return Ok(Some(index));
                }
                self.held.fetch_and(!bit, Ordering::Relaxed);
            }
            Ok(None)
        })
        .unwrap_or(None)
    }

    /// Rolls back the record that a dead owner left half-written in its shard, for every owned shard whose
    /// journal names a record cut short and whose lock no process holds, so that a reader never counts
    /// half a record even when no process adopts that shard again. Such a shard is locked (without
    /// waiting: a live owner holds its lock, and its record is simply in progress), rolled back and
    /// unlocked; its counters stay for whoever claims it next, whose adoption then finds nothing to undo.
    /// Threads of this process are kept out by the shard's `held` bit, as in [`Attachment::claim_owned`].
    pub(crate) fn roll_back_dead_writers(&self) {
        let region = self.region();
        let _ = self.with_fd(|fd| {
            for (index, shard) in region.shards.iter().enumerate().take(OWNED_SHARDS) {
                if !shard.control.journal.needs_roll_back(shard, &region.core.hot.buckets) {
                    continue;
                }
                let bit = 1u64 << index;
                if self.held.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                    continue; // a thread of this process owns it: its record is in progress
                }
                let byte = LOCK_BYTES_START + index as u64;
                let taken = ofd_lock::try_lock(fd, byte);
                if let Ok(true) = taken {
                    shard.control.journal.roll_back(shard, &region.core.hot.buckets);
                    let _ = ofd_lock::unlock(fd, byte);
                }
                self.held.fetch_and(!bit, Ordering::Relaxed);
                taken?;
            }
            Ok(())
        });
    }

    /// Whether the owner of owned shard `index` is alive: this process, or another that holds its lock.
    pub(crate) fn is_live(&self, index: usize) -> bool {
        if index >= OWNED_SHARDS {
            return true;
        }
        if self.held.load(Ordering::Relaxed) & (1 << index) != 0
            && self.pid.load(Ordering::Relaxed) == std::process::id()
        {
            return true;
        }
        self.with_fd(|fd| ofd_lock::probe(fd, LOCK_BYTES_START + index as u64))
            .is_ok_and(|probe| probe == Probe::HeldElsewhere)
    }

    /// Runs `f` while holding the file's configuration lock (waiting for other processes).
    pub(crate) fn with_config_lock<T>(&self, f: impl FnOnce() -> T) -> io::Result<T> {
        self.with_lock(CONFIG_LOCK, f)
    }

    /// Runs `f` while holding the file's reset lock (waiting for other processes).
    pub(crate) fn with_reset_lock<T>(&self, f: impl FnOnce() -> T) -> io::Result<T> {
        self.with_lock(RESET_LOCK, f)
    }

    /// Holds the OFD lock on `byte` around `f`. The caller keeps this process's other threads out (their
    /// locks would not conflict with ours): the monitor's configuration or reset lock.
    fn with_lock<T>(&self, byte: u64, f: impl FnOnce() -> T) -> io::Result<T> {
        self.with_fd(|fd| ofd_lock::lock(fd, byte))?;
        let result = f();
        self.with_fd(|fd| ofd_lock::unlock(fd, byte))?;
        Ok(result)
    }

    /// Closes the descriptor (the library is being unloaded). The mapping stays until the attachment is
    /// dropped or the library's space goes, and so do this process's shard locks: a mapping holds a
    /// reference to the open file description, whose OFD locks last as long as its last reference. Other
    /// processes claim other shards meanwhile; the file does not grow.
    pub(crate) fn release(&self) {
        self.file.with(Option::take);
    }

    /// In a forked child: forget the parent's shards (see the module docs). Async-signal-safe: atomic
    /// stores only.
    fn forget_after_fork(&self) {
        self.routes.clear();
        self.held.store(0, Ordering::Relaxed);
        self.pid.store(0, Ordering::Relaxed);
        self.file.locked.store(0, Ordering::Release);
    }
}

/// Takes over a shard whose owner is gone (or that was never owned).
fn adopt(shard: &Shard, buckets: &BucketIndex, identity: u64) {
    shard.control.journal.roll_back(shard, buckets);
    for (base, cell) in shard.claim_base.begun.iter().zip(&shard.begun) {
        base.store(cell.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    for (base, cell) in shard.claim_base.ended.iter().zip(&shard.ended) {
        base.store(cell.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    shard.control.countdown.store(0, Ordering::Relaxed);
    shard.control.owner.store(identity, Ordering::Release);
}

/// Attachments alive in this process, for the fork handler.
static ATTACHED: [AtomicPtr<Attachment>; 64] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 64];

/// Registers `attachment` for the fork handler (installing it on first use); `false` if the table is
/// full (the attachment then refuses to be used after a fork: see `Recorder`).
pub(crate) fn register(attachment: &Attachment) -> bool {
    install_fork_handler();
    let pointer = attachment as *const Attachment as *mut Attachment;
    ATTACHED.iter().any(|entry| {
        entry
            .compare_exchange(std::ptr::null_mut(), pointer, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// Removes `attachment` from the fork handler's table (before it is dropped).
pub(crate) fn unregister(attachment: &Attachment) {
    let pointer = attachment as *const Attachment as *mut Attachment;
    for entry in &ATTACHED {
        let _ = entry.compare_exchange(pointer, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
    }
}

extern "C" fn forget_in_child() {
    for entry in &ATTACHED {
        let attachment = entry.load(Ordering::Acquire);
        // SAFETY: registered attachments are unregistered before they are dropped, and the child has only
        // the forking thread, so none is dropped while this runs.
        if let Some(attachment) = unsafe { attachment.as_ref() } {
            attachment.forget_after_fork();
        }
    }
}

fn install_fork_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: registers a child handler that only does atomic stores. glibc ties handlers registered
        // from a shared library to it (through `__dso_handle`) and removes them when it is unloaded.
        unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
    });
}
