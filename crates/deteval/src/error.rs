//! Errors of detection evaluation.

use std::path::PathBuf;

use netaug_fs::{BoxError, FileError};

/// An error reading ground truth or detections.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    File(FileError),
    /// Detections that do not fit the ground truth.
    #[error("{0}")]
    Mismatch(String),
}

impl EvalError {
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::File(FileError::new(path, e))
    }
}
