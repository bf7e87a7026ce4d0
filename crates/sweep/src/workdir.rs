//! The sweep folder: `sweep.yaml` (as given), `plan.json` (the run table), `configs/<id>.yaml`
//! (each run's resolved config) and `runs/<id>/` (each run's folder, with `train.log`).

use std::path::{Path, PathBuf};

use crate::error::SweepError;
use crate::plan::Plan;

/// The copy of the sweep file.
pub const SWEEP_FILE: &str = "sweep.yaml";
/// The run table.
pub const PLAN_FILE: &str = "plan.json";
/// Output of a run's `netaug train`, in its folder.
pub const LOG_FILE: &str = "train.log";

/// The folder of run `id`.
pub fn run_dir(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(id)
}

/// The resolved config of run `id`.
pub fn config_path(out: &Path, id: &str) -> PathBuf {
    out.join("configs").join(format!("{id}.yaml"))
}

/// Writes the sweep file, the plan and every run's config (unchanged files are left as
/// they are, so a restarted sweep does not touch finished runs).
pub fn prepare(out: &Path, sweep_text: &str, plan: &Plan) -> Result<(), SweepError> {
    let write = |path: &Path, text: &str| -> Result<(), SweepError> {
        if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SweepError::file(dir, e))?;
        }
        std::fs::write(path, text).map_err(|e| SweepError::file(path, e))
    };
    write(&out.join(SWEEP_FILE), sweep_text)?;
    let json = serde_json::to_string_pretty(plan).expect("plans serialize");
    write(&out.join(PLAN_FILE), &json)?;
    for run in &plan.runs {
        write(&config_path(out, &run.id), &run.config)?;
    }
    Ok(())
}

/// The run table written by [`prepare`] (what Slurm array tasks run from).
pub fn load_plan(out: &Path) -> Result<Plan, SweepError> {
    let path = out.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        SweepError::file(
            &path,
            format!("{e} (a sweep writes it before its runs start)"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| SweepError::file(&path, e))
}
