//! What a kind of run brings to the one training loop ([`crate::run`]): its data, how a
//! batch is scored, how the target net is evaluated, and what its metrics lines and
//! summary hold. Classification ([`crate::classification`]) and detection
//! ([`crate::detection::task`]) are the two tasks; the loop, the NetAug step, the
//! schedule, checkpoints and resume are the same for both.

use burn::tensor::{Device, Int, Tensor};
use netaug_data::{BatchPart, DataError};
use netaug_model::{AugFactors, InitKind, Supernet};

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::metrics::{EpochLine, Metrics, Selection};
use crate::observer::Observer;

/// BN re-calibration batches, on the device.
pub(crate) type Calibration<'a> = Box<dyn Iterator<Item = Result<Tensor<4>, DataError>> + 'a>;

/// One pass of a step's net over its input.
pub(crate) struct Scored {
    /// The loss to back-propagate.
    pub loss: Tensor<1>,
    /// Correct top-1 predictions (classification's target pass only).
    pub hits: Option<Tensor<1, Int>>,
}

/// What one epoch of training steps measured.
pub(crate) struct EpochTotals {
    /// Mean loss of the target net.
    pub loss: f64,
    /// Top-1 of the target net on the training batches (percent; classification).
    pub top1: Option<f64>,
    /// Images trained on.
    pub images: usize,
    /// Seconds of the steps.
    pub seconds: f64,
}

impl EpochTotals {
    /// Training images per second of the steps.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// A kind of training run.
pub(crate) trait Task: Sized + Send + Sync {
    /// The supernet it trains.
    type Net: Supernet + Sync;
    /// A batch of the training loader.
    type Batch;
    /// A batch on the device, with what its loss needs.
    type Input: Sync;
    /// What an evaluation of the target net gives.
    type Scores;
    /// One line of `metrics.jsonl`.
    type Line: EpochLine + Send;

    /// Opens the data of `config` and builds its supernet (before any checkpoint is read).
    fn open(config: &RunConfig, device: &Device) -> Result<(Self, Self::Net), TrainError>;
    /// Applies what a saved net does not hold, and reads what the steps need from it.
    fn configure(&mut self, net: &mut Self::Net) -> Result<(), TrainError>;
    /// Training batches per epoch.
    fn steps(&self) -> usize;
    /// Training images per epoch.
    fn train_images(&self) -> usize;
    /// The training batches of 0-based `epoch`.
    fn batches(&self, epoch: usize) -> impl Iterator<Item = Result<Self::Batch, DataError>>;
    /// `batch` split into `parts` batches of consecutive images, for replicas; refused by
    /// a task that trains on one replica (its config is refused before any step).
    fn split(&self, batch: Self::Batch, parts: usize) -> Result<Vec<Self::Batch>, TrainError> {
        let _ = (batch, parts);
        Err(TrainError::setting(
            "run.replicas",
            "this task trains on one replica",
        ))
    }
    /// From now on, [`Task::batches`] gives only `part` of every training batch (one
    /// rank's shares of a run over processes); refused by a task that trains in one.
    fn shard(&mut self, part: BatchPart) -> Result<(), TrainError> {
        let _ = part;
        Err(TrainError::setting(
            "detection",
            "a detection run trains in one process; start it without mpirun or srun",
        ))
    }
    /// `batch` on `device`, and its number of images.
    fn input(&self, batch: Self::Batch, device: &Device) -> (Self::Input, usize);
    /// The loss of the active sub-network of `net` on `input`; `augmented` says whether
    /// it is the augmented net.
    fn loss(&self, net: &Self::Net, input: &Self::Input, augmented: bool) -> Scored;
    /// The BN re-calibration batches (NetAug), and how many.
    fn calibration(&self, device: &Device) -> Option<(usize, Calibration<'_>)>;
    /// Evaluates the active sub-network of `net` on the validation split.
    fn evaluate(
        &self,
        net: &Self::Net,
        device: &Device,
        observer: &mut dyn Observer,
    ) -> Result<Self::Scores, TrainError>;
    /// The metrics line of 1-based `epoch`.
    fn line(
        &self,
        epoch: usize,
        train: &EpochTotals,
        val: Self::Scores,
        lr: f64,
        seconds: f64,
    ) -> Self::Line;
    /// The metric the best checkpoint follows.
    const SELECTION: Selection;
    /// The value of [`Task::SELECTION`] in `line`, read by its name; NaN (never the best)
    /// where the line has none, as a diverged run's non-finite values.
    fn score(line: &Self::Line) -> f64 {
        line.metric(Self::SELECTION.metric).unwrap_or(f64::NAN)
    }
    /// The summary's `final_*` metrics from the last line (0 for a run that ended before
    /// its first epoch).
    fn final_metrics(last: Option<&Self::Line>) -> Metrics;
}

/// The zoo name of `config`'s net (`model.name` with `model.width`).
pub(crate) fn model_name(config: &RunConfig) -> Result<String, TrainError> {
    config
        .model_name()
        .map_err(|m| TrainError::setting("model.width", m))
}

/// The model name, NetAug width factors and initialization of `config`, as every task's
/// supernet is built from them.
pub(crate) fn supernet_settings(
    config: &RunConfig,
) -> Result<(String, AugFactors, InitKind), TrainError> {
    let model = model_name(config)?;
    let factors = match &config.netaug {
        Some(n) => AugFactors::new(n.aug_expand_list.clone(), n.aug_width_mult_list.clone())?,
        None => AugFactors::none(),
    };
    Ok((model, factors, config.init_kind()))
}
