//! The error of reading a run config.

use std::path::PathBuf;

/// A configuration error: the file and the key path or value at fault, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key is unknown or has the wrong type.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `--set`).
        file: String,
        /// Dotted key path (`.` for the root).
        key: String,
        /// What is wrong.
        message: String,
    },
}
