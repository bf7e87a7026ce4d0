//! Errors of the operations. [`OpsError::is_input`] tells the user's input at fault (exit
//! code 2) from a failure of the work (exit 1).

/// An error of an operation.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// An option's value, a file or a dataset the user gave cannot be used; the message
    /// names it.
    #[error("{0}")]
    Input(String),
    /// The trainer's (it tells input from failure itself).
    #[error(transparent)]
    Train(#[from] netaug_trainer::TrainError),
    /// A device this binary or machine does not have.
    #[error(transparent)]
    Device(#[from] netaug_trainer::backend::DeviceError),
    /// The report's (it tells input from failure itself).
    #[error(transparent)]
    Analysis(#[from] netaug_analysis::AnalysisError),
    /// Writing an output (a file, a saved net's folder) failed: a full or read-only disk.
    #[error("writing failed: {0}")]
    Write(#[source] netaug_fs::FileError),
    /// Writing a dataset failed.
    #[error(transparent)]
    Data(netaug_data::DataError),
    /// Building a deployment graph failed.
    #[error(transparent)]
    Deploy(#[from] netaug_deploy::DeployError),
}

impl OpsError {
    /// An input error whose message is `what: why`.
    pub(crate) fn input(what: impl std::fmt::Display, why: impl std::fmt::Display) -> Self {
        Self::Input(format!("{what}: {why}"))
    }

    /// A write error of `path`.
    pub(crate) fn write(path: &std::path::Path, source: impl Into<netaug_fs::BoxError>) -> Self {
        Self::Write(netaug_fs::FileError::new(path, source))
    }

    /// Whether the user's input is at fault, as opposed to the work failing.
    pub fn is_input(&self) -> bool {
        match self {
            Self::Input(_) | Self::Device(_) => true,
            Self::Train(e) => e.is_input(),
            Self::Analysis(e) => e.is_input(),
            Self::Write(_) | Self::Data(_) | Self::Deploy(_) => false,
        }
    }
}
