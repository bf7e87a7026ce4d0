//! Errors of the report.

use std::path::PathBuf;

use netaug_fs::{BoxError, FileError};

/// An error while reading results or writing the report.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A file could not be read, parsed or written.
    #[error(transparent)]
    File(FileError),
    /// Writing a report file failed (a full or read-only disk): not the input's fault.
    #[error("writing failed: {0}")]
    Write(#[source] FileError),
    /// No finished or failed run was found.
    #[error("{0}: no runs (expected run folders with summary.json under runs/)")]
    Empty(PathBuf),
    /// A polars operation failed.
    #[error("aggregating the results: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
}

impl AnalysisError {
    /// Whether the user's input is at fault (a missing or malformed results folder).
    pub fn is_input(&self) -> bool {
        !matches!(self, Self::Polars(_) | Self::Write(_))
    }

    /// A write error.
    pub fn write(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::Write(FileError::new(path, e))
    }

    /// A file error.
    pub fn file(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::File(FileError::new(path, e))
    }
}
