//! The run's result files: `metrics.jsonl` (one object per epoch) and `summary.json`, in
//! the shape DESIGN.md fixes (accuracies and mAP in percent). Classification runs write
//! top-1/top-5, detection runs mAP50 and mAP@[.5:.95]; neither writes the other's.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{DIVERGED, TrainError};

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
pub trait EpochLine: EpochReport + Clone + Serialize + DeserializeOwned {
    /// The value the line holds under `name` (its key in `metrics.jsonl`), if a number.
    fn metric(&self, name: &str) -> Option<f64> {
        serde_json::to_value(self).ok()?.get(name)?.as_f64()
    }
}

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

/// Named metric values (percent).
pub type Metrics = BTreeMap<String, f64>;

/// The metric a task keeps its best checkpoint by, and which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Its name in a metrics line (`val_top1`, `val_map50`).
    pub metric: &'static str,
    /// Whether a higher value is better.
    pub higher_is_better: bool,
}

impl Selection {
    /// `metric`, the higher the better.
    pub const fn higher(metric: &'static str) -> Self {
        Self {
            metric,
            higher_is_better: true,
        }
    }

    /// Whether `value` beats `best`.
    pub fn improves(&self, value: f64, best: f64) -> bool {
        if self.higher_is_better {
            value > best
        } else {
            value < best
        }
    }

    /// Its key in the summary: `best_<metric>`.
    pub fn best_key(&self) -> String {
        format!("best_{}", self.metric)
    }
}

/// The numeric entries of the summary's remaining keys (a `null` or text one, as no
/// current run writes, is left out).
fn numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Metrics, D::Error> {
    let all = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
        .collect())
}

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
    /// Stopped at the epoch it was asked to pause at (`--pause-at`, a rung of successive
    /// halving), with its checkpoint; `--resume` continues it under its full schedule.
    Paused,
    /// Paused at a rung and not promoted by successive halving: it stays there for good
    /// (its checkpoint kept; `--resume` would still continue it).
    Stopped,
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
    /// Epoch of the best value of the task's selection metric.
    pub best_epoch: usize,
    /// The run's result by name, in percent, beside the keys above in the file: the best
    /// value of the task's selection metric (`best_val_top1`, `best_val_map50`) and the
    /// last epoch's (`final_val_top1`, `final_val_top5`, `final_test_top1`,
    /// `final_test_top5`; `final_val_map50`, `final_val_map`).
    #[serde(flatten, deserialize_with = "numbers")]
    pub metrics: Metrics,
    /// Wall seconds of the whole run, resumed parts added.
    pub wall_seconds: f64,
    /// Training images per second over the run's training steps.
    pub images_per_second: f64,
    /// done, failed, interrupted, paused or stopped.
    pub status: Status,
    /// Why the run failed.
    pub error: Option<String>,
}

impl Summary {
    /// Whether the run failed because its training diverged (its loss became NaN or
    /// infinite): starting it again would diverge again.
    pub fn diverged(&self) -> bool {
        self.status == Status::Failed
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(DIVERGED))
    }

    /// The value of metric `name`, if the run has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }

    /// The run's result in words: the final and best validation metric (and test top-1).
    pub fn result_line(&self) -> String {
        let m = |name: &str| self.metric(name);
        let epoch = self.best_epoch;
        if let Some(top1) = m("final_val_top1") {
            let best = m("best_val_top1").unwrap_or(top1);
            let test =
                m("final_test_top1").map_or_else(String::new, |t| format!(", test top-1 {t:.2}%"));
            format!("final val top-1 {top1:.2}% (best {best:.2}% at epoch {epoch}){test}")
        } else if let Some(map50) = m("final_val_map50") {
            let (map, best) = (
                m("final_val_map").unwrap_or(0.0),
                m("best_val_map50").unwrap_or(map50),
            );
            format!(
                "final val mAP50 {map50:.2}% mAP {map:.2}% (best mAP50 {best:.2}% at epoch {epoch})"
            )
        } else {
            "no evaluation".into()
        }
    }
}

