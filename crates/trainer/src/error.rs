//! Errors of the trainer. [`TrainError::is_input`] tells the CLI which ones are the user's
//! input at fault (exit code 2) and which are failures of the run.

use std::path::PathBuf;

use netaug_fs::{BoxError, FileError};

use crate::config::ConfigError;

/// How the message of a run whose loss became NaN or infinite begins.
pub const DIVERGED: &str = "training diverged";

/// An error of a training, evaluation or export.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration file or an override.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting that parsed but cannot be used (a missing dataset root, a device not
    /// compiled in), named by its key.
    #[error("{key}: {message}")]
    Setting {
        /// Dotted key or CLI option.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A device this binary or machine does not have.
    #[error(transparent)]
    Device(#[from] crate::backend::DeviceError),
    /// Reading the dataset failed.
    #[error(transparent)]
    Data(#[from] netaug_data::DataError),
    /// Building, loading or saving a network failed.
    #[error(transparent)]
    Model(#[from] netaug_model::ModelError),
    /// A run or checkpoint file.
    #[error(transparent)]
    File(FileError),
    /// Writing a run file or folder failed (a full or read-only disk): the run's failure,
    /// not the user's input.
    #[error("writing failed: {0}")]
    Write(#[source] FileError),
    /// The loss became NaN or infinite.
    #[error("{DIVERGED}: {0}")]
    Diverged(String),
    /// SIGINT or SIGTERM (the signal's number) stopped the run after a step.
    #[error("interrupted by {}", crate::interrupt::signal_name(*.0))]
    Interrupted(i32),
    /// Another process writes the run folder.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
    /// Rank 0 of a run over several processes refused or failed before training; the
    /// other ranks stop with its message.
    #[error("rank 0: {message}")]
    Leader {
        /// Rank 0's error.
        message: String,
        /// Whether it was the user's input at fault.
        input: bool,
    },
}

impl TrainError {
    /// A setting error for `key`.
    pub fn setting(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Setting {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A file error.
    pub fn file(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::File(FileError::new(path, e))
    }

    /// A write error.
    pub fn write(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::Write(FileError::new(path, e))
    }

    /// Whether the user's input is at fault (a bad config, key, path or file), as opposed
    /// to the run failing.
    pub fn is_input(&self) -> bool {
        if let Self::Leader { input, .. } = self {
            return *input;
        }
        !matches!(
            self,
            Self::Diverged(_) | Self::Locked(_) | Self::Write(_) | Self::Interrupted(_)
        )
    }
}
