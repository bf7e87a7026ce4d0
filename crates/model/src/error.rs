//! Typed errors of the model crate.

use std::path::PathBuf;

use netaug_fs::FileError;

/// Everything that can go wrong when building, loading or saving a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model name is not in the zoo.
    #[error("unknown model `{name}`; known models: {known}")]
    UnknownModel {
        /// The name that was asked for.
        name: String,
        /// The zoo's names, comma separated.
        known: String,
    },
    /// A width multiplier in a model name (`mbv2-<w>`) could not be parsed or is out of range.
    #[error(
        "invalid width multiplier `{value}` in model name `{name}` (expected a number in (0, 4], e.g. mbv2-0.35)"
    )]
    BadWidth {
        /// The full model name.
        name: String,
        /// The part after the dash.
        value: String,
    },
    /// A NetAug factor list is empty, not finite, below 1.0, or does not start with 1.0.
    #[error(
        "invalid {list}: {reason} (got {values:?}); factor lists start with 1.0, e.g. [1.0, 1.6, 2.2]"
    )]
    BadFactors {
        /// `aug_expand_list` or `aug_width_mult_list`.
        list: &'static str,
        /// What is wrong.
        reason: &'static str,
        /// The values given.
        values: Vec<f64>,
    },
    /// A structural argument (classes, channels, resolution) is out of range.
    #[error("invalid {what}: {value} ({reason})")]
    BadArgument {
        /// Which argument.
        what: &'static str,
        /// Its value.
        value: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A network description or a set of widths is inconsistent.
    #[error("invalid architecture: {0}")]
    BadArchitecture(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model description file could not be parsed.
    #[error("{path}: invalid model description: {source}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A saved model's file is unreadable or does not fit the network it describes.
    #[error(transparent)]
    File(FileError),
}

impl ModelError {
    /// The error `e` on file `path`.
    pub fn file(path: impl Into<PathBuf>, e: impl Into<netaug_fs::BoxError>) -> Self {
        Self::File(FileError::new(path, e))
    }
}
