//! One writer per folder, on the kernel's advisory file locks: a lock is held as long as
//! the process keeps the file open, and released by the kernel when the process ends,
//! however it ends. There is nothing to go stale, so nothing is ever taken over. The lock
//! file stays in the folder (deleting it would let a second writer lock a new file while a
//! third still holds the old one); it holds the last holder's pid, for messages only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file of a run folder.
pub use netaug_fs::RUN_LOCK_FILE;

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{}: in use by another netaug process{}; wait for it or stop it", path.display(), pid.map_or_else(String::new, |p| format!(" (pid {p})")))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder, as it wrote itself into the file (absent if it had not yet).
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl FolderLock {
    /// Takes the lock `dir/name` (creating `dir` if needed) without waiting.
    pub fn acquire(dir: &Path, name: &str) -> Result<Self, LockError> {
        let path = dir.join(name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    pid: text.trim().parse().ok(),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("netaug-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_held_lock_refuses_naming_the_holder_and_frees_on_drop() {
        let dir = temp("held");
        let held = FolderLock::acquire(&dir, RUN_LOCK_FILE).unwrap();
        let err = FolderLock::acquire(&dir, RUN_LOCK_FILE).unwrap_err();
        let pid = std::process::id();
        assert!(matches!(err, LockError::Held { pid: Some(p), .. } if p == pid));
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
        drop(held);
        // Released: the next writer takes it; the file (with an old pid) is no obstacle.
        let again = FolderLock::acquire(&dir, RUN_LOCK_FILE).unwrap();
        assert!(again.path().is_file());
        drop(again);
        // Neither an empty file nor one naming a live unrelated process blocks anyone.
        for content in ["", "1"] {
            std::fs::write(dir.join(RUN_LOCK_FILE), content).unwrap();
            drop(FolderLock::acquire(&dir, RUN_LOCK_FILE).unwrap());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn of_two_racing_writers_exactly_one_wins_every_time() {
        let dir = temp("race");
        for _ in 0..200 {
            let barrier = std::sync::Barrier::new(2);
            let won: Vec<Option<FolderLock>> = std::thread::scope(|s| {
                let take = || {
                    barrier.wait();
                    FolderLock::acquire(&dir, RUN_LOCK_FILE).ok()
                };
                let a = s.spawn(take);
                let b = s.spawn(take);
                vec![a.join().unwrap(), b.join().unwrap()]
            });
            // Both handles are alive here, so a late second winner would show.
            assert_eq!(won.iter().filter(|w| w.is_some()).count(), 1);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
