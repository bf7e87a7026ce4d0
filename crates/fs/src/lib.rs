//! netaug-fs: files and folders written whole or not at all, and the error that names the
//! file at fault. A file or folder is written under a temporary name beside its
//! destination and renamed into place, so a reader, a crash or a kill sees the old one or
//! the new one, never half of either.
#![warn(missing_docs)]

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Any error, as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong with a file or folder: its path, and the cause as the error's source
/// (an `io::Error` keeps its kind), shown as `path: cause`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or folder.
    pub path: PathBuf,
    /// Why: an I/O, parse or format error, or a sentence.
    #[source]
    pub source: BoxError,
}

impl FileError {
    /// The error `source` on `path`.
    pub fn new(path: impl Into<PathBuf>, source: impl Into<BoxError>) -> Self {
        Self {
            path: path.into(),
            source: source.into(),
        }
    }
}

/// The lock file a training process holds on its run folder for as long as it runs.
pub const RUN_LOCK_FILE: &str = ".run.lock";

/// Whether a process holds the kernel's advisory lock on the file `path` (a missing file
/// is not held): a run folder whose lock is held is training now.
pub fn is_locked(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

/// `.<file name of path>.<tag>` beside `path`: where a file or folder is written before
/// its rename, or where the one it replaces waits to be removed.
pub fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".to_string(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{tag}"))
}

/// Whether `name` is a temporary sibling that [`write_file`] or [`write_dir`] writes
/// (`.<name>.tmp`, `.<name>.tmp-<pid>`, `.<name>.old`): what a kill in the middle of a write
/// leaves behind, never a file of its own.
pub fn is_leftover(name: &str) -> bool {
    let pid = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    name.starts_with('.')
        && (name.ends_with(".tmp")
            || name.ends_with(".old")
            || name.rsplit_once(".tmp-").is_some_and(|(_, p)| pid(p)))
}

/// Writes `bytes` to `path` whole: into a temporary sibling, synced, then renamed over
/// `path`. On failure the temporary file is removed and `path` is as it was.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // The process id keeps two writers of one file off each other's temporary file.
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The folder `.<name>.old` beside `dest`: where [`write_dir`] keeps the folder it
/// replaces until the new one is in place. A reader that finds no `dest` (a kill between
/// the two renames) finds the previous folder there.
pub fn old_dir(dest: &Path) -> PathBuf {
    sibling(dest, "old")
}

/// Fills the folder `dest` through `fill` on a fresh temporary sibling, then swaps it in
/// (`dest -> .dest.old`, `tmp -> dest`, remove `.dest.old`), so at every moment one whole
/// folder exists. On failure the temporary folder is removed and a `dest` that existed is
/// put back. `io` turns an I/O error on a path into the caller's error.
pub fn write_dir<E>(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
    io: impl Fn(&Path, io::Error) -> E,
) -> Result<(), E> {
    let tmp = sibling(dest, "tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let result = fill(&tmp).and_then(|()| swap_in(&tmp, dest).map_err(|e| io(dest, e)));
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Renames `tmp` to `dest`, moving an existing `dest` aside first and removing it after.
fn swap_in(tmp: &Path, dest: &Path) -> io::Result<()> {
    let old = old_dir(dest);
    if !dest.exists() {
        return fs::rename(tmp, dest);
    }
    if old.exists() {
        fs::remove_dir_all(&old)?;
    }
    fs::rename(dest, &old)?;
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::rename(&old, dest);
        return Err(e);
    }
    fs::remove_dir_all(&old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(_: &Path, e: io::Error) -> io::Error {
        e
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netaug-fs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_lock_reads_as_held_while_a_handle_holds_it() {
        let path = scratch("lock").join(RUN_LOCK_FILE);
        assert!(!is_locked(&path), "a missing file is not held");
        let file = fs::File::create(&path).unwrap();
        assert!(!is_locked(&path));
        file.lock().unwrap();
        assert!(is_locked(&path));
        drop(file);
        assert!(!is_locked(&path));
    }

    #[test]
    fn a_file_error_names_the_file_and_keeps_its_cause() {
        let e = FileError::new("/r/summary.json", io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/r/summary.json: "), "{e}");
        let cause = std::error::Error::source(&e).unwrap();
        let io = cause.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(FileError::new("x", "is empty").to_string(), "x: is empty");
    }

    #[test]
    fn what_a_killed_write_leaves_is_told_from_other_files() {
        for name in [".config.yaml.tmp-5068", ".latest.tmp", ".best.old"] {
            assert!(is_leftover(name), "{name}");
        }
        for name in [
            "config.yaml",
            ".run.lock",
            "a.tmp",
            ".x.tmp-",
            ".x.tmp-12a",
            "train.log",
        ] {
            assert!(!is_leftover(name), "{name}");
        }
        let dir = scratch("names");
        let path = dir.join("config.yaml");
        let tmp = sibling(&path, &format!("tmp-{}", std::process::id()));
        assert!(is_leftover(&tmp.file_name().unwrap().to_string_lossy()));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = scratch("file");
        let path = dir.join("summary.json");
        write_file(&path, b"old").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("summary.json")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_fill_leaves_the_old_folder_and_no_temporary() {
        let dir = scratch("dir");
        let dest = dir.join("best");
        write_dir(&dest, |tmp| fs::write(tmp.join("a"), b"1"), keep).unwrap();
        let err = write_dir(
            &dest,
            |tmp| {
                fs::write(tmp.join("b"), b"2")?;
                Err(io::Error::other("disk full"))
            },
            keep,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"1");
        assert!(!dest.join("b").exists());
        assert!(!sibling(&dest, "tmp").exists() && !old_dir(&dest).exists());
        write_dir(&dest, |tmp| fs::write(tmp.join("c"), b"3"), keep).unwrap();
        assert!(dest.join("c").exists() && !dest.join("a").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
