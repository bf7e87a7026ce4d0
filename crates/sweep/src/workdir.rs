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
pub const LOG_FILE: &str = netaug_trainer::layout::RUN_LOG_FILE;

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
///
/// A folder that holds run folders this plan does not have (made by a changed sweep file
/// or other overrides) is refused unless `force`: a report of the folder would show
/// them as if they were this sweep's. A plan that only adds runs is accepted.
pub fn prepare(out: &Path, sweep_text: &str, plan: &Plan, force: bool) -> Result<(), SweepError> {
    if !force {
        refuse_foreign_runs(out, plan)?;
    }
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

/// Errors with [`SweepError::Changed`] if `out/runs/` has a run folder whose id is not in
/// `plan`.
fn refuse_foreign_runs(out: &Path, plan: &Plan) -> Result<(), SweepError> {
    let runs = out.join("runs");
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SweepError::file(&runs, e)),
    };
    let ids: std::collections::HashSet<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
    let mut stale: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    stale.sort();
    const SHOWN: usize = 3;
    let mut text = stale[..stale.len().min(SHOWN)].join(", ");
    if stale.len() > SHOWN {
        text += &format!(" and {} more", stale.len() - SHOWN);
    }
    Err(SweepError::Changed {
        out: out.to_path_buf(),
        stale: text,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunPlan;

    fn plan(ids: &[&str]) -> Plan {
        Plan {
            name: "s".into(),
            runs: ids
                .iter()
                .map(|id| RunPlan {
                    id: id.to_string(),
                    stage: "main".into(),
                    assignment: vec![],
                    config: format!("run: {id}\n"),
                    deps: vec![],
                    level: 0,
                    devices: vec![],
                    trial: None,
                })
                .collect(),
            halving: Default::default(),
        }
    }

    #[test]
    fn a_folder_with_runs_of_another_sweep_is_refused_unless_forced() {
        let out = std::env::temp_dir().join(format!("netaug-workdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        prepare(&out, "a", &plan(&["lr0.1-s0", "lr0.1-s1"]), false).unwrap();
        for id in ["lr0.1-s0", "lr0.1-s1"] {
            std::fs::create_dir_all(run_dir(&out, id)).unwrap();
        }
        // The same sweep again, or one that adds runs: accepted.
        prepare(&out, "a", &plan(&["lr0.1-s0", "lr0.1-s1"]), false).unwrap();
        prepare(
            &out,
            "b",
            &plan(&["lr0.1-s0", "lr0.1-s1", "lr0.1-s2"]),
            false,
        )
        .unwrap();
        // A changed sweep whose runs differ: refused, naming the runs it lacks.
        let err = prepare(&out, "c", &plan(&["lr0.2-s0", "lr0.1-s1"]), false).unwrap_err();
        assert!(matches!(err, SweepError::Changed { .. }));
        let text = err.to_string();
        assert!(
            text.contains("lr0.1-s0") && !text.contains("lr0.1-s1,"),
            "{text}"
        );
        assert!(err.is_input());
        // Nothing was written by the refused call.
        assert_eq!(std::fs::read_to_string(out.join(SWEEP_FILE)).unwrap(), "b");
        prepare(&out, "c", &plan(&["lr0.2-s0", "lr0.1-s1"]), true).unwrap();
        assert_eq!(std::fs::read_to_string(out.join(SWEEP_FILE)).unwrap(), "c");
        let _ = std::fs::remove_dir_all(&out);
    }
}
