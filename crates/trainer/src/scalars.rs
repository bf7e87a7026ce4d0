//! The run's curves beyond `metrics.jsonl`: `steps.jsonl` (one object every `run.log_every`
//! steps: the training loss since the last one, the learning rate, images per second) and
//! TensorBoard event files in `tb/` holding the same per-step scalars (`step/...`, x axis
//! the global step), every number of each epoch's metrics line (`epoch/...`, x axis the
//! epoch) and the run's config as text.
//!
//! Both follow the checkpoints: a resumed run drops the step lines after its checkpoint's
//! step and rewrites `tb/` from what is kept (one event file), so a run resumed any number
//! of times shows each step and epoch once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use netaug_tensorboard::EventWriter;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::layout::{STEPS_FILE, TENSORBOARD};
use crate::metrics::{EpochLine, read_lines, write_lines};

/// One line of `steps.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// 1-based global step (steps of every epoch so far).
    pub step: usize,
    /// 1-based epoch of the step.
    pub epoch: usize,
    /// Mean loss of the target net over the images since the previous line of the epoch.
    pub train_loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Training images per second since the previous line of the epoch.
    pub images_per_second: f64,
    /// Seconds since the Unix epoch when the step ended.
    pub wall_time: f64,
}

/// Where an epoch's previous step line was taken (summed loss, images, time), so that the
/// next line covers the steps since.
pub(crate) struct StepWindow {
    loss: f64,
    images: usize,
    at: Instant,
}

impl StepWindow {
    /// The window of an epoch starting at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            loss: 0.0,
            images: 0,
            at: start,
        }
    }

    /// The line of global `step` (1-based `epoch`, learning rate `lr`) from the epoch's
    /// summed loss and images so far; the next window starts here.
    pub fn line(
        &mut self,
        step: usize,
        epoch: usize,
        loss: f64,
        images: usize,
        lr: f64,
    ) -> StepMetrics {
        let now = Instant::now();
        let window = (images - self.images).max(1) as f64;
        let line = StepMetrics {
            step,
            epoch,
            train_loss: (loss - self.loss) / window,
            lr,
            images_per_second: window / (now - self.at).as_secs_f64().max(1e-9),
            wall_time: netaug_tensorboard::now(),
        };
        *self = Self {
            loss,
            images,
            at: now,
        };
        line
    }
}

/// The tag of the config text in TensorBoard.
pub const CONFIG_TAG: &str = "config";

/// Writes `steps.jsonl` and `tb/` of a run as it trains.
pub(crate) struct Scalars {
    steps_path: PathBuf,
    steps: BufWriter<File>,
    events: EventWriter,
    tb: PathBuf,
}

impl Scalars {
    /// Opens the curves of the run in `out` at global step `step` with the epoch lines
    /// `metrics` kept: step lines after `step` are dropped, and `tb/` is written anew from
    /// `config_yaml`, the kept step lines and `metrics`.
    pub fn open<M: EpochLine>(
        out: &Path,
        config_yaml: &str,
        step: usize,
        metrics: &[M],
    ) -> Result<Self, TrainError> {
        let steps_path = out.join(STEPS_FILE);
        let mut kept = read_steps(&steps_path)?;
        kept.retain(|s| s.step <= step);
        write_lines(&steps_path, &kept)?;
        let steps = OpenOptions::new()
            .append(true)
            .open(&steps_path)
            .map_err(|e| TrainError::write(&steps_path, e))?;

        let tb = out.join(TENSORBOARD);
        remove_event_files(&tb)?;
        let events = EventWriter::create(&tb).map_err(|e| TrainError::write(&tb, e))?;
        let mut scalars = Self {
            steps_path,
            steps: BufWriter::new(steps),
            events,
            tb,
        };
        let now = netaug_tensorboard::now();
        let markdown = format!("```yaml\n{config_yaml}```");
        scalars
            .events
            .text(CONFIG_TAG, 0, &markdown, now)
            .map_err(|e| TrainError::write(&scalars.tb, e))?;
        for s in &kept {
            scalars.step_events(s)?;
        }
        for m in metrics {
            scalars.epoch_events(m, now)?;
        }
        scalars.flush()?;
        Ok(scalars)
    }

    /// Appends a step line and its events (written through at once, for live viewers).
    pub fn step(&mut self, s: &StepMetrics) -> Result<(), TrainError> {
        let line = serde_json::to_string(s).expect("step lines serialize");
        writeln!(self.steps, "{line}").map_err(|e| TrainError::write(&self.steps_path, e))?;
        self.step_events(s)?;
        self.flush()
    }

    /// Writes the events of an epoch's metrics line.
    pub fn epoch<M: EpochLine>(&mut self, line: &M) -> Result<(), TrainError> {
        self.epoch_events(line, netaug_tensorboard::now())?;
        self.flush()
    }

    fn step_events(&mut self, s: &StepMetrics) -> Result<(), TrainError> {
        let step = s.step as i64;
        let values = [
            ("step/train_loss", s.train_loss),
            ("step/lr", s.lr),
            ("step/images_per_second", s.images_per_second),
        ];
        for (tag, v) in values {
            self.events
                .scalar(tag, step, v, s.wall_time)
                .map_err(|e| TrainError::write(&self.tb, e))?;
        }
        Ok(())
    }

    /// Every number of the line but the epoch itself, as `epoch/<field>`.
    fn epoch_events<M: EpochLine>(&mut self, line: &M, wall_time: f64) -> Result<(), TrainError> {
        let epoch = line.epoch() as i64;
        let value = serde_json::to_value(line).expect("metrics serialize");
        let Some(fields) = value.as_object() else {
            return Ok(());
        };
        for (key, v) in fields {
            if let Some(v) = v.as_f64().filter(|_| key != "epoch") {
                self.events
                    .scalar(&format!("epoch/{key}"), epoch, v, wall_time)
                    .map_err(|e| TrainError::write(&self.tb, e))?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TrainError> {
        self.steps
            .flush()
            .map_err(|e| TrainError::write(&self.steps_path, e))?;
        self.events
            .flush()
            .map_err(|e| TrainError::write(&self.tb, e))
    }
}

/// Reads `steps.jsonl`; a missing file is no steps.
pub fn read_steps(path: &Path) -> Result<Vec<StepMetrics>, TrainError> {
    read_lines(path)
}

/// Removes the event files in `tb` (and nothing else a user put there).
fn remove_event_files(tb: &Path) -> Result<(), TrainError> {
    let entries = match std::fs::read_dir(tb) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::file(tb, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| TrainError::file(tb, e))?.path();
        let is_events = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("events.out.tfevents."));
        if is_events {
            std::fs::remove_file(&path).map_err(|e| TrainError::write(&path, e))?;
        }
    }
    Ok(())
}
