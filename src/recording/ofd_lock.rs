//! Byte-range locks that belong to an open file description (`F_OFD_SETLK`): the kernel drops them when
//! the last descriptor of that description closes, which includes the death of the process by any
//! signal. That makes them the liveness test of a state file's writer slots: a slot is owned while some
//! open file description holds the lock on its byte, and free the moment its owner is gone, whatever its
//! pid, pid namespace or container.
//!
//! Two descriptors of one description (a `dup`, or a `fork`ed child's inherited copy) share its locks, so
//! a forked child must open the file again before it claims slots (see `state_file`). Locks taken through
//! one description never conflict with each other, so threads of one process also need the process's own
//! bookkeeping of which slots they hold.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The state of one lock byte as seen from the calling description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Another open file description holds it.
    HeldElsewhere,
    /// Nobody else holds it (this description may).
    Free,
}

fn lock_request(kind: libc::c_int, byte: u64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value; the fields that matter are
    // set below (`l_pid` must stay 0 for OFD locks).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = kind as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request.l_start = byte as libc::off_t;
    request.l_len = 1;
    request
}

fn fcntl_lock(fd: BorrowedFd<'_>, command: libc::c_int, request: &mut libc::flock) -> io::Result<()> {
    loop {
        // SAFETY: `fd` is an open descriptor for the duration of the borrow and `request` is a valid,
        // writable `flock` that the kernel reads (and, for `F_OFD_GETLK`, writes).
        let result = unsafe { libc::fcntl(fd.as_raw_fd(), command, request as *mut libc::flock) };
        if result != -1 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Takes the write lock on `byte` without waiting: `Ok(true)` when this description now holds it (or
/// already did), `Ok(false)` when another description holds it.
pub(crate) fn try_lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut request = lock_request(libc::F_WRLCK, byte);
    match fcntl_lock(fd, libc::F_OFD_SETLK, &mut request) {
        Ok(()) => Ok(true),
        Err(error) if matches!(error.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Takes the write lock on `byte`, waiting for other descriptions to release it.
pub(crate) fn lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let mut request = lock_request(libc::F_WRLCK, byte);
    fcntl_lock(fd, libc::F_OFD_SETLKW, &mut request)
}

/// Releases this description's lock on `byte` (nothing happens if it holds none).
pub(crate) fn unlock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let mut request = lock_request(libc::F_UNLCK, byte);
    fcntl_lock(fd, libc::F_OFD_SETLK, &mut request)
}

/// Whether another open file description holds the lock on `byte`.
pub(crate) fn probe(fd: BorrowedFd<'_>, byte: u64) -> io::Result<Probe> {
    let mut request = lock_request(libc::F_WRLCK, byte);
    fcntl_lock(fd, libc::F_OFD_GETLK, &mut request)?;
    Ok(if request.l_type == libc::F_UNLCK as libc::c_short {
        Probe::Free
    } else {
        Probe::HeldElsewhere
    })
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_lock_excludes_other_descriptions_until_released_or_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks");
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let (first, second) = (open(), open());
        assert!(try_lock(first.as_fd(), 7).unwrap());
        assert!(try_lock(first.as_fd(), 7).unwrap(), "the holder may take it again");
        assert!(!try_lock(second.as_fd(), 7).unwrap());
        assert_eq!(probe(second.as_fd(), 7).unwrap(), Probe::HeldElsewhere);
        assert_eq!(
            probe(first.as_fd(), 7).unwrap(),
            Probe::Free,
            "own locks never conflict"
        );
        assert!(try_lock(second.as_fd(), 8).unwrap(), "bytes are independent");
        unlock(first.as_fd(), 7).unwrap();
        assert!(try_lock(second.as_fd(), 7).unwrap());
        drop(second);
        assert!(
            try_lock(first.as_fd(), 7).unwrap(),
            "closing the last descriptor releases"
        );
        assert!(try_lock(first.as_fd(), 8).unwrap());
    }

    #[test]
    fn a_duplicated_descriptor_shares_the_locks() {
        let file = tempfile::tempfile().unwrap();
        let duplicate = file.try_clone().unwrap();
        assert!(try_lock(file.as_fd(), 1).unwrap());
        assert!(try_lock(duplicate.as_fd(), 1).unwrap(), "same open file description");
    }
}