/// Writes `bytes` to `path` whole (netaug-fs), so a reader (or a crash) never sees
/// half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    netaug_fs::write_file(path, bytes).map_err(|e| TrainError::write(path, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary.json as a classification run wrote it, with a `null` a reader skips.
    const CLASSIFICATION: &str = r#"{"run_id":"a","dataset":"fashion-mnist","model":"tinymbv2",
        "resolution":32,"method":"baseline","epochs":3,"seed":0,"device":"cpu","params":1,
        "macs":2,"best_val_top1":71.5,"best_epoch":2,"final_val_top1":70.25,
        "final_val_top5":99.0,"final_test_top1":null,"wall_seconds":1.0,
        "images_per_second":3.0,"status":"done","error":null}"#;

    #[test]
    fn a_summary_reads_its_metrics_by_name_and_writes_the_same_keys() {
        let s: Summary = serde_json::from_str(CLASSIFICATION).unwrap();
        assert_eq!(s.metric("best_val_top1"), Some(71.5));
        assert_eq!(s.metric("final_val_top1"), Some(70.25));
        assert_eq!(s.metric("final_test_top1"), None);
        assert_eq!(s.metric("final_val_map50"), None);
        assert_eq!(s.best_epoch, 2);
        let written: serde_json::Value = serde_json::to_value(&s).unwrap();
        let read: serde_json::Value = serde_json::from_str(CLASSIFICATION).unwrap();
        for key in [
            "best_val_top1",
            "final_val_top1",
            "final_val_top5",
            "best_epoch",
        ] {
            assert_eq!(written[key], read[key], "{key}");
        }
        assert!(
            written.get("metrics").is_none(),
            "metrics sit at the top level"
        );
        assert_eq!(
            s.result_line(),
            "final val top-1 70.25% (best 71.50% at epoch 2)"
        );
    }

    #[test]
    fn metrics_lines_read_back_to_the_bit_so_a_resumed_run_rewrites_them_unchanged() {
        // Values a resumed run read back 1 ulp off before floats were parsed exactly.
        let line = EpochMetrics {
            train_loss: 2.3746719360351563,
            lr: 0.006244578509483924,
            val_loss: 2.302131017049154,
            ..serde_json::from_str(
                r#"{"epoch":16,"train_loss":0,"train_top1":0,"val_loss":0,"val_top1":0,
                "val_top5":0,"lr":0,"seconds":0,"images_per_second":0}"#,
            )
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        write_metrics(&path, std::slice::from_ref(&line)).unwrap();
        let written = std::fs::read(&path).unwrap();
        let read: Vec<EpochMetrics> = read_metrics(&path).unwrap();
        assert_eq!(read[0].train_loss.to_bits(), line.train_loss.to_bits());
        assert_eq!(read[0].lr.to_bits(), line.lr.to_bits());
        write_metrics(&path, &read).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), written);
    }

    #[test]
    fn a_selection_says_which_way_is_better() {
        let up = Selection {
            metric: "val_top1",
            higher_is_better: true,
        };
        let down = Selection {
            metric: "val_loss",
            higher_is_better: false,
        };
        assert!(up.improves(2.0, 1.0) && !up.improves(1.0, 1.0));
        assert!(down.improves(1.0, 2.0) && !down.improves(2.0, 1.0));
        assert_eq!(up.best_key(), "best_val_top1");
    }

    #[test]
    fn each_task_scores_a_line_by_the_name_of_its_selection_metric() {
        use crate::classification::Classification;
        use crate::detection::task::Detection;
        use crate::task::Task;
        let line: EpochMetrics = serde_json::from_str(
            r#"{"epoch":1,"train_loss":1.0,"train_top1":2.0,"val_loss":3.0,"val_top1":4.0,
            "val_top5":5.0,"test_top1":6.0,"lr":0.1,"seconds":1.0,"images_per_second":9.0}"#,
        )
        .unwrap();
        assert_eq!(Classification::score(&line), 4.0);
        assert_eq!(line.metric("test_top1"), Some(6.0));
        assert_eq!(line.metric("test_top5"), None);
        let det = DetEpochMetrics {
            epoch: 1,
            train_loss: 1.0,
            val_map50: 7.0,
            val_map: 8.0,
            lr: 0.1,
            seconds: 1.0,
            images_per_second: 9.0,
        };
        assert_eq!(Detection::score(&det), 7.0);
        // A diverged epoch's NaN has no number: it scores NaN, which never improves.
        let diverged = EpochMetrics {
            val_top1: f64::NAN,
            ..line
        };
        let score = Classification::score(&diverged);
        assert!(score.is_nan() && !Classification::SELECTION.improves(score, 0.0));
    }
}
