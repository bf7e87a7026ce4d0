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
    /// The processes the run is spread over (one unless started under MPI).
    pub world: crate::world::World,
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
        // The same replicas may be written another way (`device: [cpu, cpu]` or
        // `run.replicas: 2`).
        let (was, now) = (saved.replica_devices(), config.replica_devices());
        if was[0].kind == now[0].kind {
            if was != now {
                tracing::warn!(
                    "resuming on {} replica(s) ({}); the run started on {} ({})",
                    now.len(),
                    config.device,
                    was.len(),
                    saved.device
                );
            }
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
/// writing its config left behind. Those leftovers are removed only once the folder is
/// known to be the run's: a folder of another tool keeps every file.
fn foreign_entry(out: &Path) -> Result<Option<String>, TrainError> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(None);
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| TrainError::write(out, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if is_config_leftover(&name) {
            leftovers.push(name);
        } else if name != crate::lock::RUN_LOCK_FILE && name != RUN_LOG_FILE {
            return Ok(Some(name));
        }
    }
    for name in leftovers {
        let _ = std::fs::remove_file(out.join(name));
    }
    Ok(None)
}

/// Whether `name` is a temporary sibling of the run's config (`.config.yaml.tmp-<pid>`
/// and the like), the one file a new run writes before its config is in place.
fn is_config_leftover(name: &str) -> bool {
    netaug_fs::is_leftover(name)
        && name
            .strip_prefix('.')
            .is_some_and(|rest| rest.starts_with(&format!("{CONFIG_FILE}.")))
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

    #[test]
    fn a_run_resumes_with_its_replicas_written_another_way() {
        let config = |sets: &[&str]| {
            let text = "data: {dataset: fashion-mnist, image_size: 32, batch_size: 64}\n\
                        model: {name: tinymbv2}\nrun: {epochs: 3, seed: 1}\n";
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::parse(text, "t.yaml", &sets).unwrap()
        };
        let out = tempfile::tempdir().unwrap();
        let run = out.path().join("run");
        prepare_out(&config(&["device=[cpu, cpu]"]), &run, false).unwrap();
        // It used to be refused: "it has `- cpu` where this config has `cpu`".
        prepare_out(&config(&["run.replicas=2"]), &run, true).unwrap();
        prepare_out(&config(&["device=[cpu, cpu]"]), &run, true).unwrap();
        // Another run is still refused.
        let e = prepare_out(&config(&["run.seed=2", "run.replicas=2"]), &run, true);
        assert!(e.unwrap_err().to_string().contains("seed"));
    }

    #[test]
    fn a_folder_of_another_tool_keeps_its_dot_old_and_dot_tmp_files() {
        // Refused: its own .old file stays, as does a config leftover beside it.
        let out = tempfile::tempdir().unwrap();
        for name in ["notes.txt", ".notes.old", ".config.yaml.tmp-77"] {
            std::fs::write(out.path().join(name), "mine").unwrap();
        }
        assert!(foreign_entry(out.path()).unwrap().is_some());
        for name in ["notes.txt", ".notes.old", ".config.yaml.tmp-77"] {
            assert!(out.path().join(name).exists(), "{name} was removed");
        }
        // A folder holding only another file's leftover is not the run's to take.
        let only = tempfile::tempdir().unwrap();
        std::fs::write(only.path().join(".bashrc.old"), "mine").unwrap();
        assert_eq!(
            foreign_entry(only.path()).unwrap().as_deref(),
            Some(".bashrc.old")
        );
        assert!(only.path().join(".bashrc.old").exists());
    }
}
