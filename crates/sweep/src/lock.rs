//! One sweep per results folder: a lock file holding the owner's pid. A lock whose process
//! is gone (a killed sweep) is stale and taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::SweepError;

/// Held while a sweep writes its folder; removed on drop.
pub struct Lock {
    path: PathBuf,
}

/// The lock file's name.
pub const LOCK_FILE: &str = ".sweep.lock";

impl Lock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, SweepError> {
        std::fs::create_dir_all(dir).map_err(|e| SweepError::file(dir, e))?;
        let path = dir.join(LOCK_FILE);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).map_err(|e| SweepError::file(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if alive(pid) => {
                            return Err(SweepError::Locked { path, pid });
                        }
                        _ => {
                            tracing::warn!("{}: stale lock, taking over", path.display());
                            std::fs::remove_file(&path).map_err(|e| SweepError::file(&path, e))?;
                        }
                    }
                }
                Err(e) => return Err(SweepError::file(&path, e)),
            }
        }
        Err(SweepError::file(&path, "could not take the lock"))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists (Linux: /proc).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_refuses_and_a_stale_one_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("netaug-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let held = Lock::acquire(&dir).unwrap();
        // Our own pid is alive: a second sweep of this folder is refused.
        std::fs::write(dir.join(LOCK_FILE), "1").unwrap(); // pid 1 always exists
        assert!(matches!(
            Lock::acquire(&dir),
            Err(SweepError::Locked { pid: 1, .. })
        ));
        // A pid that cannot exist: stale.
        std::fs::write(dir.join(LOCK_FILE), "4000000000").unwrap();
        let again = Lock::acquire(&dir).unwrap();
        drop(held);
        drop(again);
    }
}
