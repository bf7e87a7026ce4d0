//! Errors of detection evaluation.

use std::path::PathBuf;

/// An error reading ground truth or detections.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Detections that do not fit the ground truth.
    #[error("{0}")]
    Mismatch(String),
}

impl EvalError {
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, e: impl ToString) -> Self {
        Self::File {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
