//! Typed errors of the data crate.

use std::path::PathBuf;

/// Everything that can go wrong reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset name is not known.
    #[error("unknown dataset `{name}`; known datasets: {}", known.join(", "))]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The names known.
        known: &'static [&'static str],
    },
    /// A file or folder of the layout is missing.
    #[error("{path}: not found; expected the {dataset} layout: {layout}")]
    Layout {
        /// Dataset name.
        dataset: &'static str,
        /// What was looked for.
        path: PathBuf,
        /// The layout, in one line.
        layout: &'static str,
    },
    /// A file exists but its content is wrong.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The split does not exist in this dataset.
    #[error("dataset `{dataset}` has no split `{split}`; it has: {known}")]
    UnknownSplit {
        /// Dataset name.
        dataset: String,
        /// Asked-for split.
        split: String,
        /// Known splits, comma separated.
        known: String,
    },
    /// A bad option value.
    #[error("{0}")]
    BadOption(String),
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A malformed file.
    pub fn bad(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::BadFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
