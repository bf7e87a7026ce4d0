//! Checkpoints: `checkpoints/latest` after every epoch and `checkpoints/best`, each a
//! folder with the network (`model.json`, `weights.bpk`), the optimizer state
//! (`optimizer.bpk`) and the loop's position (`state.json`). A folder is written under a
//! temporary name and swapped in by renames, so a kill at any moment leaves a whole
//! checkpoint: the new one, or the previous one under `.<name>.old`.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use netaug_model::Supernet;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::metrics::write_atomic;

/// The latest checkpoint's folder name.
pub const LATEST: &str = "latest";
/// The best checkpoint's folder name.
pub const BEST: &str = "best";
const STATE: &str = "state.json";
const OPTIMIZER: &str = "optimizer.bpk";

/// Where the loop stands after a checkpointed epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateFile")]
pub struct TrainState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Best value so far of the task's selection metric.
    pub best: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Wall seconds so far.
    pub wall_seconds: f64,
    /// Seconds spent in training steps so far.
    pub train_seconds: f64,
    /// Images trained on so far.
    pub train_images: u64,
}

/// `state.json` as written now, or by a version that kept the best value under the
/// metric's own key (`best_val_top1`, `best_val_map50`, the other one 0).
#[derive(Deserialize)]
struct StateFile {
    epochs_done: usize,
    step: usize,
    #[serde(default)]
    best: Option<f64>,
    #[serde(default)]
    best_val_top1: f64,
    #[serde(default)]
    best_val_map50: f64,
    best_epoch: usize,
    wall_seconds: f64,
    train_seconds: f64,
    train_images: u64,
}

impl From<StateFile> for TrainState {
    fn from(f: StateFile) -> Self {
        Self {
            epochs_done: f.epochs_done,
            step: f.step,
            best: f.best.unwrap_or(f.best_val_top1.max(f.best_val_map50)),
            best_epoch: f.best_epoch,
            wall_seconds: f.wall_seconds,
            train_seconds: f.train_seconds,
            train_images: f.train_images,
        }
    }
}

/// Writes checkpoint `name` under `root`.
pub fn save(
    root: &Path,
    name: &str,
    net: &impl Supernet,
    optimizer: Option<&ModuleOptimizer>,
    state: &TrainState,
) -> Result<(), TrainError> {
    write_dir(root, name, |tmp| {
        net.save(tmp).map_err(|e| TrainError::write(tmp, e))?;
        if let Some(opt) = optimizer {
            let path = tmp.join(OPTIMIZER);
            opt.save(&path).map_err(|e| TrainError::write(&path, e))?;
        }
        let json = serde_json::to_string_pretty(state).expect("states serialize");
        write_atomic(&tmp.join(STATE), json.as_bytes())
    })
}

/// Fills folder `root/name` through `fill` and swaps it in whole (netaug-fs): at
/// every moment one whole folder exists, the new one or the previous one as `.name.old`.
pub(crate) fn write_dir(
    root: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    netaug_fs::write_dir(&root.join(name), fill, |p, e| TrainError::write(p, e))
}

/// The folder of checkpoint `name` under `root`, falling back to the previous one when a
/// kill interrupted the swap; `None` when there is none.
pub fn find(root: &Path, name: &str) -> Option<PathBuf> {
    let dest = root.join(name);
    let old = netaug_fs::old_dir(&dest);
    [dest, old].into_iter().find(|d| d.join(STATE).is_file())
}

/// The loop's position saved in checkpoint `dir`.
pub fn load_state(dir: &Path) -> Result<TrainState, TrainError> {
    let path = dir.join(STATE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::file(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::file(&path, e))
}

/// `optimizer` filled from checkpoint `dir`'s optimizer state.
pub fn load_optimizer(
    dir: &Path,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let path = dir.join(OPTIMIZER);
    optimizer
        .load(&path)
        .map_err(|e| TrainError::file(&path, e))
}

/// The saved network a user points at: a folder with `model.json` (a checkpoint or an
/// exported net), or a run folder (its `exported/` net, else its latest checkpoint).
pub fn resolve_net(path: &Path) -> Result<PathBuf, TrainError> {
    let has = |d: &Path| d.join(netaug_model::net::MODEL_JSON).is_file();
    if has(path) {
        return Ok(path.to_path_buf());
    }
    let exported = path.join(crate::layout::EXPORTED);
    if has(&exported) {
        return Ok(exported);
    }
    if let Some(latest) = find(&path.join(crate::layout::CHECKPOINTS), LATEST) {
        return Ok(latest);
    }
    Err(TrainError::file(
        path,
        if path.exists() {
            "no saved network here (expected model.json, exported/ or checkpoints/latest/)"
        } else {
            "no such file or folder"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_that_kept_the_best_under_the_metrics_name_reads_as_the_best() {
        let old = |top1: f64, map50: f64| {
            let text = format!(
                r#"{{"epochs_done":3,"step":30,"best_val_top1":{top1},"best_val_map50":{map50},
                "best_epoch":2,"wall_seconds":1.0,"train_seconds":0.5,"train_images":300}}"#
            );
            serde_json::from_str::<TrainState>(&text).unwrap()
        };
        assert_eq!(old(71.5, 0.0).best, 71.5);
        assert_eq!(old(0.0, 12.25).best, 12.25);
        let now = TrainState {
            best: 42.0,
            best_epoch: 2,
            ..Default::default()
        };
        let again: TrainState =
            serde_json::from_str(&serde_json::to_string(&now).unwrap()).unwrap();
        assert_eq!(again, now);
    }
}
