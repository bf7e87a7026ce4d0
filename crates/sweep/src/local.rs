//! The local executor: up to `jobs` runs at once, each its own `netaug train` process (a
//! crash of one never takes the sweep down), in dependency order. Finished runs (status
//! done) are skipped, so a killed sweep restarted completes only what is missing; the
//! children die with the sweep (Linux parent-death signal) and resume from their
//! checkpoints next time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netaug_trainer::metrics::read_summary;
use netaug_trainer::{Status, Summary};

use crate::error::SweepError;
use crate::plan::Plan;
use crate::promote::{Promotions, Verdict};
use crate::workdir;

/// State of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a slot or for its dependencies.
    Queued,
    /// Its process is running.
    Running,
    /// Finished (this time or before).
    Done,
    /// Failed, or a dependency failed.
    Failed(String),
    /// Paused at a rung of successive halving, waiting for its group's decision.
    Paused,
    /// Stopped for good by successive halving, and why.
    Stopped(String),
}

/// Counts for the progress view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Finished runs.
    pub done: usize,
    /// Running now.
    pub running: usize,
    /// Failed runs.
    pub failed: usize,
    /// Not started yet.
    pub queued: usize,
    /// Paused at a rung, waiting for the decision.
    pub paused: usize,
    /// Stopped by successive halving.
    pub stopped: usize,
    /// Runs started again after a failure that was not theirs (a killed process, a
    /// failed write), so far.
    pub retried: usize,
}

/// Receives the sweep's progress.
pub trait SweepObserver {
    /// Something changed; `eta` once a run has finished in this session.
    fn update(&mut self, _counts: Counts, _eta: Option<Duration>) {}
    /// A run ended.
    fn finished(&mut self, _id: &str, _state: &RunState) {}
    /// A line worth telling the user (e.g. jobs cancelled).
    fn note(&mut self, _line: &str) {}
}

/// Settings of the local executor.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Runs at once.
    pub jobs: usize,
    /// The `netaug` binary to run.
    pub binary: PathBuf,
    /// Threads each run may use (RAYON_NUM_THREADS); 0 leaves it alone.
    pub threads_per_run: usize,
    /// How often a run is started again after a failure that is not its own (see
    /// [`retryable`]): a diverged run or bad input is not retried.
    pub retries: usize,
    /// The command that starts a run's processes, before the binary (`mpirun -np 2`,
    /// `srun --mpi=pmix`: a run over MPI ranks); empty: the binary alone.
    pub launch: Vec<String>,
}

/// Runs every unfinished run of `plan` in `out`; returns each run's final state.
pub fn run(
    plan: &Plan,
    out: &Path,
    options: &LocalOptions,
    observer: &mut dyn SweepObserver,
) -> Result<Outcome, SweepError> {
    let n = plan.runs.len();
    let mut states: Vec<RunState> = plan
        .runs
        .iter()
        .map(|r| {
            if is_done(out, &r.id) {
                RunState::Done
            } else {
                RunState::Queued
            }
        })
        .collect();
    let mut promotions = Promotions::open(plan, out)?;
    // The epoch each run pauses at (successive halving), else `None`.
    let mut pause_at: Vec<Option<usize>> = vec![None; n];
    if let Some(p) = promotions.as_mut() {
        apply(plan, &p.settle()?, &mut states, &mut pause_at, observer);
    }
    let skipped = states.iter().filter(|s| **s == RunState::Done).count();
    if skipped > 0 {
        tracing::info!("{skipped} of {n} runs already done");
    }
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut attempts = vec![0usize; n];
    let mut retried = 0;
    let started = Instant::now();
    let mut finished_here = 0usize;
    let jobs = options.jobs.max(1);
    let mut last = None;
    loop {
        // Runs whose dependency failed fail too, without running.
        for i in 0..n {
            if states[i] == RunState::Queued
                && let Some(&d) = plan.runs[i]
                    .deps
                    .iter()
                    .find(|&&d| matches!(states[d], RunState::Failed(_)))
            {
                let why = format!("dependency {} failed", plan.runs[d].id);
                states[i] = RunState::Failed(why);
                observer.finished(&plan.runs[i].id, &states[i]);
            }
        }
        // Start what is ready.
        for i in 0..n {
            if children.len() >= jobs {
                break;
            }
            let ready = states[i] == RunState::Queued
                && plan.runs[i]
                    .deps
                    .iter()
                    .all(|&d| states[d] == RunState::Done);
            if ready {
                children.push((i, spawn(plan, i, out, options, pause_at[i])?));
                states[i] = RunState::Running;
            }
        }
        let counts = Counts {
            retried,
            ..count(&states)
        };
        let eta = (finished_here > 0).then(|| {
            let per = started.elapsed() / finished_here as u32;
            per * (counts.queued + counts.running).div_ceil(jobs) as u32
        });
        if last != Some(counts) {
            observer.update(counts, eta);
            last = Some(counts);
        }
        if children.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut still = Vec::new();
        let mut any_ended = false;
        for (i, mut child) in children {
            match child.try_wait() {
                Ok(Some(status)) => {
                    any_ended = true;
                    let id = &plan.runs[i].id;
                    let end = ended(out, id, status);
                    states[i] = end.state;
                    if let RunState::Failed(why) = &states[i]
                        && attempts[i] < options.retries
                        && end.retryable
                    {
                        attempts[i] += 1;
                        retried += 1;
                        let (a, n) = (attempts[i], options.retries);
                        observer.note(&format!("retry {a}/{n} {id}: {why}"));
                        states[i] = RunState::Queued;
                        continue;
                    }
                    finished_here += 1;
                    observer.finished(id, &states[i]);
                }
                Ok(None) => still.push((i, child)),
                Err(e) => return Err(SweepError::file(&plan.runs[i].id, e)),
            }
        }
        children = still;
        if any_ended && let Some(p) = promotions.as_mut() {
            apply(plan, &p.settle()?, &mut states, &mut pause_at, observer);
        }
    }
    Ok(Outcome { states, retried })
}

