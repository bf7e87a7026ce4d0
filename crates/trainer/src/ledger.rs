//! What every run keeps beside its network, for the training loop ([`crate::run`]) of
//! every task: the run folder, the loop's position ([`TrainState`]) and its clock, and the
//! bookkeeping around the steps: the step and epoch curves ([`crate::scalars`]), the
//! epoch's metrics file, best epoch and checkpoints, the exported net and `summary.json`,
//! the summed loss read back from the device, BN re-calibration phases.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use netaug_data::DataError;
use netaug_model::Supernet;

use crate::checkpoint::{self, BEST, LATEST, TrainState};
use crate::config::{ExportFrom, RunConfig};
use crate::error::TrainError;
use crate::layout::{CHECKPOINTS, EXPORTED, METRICS_FILE, SUMMARY_FILE, prepare_out};
use crate::metrics::{
    EpochLine, Selection, Status, Summary, read_metrics, write_atomic, write_metrics,
};
use crate::observer::Observer;
use crate::scalars::{Scalars, StepMetrics};

/// Where a resumed run continues: its latest checkpoint's folder (network and optimizer
/// state to load), the loop's position, and the metrics lines up to it.
pub(crate) struct ResumePoint<M> {
    /// The checkpoint folder.
    pub dir: PathBuf,
    /// The loop's position.
    pub state: TrainState,
    /// `metrics.jsonl` up to the checkpoint's epoch.
    pub metrics: Vec<M>,
}

/// Creates the run folder `out` for `config` (or, resuming, checks it holds the same
/// run) and, when resuming a run that has a checkpoint, says where it continues.
pub(crate) fn open_run<M: EpochLine>(
    config: &RunConfig,
    out: &Path,
    resume: bool,
) -> Result<Option<ResumePoint<M>>, TrainError> {
    prepare_out(config, out, resume)?;
    resume_point(out, resume)
}

/// Where a resumed run continues, read without writing anything (what a rank other than
/// 0 reads, once rank 0 has opened the folder).
pub(crate) fn resume_point<M: EpochLine>(
    out: &Path,
    resume: bool,
) -> Result<Option<ResumePoint<M>>, TrainError> {
    if !resume {
        return Ok(None);
    }
    let Some(dir) = checkpoint::find(&out.join(CHECKPOINTS), LATEST) else {
        return Ok(None);
    };
    let state = checkpoint::load_state(&dir)?;
    let path = out.join(METRICS_FILE);
    let mut metrics: Vec<M> = read_metrics(&path)?;
    metrics.retain(|m| m.epoch() <= state.epochs_done);
    // Metrics are written before each checkpoint, so every epoch the checkpoint has done
    // has its line. A history with holes would end "done" with epochs missing.
    let epochs: Vec<usize> = metrics.iter().map(|m| m.epoch()).collect();
    if epochs != (1..=state.epochs_done).collect::<Vec<_>>() {
        return Err(TrainError::file(
            &path,
            format!(
                "holds epochs {epochs:?}, but the checkpoint is after epoch {}: the run's \
                 history is damaged; restore the file or start the run again in a new folder",
                state.epochs_done
            ),
        ));
    }
    tracing::info!(
        "resuming {} after epoch {} (step {})",
        out.display(),
        state.epochs_done,
        state.step
    );
    Ok(Some(ResumePoint {
        dir,
        state,
        metrics,
    }))
}

/// A run's folder, position, clock and curves.
pub(crate) struct Ledger {
    /// The run folder.
    pub out: PathBuf,
    /// Where the loop stands (saved with each checkpoint).
    pub state: TrainState,
    /// Since when wall time is not yet in `state`.
    started: Instant,
    /// `steps.jsonl` and `tb/`; `None` on a rank that writes nothing.
    scalars: Option<Scalars>,
}

impl Ledger {
    /// A ledger for `out` at `state`, its clock started at `started`; opens the run's
    /// curves at the state's step with the epoch lines `metrics` kept.
    pub fn open<M: EpochLine>(
        out: PathBuf,
        config: &RunConfig,
        state: TrainState,
        metrics: &[M],
        started: Instant,
    ) -> Result<Self, TrainError> {
        let scalars = Scalars::open(&out, &config.to_yaml(), state.step, metrics)?;
        Ok(Self {
            out,
            state,
            started,
            scalars: Some(scalars),
        })
    }

    /// A ledger that keeps the position and clock but writes nothing: a rank other than
    /// 0 of a run over several processes.
    pub fn silent(out: PathBuf, state: TrainState, started: Instant) -> Self {
        Self {
            out,
            state,
            started,
            scalars: None,
        }
    }

    /// Whether this ledger writes the run folder.
    pub fn writes(&self) -> bool {
        self.scalars.is_some()
    }

    /// Records a step line (`steps.jsonl` and TensorBoard).
    pub fn log_step(&mut self, line: &StepMetrics) -> Result<(), TrainError> {
        match &mut self.scalars {
            Some(s) => s.step(line),
            None => Ok(()),
        }
    }

    /// Moves the wall time since the last call into the state.
    fn tick(&mut self) {
        self.state.wall_seconds += self.started.elapsed().as_secs_f64();
        self.started = Instant::now();
    }

