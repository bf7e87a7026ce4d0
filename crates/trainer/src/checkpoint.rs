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
pub struct TrainState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Best validation top-1 so far (percent; classification).
    pub best_val_top1: f64,
    /// Best validation mAP50 so far (percent; detection).
    #[serde(default)]
    pub best_val_map50: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Wall seconds so far.
    pub wall_seconds: f64,
    /// Seconds spent in training steps so far.
    pub train_seconds: f64,
    /// Images trained on so far.
    pub train_images: u64,
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

/// Fills folder `root/name` through `fill` on a temporary folder, then swaps it in:
/// `name -> .name.old`, `tmp -> name`, drop `.name.old`, so at every moment one whole
/// folder exists.
pub fn write_dir(
    root: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let tmp = root.join(format!(".{name}.tmp"));
    let old = root.join(format!(".{name}.old"));
    let dest = root.join(name);
    let io = |p: &Path, e: std::io::Error| TrainError::write(p, e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    fill(&tmp)?;
    if dest.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        std::fs::rename(&dest, &old).map_err(|e| io(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| io(&tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(())
}

/// The folder of checkpoint `name` under `root`, falling back to the previous one when a
/// kill interrupted the swap; `None` when there is none.
pub fn find(root: &Path, name: &str) -> Option<PathBuf> {
    [root.join(name), root.join(format!(".{name}.old"))]
        .into_iter()
        .find(|d| d.join(STATE).is_file())
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
