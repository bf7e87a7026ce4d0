//! netaug-trainer: run configuration, backend choice, the training loop (baseline, NetAug,
//! KD, regularizers), BN re-calibration, checkpoints, metrics and evaluation.
#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod checkpoint;
mod classification;
pub mod config;
pub mod data;
pub mod detection;
mod error;
pub mod eval;
pub mod interrupt;
pub mod layout;
mod ledger;
pub mod lock;
pub mod loss;
pub mod metrics;
mod observer;
pub mod optim;
pub mod pth;
mod replicas;
mod run;
mod sampling;
mod scalars;
mod schedule;
pub mod step;
mod task;
mod train;
pub mod transfer;
pub mod world;

pub use config::{ConfigError, RunConfig};
pub use error::TrainError;
pub use layout::TrainOptions;
pub use metrics::{EpochMetrics, Status, Summary};
pub use observer::{Observer, Quiet, Running};
pub use scalars::StepMetrics;
pub use train::train;
pub use world::{Collective, World};