/// Sets the state of every trial that is not running from its halving verdict, and the
/// epoch it is to pause at; tells `observer` of the trials that stopped.
fn apply(
    plan: &Plan,
    verdicts: &[Option<Verdict>],
    states: &mut [RunState],
    pause_at: &mut [Option<usize>],
    observer: &mut dyn SweepObserver,
) {
    for (i, v) in verdicts.iter().enumerate() {
        let Some(v) = v else { continue };
        if states[i] == RunState::Running {
            continue;
        }
        let state = match v {
            Verdict::Train(at) => {
                pause_at[i] = *at;
                RunState::Queued
            }
            Verdict::Paused => RunState::Paused,
            Verdict::Stopped(why) => RunState::Stopped(why.clone()),
            Verdict::Done => RunState::Done,
            Verdict::Failed(why) => RunState::Failed(why.clone()),
        };
        if states[i] != state {
            if matches!(state, RunState::Stopped(_)) {
                observer.finished(&plan.runs[i].id, &state);
            }
            states[i] = state;
        }
    }
}

/// How a sweep's runs ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each run's final state.
    pub states: Vec<RunState>,
    /// Runs started again after a failure not their own.
    pub retried: usize,
}

/// Runs run `index` of `plan` in the foreground (a Slurm array task): its dependencies
/// must be done; a run already done is not redone.
pub fn run_one(
    plan: &Plan,
    index: usize,
    out: &Path,
    options: &LocalOptions,
) -> Result<RunState, SweepError> {
    let run = plan.runs.get(index).ok_or_else(|| {
        SweepError::Plan(format!(
            "run index {index} is out of range: the sweep has {} runs (0..{})",
            plan.runs.len(),
            plan.runs.len().saturating_sub(1)
        ))
    })?;
    if is_done(out, &run.id) {
        return Ok(RunState::Done);
    }
    if let Some(&d) = run.deps.iter().find(|&&d| !is_done(out, &plan.runs[d].id)) {
        return Ok(RunState::Failed(format!(
            "dependency {} is not done",
            plan.runs[d].id
        )));
    }
    let mut attempt = 0;
    loop {
        let before = epochs_written(out, &run.id);
        let pause_at = crate::promote::target(plan, out, index)?;
        let child = spawn(plan, index, out, options, pause_at)?;
        let status = wait_forwarding_stop(child, &options.binary)?;
        let Ended { state, retryable } = ended(out, &run.id, status);
        let stopped = netaug_trainer::interrupt::requested().is_some();
        if stopped && epochs_written(out, &run.id) <= before {
            tracing::warn!(
                "{}: stopped before it finished an epoch; a job must run longer than one epoch \
                 (and the run's start-up) for a requeued run to make progress",
                run.id
            );
        }
        if matches!(state, RunState::Failed(_))
            && !stopped
            && attempt < options.retries
            && retryable
        {
            attempt += 1;
            tracing::warn!(
                "retry {attempt}/{} of {}: {state:?}",
                options.retries,
                run.id
            );
            continue;
        }
        return Ok(state);
    }
}

