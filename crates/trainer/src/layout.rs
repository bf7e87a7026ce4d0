//! The run folder's layout, in one place that the loops, the ledger, checkpoints and the
//! CLI all read: its file names, creating it for a run, and the config it started with.

use std::path::Path;

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::metrics::write_atomic;

/// The resolved configuration of a run.
pub const CONFIG_FILE: &str = "config.yaml";
/// One JSON object per epoch.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// One JSON object every `run.log_every` steps.
pub const STEPS_FILE: &str = "steps.jsonl";
/// TensorBoard event files.
pub const TENSORBOARD: &str = "tb";
/// The run's outcome.
pub const SUMMARY_FILE: &str = "summary.json";
/// Checkpoint folders.
pub const CHECKPOINTS: &str = "checkpoints";
/// The exported target net.
pub const EXPORTED: &str = "exported";
/// The log of a run that a sweep starts (its stdout and stderr), opened before the run.
pub const RUN_LOG_FILE: &str = "train.log";

/// Options of [`crate::train`].
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue the run in the output folder from its latest checkpoint.
    pub resume: bool,
    /// Stop after this many epochs (warm-up included) with status `paused`, under the
    /// schedule of all the run's epochs; `None`, or a number at or past the run's
    /// epochs, trains to the end.
    pub pause_at: Option<usize>,
}

/// Creates the run folder; refuses to overwrite a run unless resuming it with the same
/// config (the replica count aside: the global batch, and so the run, stays the same);
/// writes `config.yaml` for a new run.
pub(crate) fn prepare_out(config: &RunConfig, out: &Path, resume: bool) -> Result<(), TrainError> {
    let path = out.join(CONFIG_FILE);
    if path.exists() {
        if !resume {
            return Err(TrainError::setting(
                "--out",
                format!(
                    "{} already holds a run; pass --resume to continue it or choose another --out",
                    out.display()
                ),
            ));
        }
        let Some(mut saved) = saved_config(out)? else {
            return Ok(());
        };
        // Replicas change how a step is computed, not what the run is: another count, or
        // other devices of the same backend, may continue it (the global batch is the same).
        let (was, now) = (saved.replica_devices(), config.replica_devices());
        if was != now && was[0].kind == now[0].kind {
            tracing::warn!(
                "resuming on {} replica(s) ({}); the run started on {} ({})",
                now.len(),
                config.device,
                was.len(),
                saved.device
            );
            saved.run.replicas = config.run.replicas;
            saved.device = config.device.clone();
        }
        if saved != *config {
            return Err(TrainError::setting(
                "--resume",
                format!(
                    "{}: {}; resume needs the config the run started with",
                    path.display(),
                    first_difference(&saved, config)
                ),
            ));
        }
        return Ok(());
    }
    // A folder without config.yaml is a run's only if it is new: files of another tool,
    // or a run whose config.yaml was removed, are never written over.
    if let Some(other) = foreign_entry(out)? {
        return Err(TrainError::setting(
            "--out",
            format!(
                "{} holds `{other}` but no {CONFIG_FILE}: it is not a run folder (or its \
                 config was removed); nothing was written, choose another --out",
                out.display()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| TrainError::write(out, e))?;
    write_atomic(&path, config.to_yaml().as_bytes())
}

/// The name of an entry of `out` that a new run would not have put there: anything but
/// its lock, the log a sweep opens for it before it starts, and what a run killed while
/// writing its config left behind (removed here).
fn foreign_entry(out: &Path) -> Result<Option<String>, TrainError> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(None);
    };
    for entry in entries {
        let name = entry
            .map_err(|e| TrainError::write(out, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if netaug_fs::is_leftover(&name) {
            let _ = std::fs::remove_file(out.join(&name));
        } else if name != crate::lock::RUN_LOCK_FILE && name != RUN_LOG_FILE {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The config a run in `out` started with, if there is one.
pub(crate) fn saved_config(out: &Path) -> Result<Option<RunConfig>, TrainError> {
    let path = out.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(RunConfig::load(&path, &[])?))
}

/// The first line where the saved config and `config` differ, for the message.
fn first_difference(saved: &RunConfig, config: &RunConfig) -> String {
    let (saved, now) = (saved.to_yaml(), config.to_yaml());
    saved
        .lines()
        .zip(now.lines())
        .find(|(a, b)| a != b)
        .map_or("the configs differ".into(), |(a, b)| {
            format!("it has `{}` where this config has `{}`", a.trim(), b.trim())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_killed_while_writing_its_config_is_still_its_folder() {
        let out = tempfile::tempdir().unwrap();
        for name in [
            ".config.yaml.tmp-5068",
            RUN_LOG_FILE,
            crate::lock::RUN_LOCK_FILE,
        ] {
            std::fs::write(out.path().join(name), "x").unwrap();
        }
        assert_eq!(foreign_entry(out.path()).unwrap(), None);
        assert!(
            !out.path().join(".config.yaml.tmp-5068").exists(),
            "the leftover is removed"
        );
        std::fs::write(out.path().join("notes.txt"), "mine").unwrap();
        assert_eq!(
            foreign_entry(out.path()).unwrap().as_deref(),
            Some("notes.txt")
        );
    }
}
