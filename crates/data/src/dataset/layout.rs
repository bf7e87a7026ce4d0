//! Helpers for reading the published layouts: finding the dataset's folder under an
//! outer root, its annotation files and their lines.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// The first of `candidates` (relative to `root`) that holds `marker`; the layout error
/// names the first candidate.
pub(super) fn resolve_root(
    dataset: &'static str,
    root: &Path,
    inner: &[&str],
    marker: &str,
    layout: &'static str,
) -> Result<PathBuf, DataError> {
    let candidates = std::iter::once(root.to_path_buf()).chain(inner.iter().map(|i| root.join(i)));
    for c in candidates {
        if c.join(marker).exists() {
            return Ok(c);
        }
    }
    if !root.is_dir() {
        return Err(DataError::Layout {
            dataset,
            path: root.to_path_buf(),
            layout,
        });
    }
    let path = match inner.first() {
        Some(i) => root.join(i).join(marker),
        None => root.join(marker),
    };
    Err(DataError::Layout {
        dataset,
        path,
        layout,
    })
}

/// Reads a text file, naming it on error.
pub(super) fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Non-empty, non-comment lines with their 1-based line numbers.
pub(super) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// `path` if it is a file, else the layout error naming it (annotation files and images).
pub(super) fn require_file(
    dataset: &'static str,
    path: PathBuf,
    layout: &'static str,
) -> Result<PathBuf, DataError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::Layout {
            dataset,
            path,
            layout,
        })
    }
}
