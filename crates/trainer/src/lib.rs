//! netaug-trainer: run configuration, backend choice, the training loop (baseline, NetAug,
//! KD, regularizers), BN re-calibration, checkpoints, metrics and evaluation.
//!
//! Built so far: the run configuration, the losses, the learning-rate schedule, the
//! optimizer and the NetAug step objective. The loop, checkpoints and `netaug train` come next.

pub mod config;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod step;

pub use config::{ConfigError, RunConfig};
