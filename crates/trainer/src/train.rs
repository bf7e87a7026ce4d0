//! `train`: one run into its folder, classification or detection, with the folder's lock
//! held for the whole run. In a run over several processes, rank 0 does all of that and
//! tells the other ranks how it went before they train beside it.

use std::path::Path;

use crate::classification::Classification;
use crate::config::RunConfig;
use crate::detection::task::Detection;
use crate::error::TrainError;
use crate::layout::{SUMMARY_FILE, TrainOptions, saved_config};
use crate::lock::{FolderLock, RUN_LOCK_FILE};
use crate::metrics::{Status, Summary, read_summary};
use crate::observer::Observer;
use crate::run;
use crate::world::Start;

/// Trains `config` into the run folder `out` and returns its summary. Bad input (config,
/// paths, a run already in `out`) is refused before anything is written; a run that fails
/// later writes `summary.json` with status `failed` and the reason.
pub fn train(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    if !options.world.leads() {
        return follow(config, out, options, observer);
    }
    let result = lead(config, out, options, observer);
    if let Err(e) = &result
        && !options.world.started()
    {
        // The other ranks wait for rank 0's word before they read anything.
        options.world.start(Start::Refused {
            message: e.to_string(),
            input: e.is_input(),
        });
    }
    result
}

/// A rank other than 0: waits for rank 0 to open the run folder, then trains beside it
/// (writing nothing) or stops as it did.
fn follow(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    match options.world.start(Start::Train) {
        Start::Train => dispatch(config, out, options, observer),
        Start::Done => read_summary(&out.join(SUMMARY_FILE))?.ok_or_else(|| {
            TrainError::file(
                out.join(SUMMARY_FILE),
                "rank 0 found the run done, but no summary",
            )
        }),
        Start::Refused { message, input } => Err(TrainError::Leader { message, input }),
    }
}

/// Rank 0 (or the only process): the run under the folder's lock.
fn lead(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    // One writer per run folder, for the whole run: a second `train` (or `--resume`, or a
    // sweep's task) on it is refused before it reads or writes anything.
    if out.exists() && !out.is_dir() {
        return Err(TrainError::setting(
            "--out",
            format!("{}: is a file; --out names a run folder", out.display()),
        ));
    }
    let created = !out.exists();
    let had_lock = out.join(RUN_LOCK_FILE).exists();
    let lock = FolderLock::acquire(out, RUN_LOCK_FILE)?;
    let result = train_locked(config, out, options, observer);
    if result.is_err() && created && holds_only(out, lock.path()) {
        // Refused before anything was written: leave no folder behind.
        drop(lock);
        let _ = std::fs::remove_dir_all(out);
    } else if result.as_ref().is_err_and(TrainError::is_input) && !had_lock {
        // Refused in a folder that was there: leave it as it was.
        let path = lock.path().to_path_buf();
        drop(lock);
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Whether `dir` holds nothing but `file`.
fn holds_only(dir: &Path, file: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|entries| entries.filter_map(Result::ok).all(|e| e.path() == file))
}

fn train_locked(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    // (A summary.json that is not a file is no summary; writing one will say why not.)
    if options.resume
        && out.join(SUMMARY_FILE).is_file()
        && let Some(s) = read_summary(&out.join(SUMMARY_FILE))?
        && s.status == Status::Done
        && saved_config(out)?.as_ref() == Some(config)
    {
        tracing::info!("{}: the run is already done", out.display());
        options.world.start(Start::Done);
        return Ok(s);
    }
    dispatch(config, out, options, observer)
}

/// The run's task: detection or classification.
fn dispatch(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    if config.detection.is_some() {
        run::train::<Detection>(config, out, options, observer)
    } else {
        run::train::<Classification>(config, out, options, observer)
    }
}
