//! Errors of sweeps: [`SweepError::is_input`] tells the user's input at fault from the rest.

use std::path::PathBuf;

use netaug_fs::{BoxError, FileError};

/// An error of planning or running a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep file: malformed, an unknown key, a wrong type.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A run's config is invalid.
    #[error(transparent)]
    Config(#[from] netaug_trainer::ConfigError),
    /// The run table cannot be built: duplicate runs, dangling or cyclic references.
    #[error("{0}")]
    Plan(String),
    /// Another live sweep writes the results folder.
    #[error("{}: locked by a running sweep{}; wait for it or stop it", path.display(), pid.map_or_else(String::new, |p| format!(" (pid {p})")))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Its owner, as it wrote itself into the lock file.
        pid: Option<u32>,
    },
    /// The results folder holds runs of a sweep that differs from this one.
    #[error(
        "{out}: holds runs that this sweep does not have ({stale}); their sweep file or \
         overrides differ, and a report would show them beside this sweep's runs. Use \
         another --out, remove those run folders, or pass --force to keep them"
    )]
    Changed {
        /// The results folder.
        out: PathBuf,
        /// The runs in the folder that the new plan lacks (a few, then a count).
        stale: String,
    },
    /// sbatch, squeue or scancel failed.
    #[error("slurm: {0}")]
    Slurm(String),
    /// The sweep file could not be read (missing, a folder, unreadable): the user's input.
    #[error(transparent)]
    Unreadable(FileError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(FileError),
}

impl SweepError {
    /// An I/O error on `path`.
    pub fn file(path: impl Into<PathBuf>, e: impl Into<BoxError>) -> Self {
        Self::Io(FileError::new(path, e))
    }

    /// Whether the user's input is at fault (exit code 2).
    pub fn is_input(&self) -> bool {
        !matches!(self, Self::Io(_) | Self::Locked { .. } | Self::Slurm(_))
    }
}
