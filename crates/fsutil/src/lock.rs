//! An exclusive lock on a file, across processes and within one (`flock`
//! locks belong to an open file, so two opens in one process exclude each
//! other too). The kernel drops it when its holder dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("{} is locked by another backup or restore", .0.display())]
    Busy(PathBuf),
    #[error("cannot lock {}: {}", .0.display(), .1)]
    Io(PathBuf, io::Error),
}

/// Takes the exclusive lock on `path` (created if missing, never through a
/// symbolic link), retrying for up to `wait`.
pub fn lock_exclusive(path: &Path, wait: Duration) -> Result<FileLock, LockError> {
    let io_err = |e| LockError::Io(path.to_path_buf(), e);
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(io_err(io::Error::other("it is not a regular file")));
    }
    let file = OpenOptions::new().append(true).create(true).open(path).map_err(io_err)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(FileLock { _file: file, path: path.to_path_buf() }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => return Err(LockError::Busy(path.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_then_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = lock_exclusive(&path, Duration::ZERO).unwrap();
        let started = Instant::now();
        assert!(matches!(lock_exclusive(&path, Duration::from_millis(200)), Err(LockError::Busy(_))));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(first);
        assert!(lock_exclusive(&path, Duration::ZERO).is_ok());
        let link = dir.path().join(".link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(lock_exclusive(&link, Duration::ZERO), Err(LockError::Io(..))));
    }
}