/// Waits for `child`; a stop asked of this process (SIGTERM from Slurm before its time
/// limit, or SIGINT) is passed on to it once, so the run stops after its step and keeps
/// its checkpoint.
fn wait_forwarding_stop(
    mut child: Child,
    binary: &Path,
) -> Result<std::process::ExitStatus, SweepError> {
    let mut forwarded = false;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| SweepError::file(binary, e))? {
            return Ok(status);
        }
        if !forwarded && let Some(signal) = netaug_trainer::interrupt::requested() {
            // SAFETY: kill(2) on our own child's pid; it has not been reaped (try_wait
            // said it runs), so the pid is still its.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs run `index` of the prepared sweep `name` in `out` in the foreground (what a Slurm
/// array task runs); `out` must hold that sweep's plan.
pub fn run_prepared(
    name: &str,
    out: &Path,
    index: usize,
    options: &LocalOptions,
) -> Result<(String, RunState), SweepError> {
    let plan = workdir::load_plan(out)?;
    if plan.name != name {
        return Err(SweepError::Plan(format!(
            "{}: holds sweep {:?}, not {name:?}",
            out.join(workdir::PLAN_FILE).display(),
            plan.name
        )));
    }
    let state = run_one(&plan, index, out, options)?;
    Ok((plan.runs[index].id.clone(), state))
}

/// Why a sweep's runs did not all finish: its failed runs (`id: why`, one per line), or
/// how many never ended; `None` when every run is done.
pub fn shortfall(plan: &Plan, states: &[RunState]) -> Option<String> {
    let failed: Vec<String> = plan
        .runs
        .iter()
        .zip(states)
        .filter_map(|(r, s)| match s {
            RunState::Failed(why) => Some(format!("  {}: {why}", r.id)),
            _ => None,
        })
        .collect();
    let c = count(states);
    if !failed.is_empty() {
        Some(format!(
            "{} runs failed:\n{}",
            failed.len(),
            failed.join("\n")
        ))
    } else if c.queued + c.running + c.paused > 0 {
        Some(format!(
            "{} runs did not finish",
            c.queued + c.running + c.paused
        ))
    } else {
        None
    }
}

/// The epochs run `id` has written to its metrics file.
fn epochs_written(out: &Path, id: &str) -> usize {
    let path = workdir::run_dir(out, id).join("metrics.jsonl");
    std::fs::read_to_string(path).map_or(0, |t| t.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Whether run `id` has finished (its summary says done).
pub fn is_done(out: &Path, id: &str) -> bool {
    summary_state(out, id) == Some(RunState::Done)
}

/// What run `id`'s summary says: done, failed with its reason, or nothing (no summary
/// yet, or an unreadable one).
pub fn summary_state(out: &Path, id: &str) -> Option<RunState> {
    summary_of(out, id).map(state_of)
}

/// Run `id`'s summary, if it has a readable one.
fn summary_of(out: &Path, id: &str) -> Option<Summary> {
    read_summary(&workdir::run_dir(out, id).join("summary.json"))
        .ok()
        .flatten()
}

/// The state a summary records: done, or failed with its reason.
fn state_of(summary: Summary) -> RunState {
    match summary.status {
        Status::Done => RunState::Done,
        Status::Paused => RunState::Paused,
        Status::Stopped => RunState::Stopped(summary.error.unwrap_or_default()),
        _ => RunState::Failed(summary.error.unwrap_or_default()),
    }
}

/// How a run's process ended.
struct Ended {
    /// The run's state.
    state: RunState,
    /// Whether the run may finish if started again: its process was killed (a lost node,
    /// the out-of-memory killer) or it failed writing its files. Not when its input is at
    /// fault (exit 2) or its training diverged.
    retryable: bool,
}

/// How run `id`, whose process exited with `status`, ended: from its summary, read once.
fn ended(out: &Path, id: &str, status: std::process::ExitStatus) -> Ended {
    let summary = summary_of(out, id);
    let retryable = !status.success()
        && status.code() != Some(2)
        && !summary.as_ref().is_some_and(|s| s.diverged());
    let state = summary.map(state_of).unwrap_or_else(|| {
        RunState::Failed(format!(
            "netaug train exited with {status}; see {}",
            workdir::run_dir(out, id).join(workdir::LOG_FILE).display()
        ))
    });
    Ended { state, retryable }
}

/// Counts of each state.
pub fn count(states: &[RunState]) -> Counts {
    let mut c = Counts::default();
    for s in states {
        match s {
            RunState::Queued => c.queued += 1,
            RunState::Running => c.running += 1,
            RunState::Done => c.done += 1,
            RunState::Failed(_) => c.failed += 1,
            RunState::Paused => c.paused += 1,
            RunState::Stopped(_) => c.stopped += 1,
        }
    }
    c
}

fn spawn(
    plan: &Plan,
    i: usize,
    out: &Path,
    options: &LocalOptions,
    pause_at: Option<usize>,
) -> Result<Child, SweepError> {
    let run = &plan.runs[i];
    let dir = workdir::run_dir(out, &run.id);
    std::fs::create_dir_all(&dir).map_err(|e| SweepError::file(&dir, e))?;
    let log_path = dir.join(workdir::LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| SweepError::file(&log_path, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| SweepError::file(&log_path, e))?;
    let mut cmd = match options.launch.split_first() {
        Some((launcher, args)) => {
            let mut c = Command::new(launcher);
            c.args(args).arg(&options.binary);
            c
        }
        None => Command::new(&options.binary),
    };
    cmd.arg("train")
        .arg(workdir::config_path(out, &run.id))
        .arg("--out")
        .arg(&dir)
        .arg("--resume")
        .args(pause_at.map(|e| format!("--pause-at={e}")))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    if options.threads_per_run > 0 {
        cmd.env("RAYON_NUM_THREADS", options.threads_per_run.to_string());
    }
    die_with_parent(&mut cmd);
    let program = options
        .launch
        .first()
        .map_or(options.binary.clone(), PathBuf::from);
    cmd.spawn()
        .map_err(|e| SweepError::file(&program, format!("cannot start: {e}")))
}

/// The child gets SIGKILL when the sweep dies, so a killed sweep leaves no run behind
/// writing its folder (it resumes from its checkpoint when the sweep is restarted).
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
