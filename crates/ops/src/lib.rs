//! netaug-ops: the work of each `netaug` command as one library operation. An operation
//! takes typed options and returns a report that prints as text (`Display`) and as JSON
//! (`Serialize`); the command line only parses arguments and prints.
#![warn(missing_docs)]

pub mod bench;
pub mod dataset;
pub mod detect;
mod error;
pub mod eval;
pub mod export;
pub mod profile;
mod run_folder;
#[cfg(feature = "clap")]
pub mod values;

pub use error::OpsError;

/// The input side of a net that no run folder describes: the paper's ImageNet resolution.
pub const DEFAULT_RESOLUTION: usize = 224;