    /// Wall seconds of the run so far, resumed parts included.
    pub fn wall_seconds(&self) -> f64 {
        self.state.wall_seconds + self.started.elapsed().as_secs_f64()
    }

    /// Training images per second over the run's training steps.
    pub fn images_per_second(&self) -> f64 {
        self.state.train_images as f64 / self.state.train_seconds.max(1e-9)
    }

    /// Counts an epoch's training steps.
    pub fn record_training(&mut self, images: usize, seconds: f64) {
        self.state.train_seconds += seconds;
        self.state.train_images += images as u64;
    }

    /// Ends 0-based `epoch`: rewrites `metrics.jsonl` with `metrics`, makes this epoch the
    /// best when `value` beats the best so far by `selection` (kept in the state), advances the
    /// state and writes `checkpoints/latest` (with the optimizer) and, when best,
    /// `checkpoints/best`. Metrics come before the checkpoint: a kill in between redoes
    /// this epoch on resume, and the line it wrote is dropped then.
    pub fn end_epoch<M: EpochLine>(
        &mut self,
        epoch: usize,
        metrics: &[M],
        value: f64,
        selection: Selection,
        net: &impl Supernet,
        optimizer: &ModuleOptimizer,
    ) -> Result<(), TrainError> {
        let Some(scalars) = &mut self.scalars else {
            self.state.epochs_done = epoch + 1;
            self.tick();
            return Ok(());
        };
        write_metrics(&self.out.join(METRICS_FILE), metrics)?;
        if let Some(line) = metrics.last() {
            scalars.epoch(line)?;
        }
        let is_best = self.state.best_epoch == 0 || selection.improves(value, self.state.best);
        if is_best {
            self.state.best = value;
            self.state.best_epoch = epoch + 1;
        }
        self.state.epochs_done = epoch + 1;
        self.tick();
        let root = self.out.join(CHECKPOINTS);
        checkpoint::save(&root, LATEST, net, Some(optimizer), &self.state)?;
        if is_best {
            checkpoint::save(&root, BEST, net, None, &self.state)?;
        }
        Ok(())
    }

    /// The checkpoint the exported net comes from: `checkpoints/best` for
    /// [`ExportFrom::Best`] (the official export), `None` for the net in memory (the last
    /// epoch).
    pub fn export_source(&self, from: ExportFrom) -> Option<PathBuf> {
        match from {
            ExportFrom::Best => checkpoint::find(&self.out.join(CHECKPOINTS), BEST),
            ExportFrom::Last => None,
        }
    }

    /// Writes the exported target net into `exported/`.
    pub fn export(&mut self, exported: &impl Supernet) -> Result<(), TrainError> {
        if !self.writes() {
            return Ok(());
        }
        checkpoint::write_dir(&self.out, EXPORTED, |tmp| {
            exported.save(tmp).map_err(|e| TrainError::write(tmp, e))
        })?;
        self.tick();
        Ok(())
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &Summary) -> Result<(), TrainError> {
        if !self.writes() {
            return Ok(());
        }
        let json = serde_json::to_string_pretty(summary).expect("summaries serialize");
        write_atomic(&self.out.join(SUMMARY_FILE), json.as_bytes())
    }

    /// Records why the run stopped: `summary.json` from `summary` (given the status and
    /// the reason), `interrupted` for a signal, else `failed`. Returns `error`, the one to
    /// report: a summary that cannot be written too (a full disk) is logged, never put
    /// in its place.
    pub fn stopped(
        &self,
        error: TrainError,
        summary: impl FnOnce(Status, Option<String>) -> Summary,
    ) -> TrainError {
        let status = match error {
            TrainError::Interrupted(_) => Status::Interrupted,
            _ => Status::Failed,
        };
        if let Err(w) = self.write_summary(&summary(status, Some(error.to_string()))) {
            tracing::error!("{w}");
        }
        error
    }
}

/// The summed loss so far, read from the device; a non-finite sum stops the run as
/// diverged at 1-based `epoch` and `step`.
pub(crate) fn loss_so_far(
    loss_sum: &Tensor<1>,
    epoch: usize,
    step: usize,
) -> Result<f64, TrainError> {
    let loss = loss_sum.clone().into_scalar::<f64>();
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(TrainError::Diverged(format!(
            "mean training loss is {loss} at epoch {epoch}, step {step}"
        )))
    }
}

/// BN re-calibration of `net` as an observed phase over `batches` (of `total`); a loader
/// error stops the phase and is returned.
pub(crate) fn calibrate_phase(
    observer: &mut dyn Observer,
    net: &impl Supernet,
    total: usize,
    batches: impl Iterator<Item = Result<Tensor<4>, DataError>>,
) -> Result<(), TrainError> {
    let mut failed = None;
    observer.phase("calibrate BN", total);
    let mut done = 0;
    let tensors = batches.map_while(|b| match b {
        Ok(b) => {
            done += 1;
            observer.advance(done, None);
            Some(b)
        }
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    net.calibrate_bn(tensors);
    observer.finish_phase();
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
