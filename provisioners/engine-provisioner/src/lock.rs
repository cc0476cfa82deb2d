//! An exclusive lock on a file (`flock`), held until dropped, so two processes never build the
//! same llama-server at once. The kernel drops it when its holder dies: no stale lock files.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock, waiting for its holder; `on_wait` runs once when it has to wait.
    pub(crate) fn acquire(path: &Path, on_wait: impl FnOnce()) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(FileLock { _file: file });
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error);
        }
        on_wait();
        loop {
            // SAFETY: as above.
            if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
                return Ok(FileLock { _file: file });
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}
