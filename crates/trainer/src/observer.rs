//! How the loop reports progress, so the library stays free of terminal code: the CLI
//! draws bars, tests and sweeps stay quiet.

use crate::metrics::EpochReport;

/// Running figures of a phase, read from the device every `run.log_every` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Running {
    /// Mean loss so far.
    pub loss: f64,
    /// Top-1 so far (percent; classification).
    pub top1: Option<f64>,
    /// Images per second so far.
    pub images_per_second: f64,
}

/// Receives the progress of a run (from the thread that trains, which with replicas is
/// not the caller's).
pub trait Observer: Send {
    /// A phase of `total` steps begins (`"epoch 3/20"`, `"calibrate"`, `"eval"`).
    fn phase(&mut self, _name: &str, _total: usize) {}
    /// `done` steps of the phase are finished; `running` when fresh figures were read.
    fn advance(&mut self, _done: usize, _running: Option<Running>) {}
    /// The phase is over.
    fn finish_phase(&mut self) {}
    /// An epoch (of any task) is over; `line` is what it wrote to `metrics.jsonl`.
    fn epoch(&mut self, _line: &dyn EpochReport, _total_epochs: usize) {}
}

/// Reports nothing.
pub struct Quiet;

impl Observer for Quiet {}
