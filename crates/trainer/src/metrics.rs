//! The run's result files: `metrics.jsonl` (one object per epoch) and `summary.json`, in
//! the shape DESIGN.md fixes (accuracies and mAP in percent). Classification runs write
//! top-1/top-5, detection runs mAP50 and mAP@[.5:.95]; neither writes the other's.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch, warm-up included.
    pub epoch: usize,
    /// Mean loss of the target net over the epoch's steps.
    pub train_loss: f64,
    /// Training top-1 of the target net (percent).
    pub train_top1: f64,
    /// Validation loss (plain cross-entropy).
    pub val_loss: f64,
    /// Validation top-1 (percent).
    pub val_top1: f64,
    /// Validation top-5 (percent).
    pub val_top5: f64,
    /// Top-1 on a fixed sample of the training images, without augmentation (percent;
    /// with `data.train_eval_images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_eval_top1: Option<f64>,
    /// Test loss (plain cross-entropy; with `data.val_split`, the evaluation split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    /// Test top-1 (percent; with `data.val_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top1: Option<f64>,
    /// Test top-5 (percent; with `data.val_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top5: Option<f64>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall seconds of the epoch (training, calibration, evaluation).
    pub seconds: f64,
    /// Training images per second (training steps only).
    pub images_per_second: f64,
}

/// One line of a detection run's `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetEpochMetrics {
    /// 1-based epoch, warm-up included.
    pub epoch: usize,
    /// Mean YOLO loss of the target detector over the epoch's steps.
    pub train_loss: f64,
    /// Validation mAP at IoU 0.5 (percent; VOC: the devkit's 11-point mAP).
    pub val_map50: f64,
    /// Validation mAP over IoU 0.5:0.95 (percent; pycocotools' AP).
    pub val_map: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall seconds of the epoch (training, calibration, evaluation).
    pub seconds: f64,
    /// Training images per second (training steps only).
    pub images_per_second: f64,
}

/// What an observer sees of an epoch's metrics line.
pub trait EpochReport {
    /// The 1-based epoch.
    fn epoch(&self) -> usize;
    /// The line for people: training, validation, lr, speed, time.
    fn describe(&self) -> String;
}

/// An epoch's line of `metrics.jsonl`, as a task writes it.
pub trait EpochLine: EpochReport + Clone + Serialize + DeserializeOwned {}

impl EpochReport for EpochMetrics {
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn describe(&self) -> String {
        let fit = self
            .train_eval_top1
            .map_or_else(String::new, |t| format!(" (unaugmented {t:.2}%)"));
        let test = self
            .test_top1
            .map_or_else(String::new, |t| format!(" | test top-1 {t:.2}%"));
        format!(
            "train loss {:.4} top-1 {:.2}%{fit} | val loss {:.4} top-1 {:.2}% top-5 {:.2}%{test} \
             | lr {:.2e} | {:.0} img/s | {:.1} s",
            self.train_loss,
            self.train_top1,
            self.val_loss,
            self.val_top1,
            self.val_top5,
            self.lr,
            self.images_per_second,
            self.seconds
        )
    }
}

impl EpochLine for EpochMetrics {}

impl EpochReport for DetEpochMetrics {
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn describe(&self) -> String {
        format!(
            "train loss {:.4} | val mAP50 {:.2}% mAP {:.2}% | lr {:.2e} | {:.0} img/s | {:.1} s",
            self.train_loss,
            self.val_map50,
            self.val_map,
            self.lr,
            self.images_per_second,
            self.seconds
        )
    }
}

impl EpochLine for DetEpochMetrics {}

/// Outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Finished every epoch.
    Done,
    /// Stopped with an error (see `error`).
    Failed,
    /// Stopped by SIGINT or SIGTERM; `--resume` continues it.
    Interrupted,
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run directory's name.
    pub run_id: String,
    /// Dataset name.
    pub dataset: String,
    /// Zoo model name.
    pub model: String,
    /// Input resolution.
    pub resolution: usize,
    /// baseline, netaug, kd, kd+netaug, or the regularizers.
    pub method: String,
    /// Epochs, warm-up included.
    pub epochs: usize,
    /// Training images per epoch (after `data.train_subset`): with `epochs`, the
    /// training budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<u64>,
    /// Seed.
    pub seed: u64,
    /// Device name.
    pub device: String,
    /// Parameters of the target (deployed) net.
    pub params: u64,
    /// MACs of the target net for one image.
    pub macs: u64,
    /// Best validation top-1 over the epochs (percent; classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val_top1: Option<f64>,
    /// Epoch of the best validation top-1 (classification) or mAP50 (detection).
    pub best_epoch: usize,
    /// Validation top-1 after the last epoch (percent; classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_top1: Option<f64>,
    /// Validation top-5 after the last epoch (percent; classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_top5: Option<f64>,
    /// Test top-1 after the last epoch (percent; classification with `data.val_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_test_top1: Option<f64>,
    /// Test top-5 after the last epoch (percent; classification with `data.val_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_test_top5: Option<f64>,
    /// Best validation mAP50 over the epochs (percent; detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val_map50: Option<f64>,
    /// Validation mAP50 after the last epoch (percent; detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_map50: Option<f64>,
    /// Validation mAP@[.5:.95] after the last epoch (percent; detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_map: Option<f64>,
    /// Wall seconds of the whole run, resumed parts added.
    pub wall_seconds: f64,
    /// Training images per second over the run's training steps.
    pub images_per_second: f64,
    /// done or failed.
    pub status: Status,
    /// Why the run failed.
    pub error: Option<String>,
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader (or a
/// crash) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::write(path, e)
    })
}

/// Reads `metrics.jsonl`; a missing file is an empty history.
pub fn read_metrics<M: EpochLine>(path: &Path) -> Result<Vec<M>, TrainError> {
    read_lines(path)
}

/// Rewrites `metrics.jsonl` with `metrics` (atomically).
pub fn write_metrics<M: EpochLine>(path: &Path, metrics: &[M]) -> Result<(), TrainError> {
    write_lines(path, metrics)
}

/// Reads a JSON-lines file (blank lines skipped); a missing file is no lines. A last line
/// cut short (no newline after it, and not JSON: the write of a run killed by a power loss
/// or a full disk) is dropped with a warning; the run rewrites it.
pub(crate) fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::file(path, e)),
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let count = text.lines().count();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(v) => out.push(v),
            Err(_) if torn && i + 1 == count => {
                tracing::warn!(
                    "{}: dropped its last line, cut short ({} bytes, no newline)",
                    path.display(),
                    l.len()
                );
            }
            Err(e) => return Err(TrainError::file(path, format!("line {}: {e}", i + 1))),
        }
    }
    Ok(out)
}

/// Rewrites a JSON-lines file with `lines` (atomically).
pub(crate) fn write_lines<T: Serialize>(path: &Path, lines: &[T]) -> Result<(), TrainError> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&serde_json::to_string(line).expect("result lines serialize"));
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads `summary.json`, if there is one.
pub fn read_summary(path: &Path) -> Result<Option<Summary>, TrainError> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| TrainError::file(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrainError::file(path, e)),
    }
}
