//! netaug-trainer: run configuration, backend choice, the training loop (baseline, NetAug,
//! KD, regularizers), BN re-calibration, checkpoints, metrics and evaluation.
//!
//! Nothing here yet: the trainer issue builds it on `netaug-model` and `netaug-data`.
