//! One sweep per results folder, on the kernel's advisory file lock of `.sweep.lock`
//! (see [`netaug_trainer::lock`]): held for the life of the sweep process, released by the
//! kernel however it ends, so there is no stale lock to take over.

use std::path::Path;

use netaug_trainer::lock::{FolderLock, LockError};

use crate::error::SweepError;

/// Held while a sweep writes its folder; released on drop.
pub struct Lock {
    _lock: FolderLock,
}

/// The lock file's name.
pub const LOCK_FILE: &str = ".sweep.lock";

impl Lock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, SweepError> {
        match FolderLock::acquire(dir, LOCK_FILE) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err(LockError::Held { path, pid }) => Err(SweepError::Locked { path, pid }),
            Err(LockError::Io { path, source }) => Err(SweepError::file(path, source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sweep_is_refused_while_the_first_runs() {
        let dir = tempfile::tempdir().unwrap();
        let held = Lock::acquire(dir.path()).unwrap();
        let pid = std::process::id();
        assert!(matches!(
            Lock::acquire(dir.path()),
            Err(SweepError::Locked { pid: Some(p), .. }) if p == pid
        ));
        drop(held);
        // What a killed sweep leaves (a file with a dead or an unrelated pid, or nothing
        // in it) does not block the next one.
        for content in ["4000000000", "1", ""] {
            std::fs::write(dir.path().join(LOCK_FILE), content).unwrap();
            drop(Lock::acquire(dir.path()).unwrap());
        }
    }
}
