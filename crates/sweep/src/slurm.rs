//! The Slurm executor: one job-array script per dependency level (`sbatch --array`), each
//! level submitted after the ones before it (`--dependency=afterok`). Every array task runs
//! `netaug sweep SWEEP --out OUT --run-index $SLURM_ARRAY_TASK_ID`, which trains the run
//! with that index in `plan.json`. Runs already done are left out of the arrays, so
//! submitting a half-finished sweep again completes only what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::SweepError;
use crate::local::{self, RunState};
use crate::plan::Plan;
use crate::promote::Verdict;
use crate::workdir;

/// The folder of the job scripts, in the results folder.
pub const SLURM_DIR: &str = "slurm";

/// Settings of the Slurm executor.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// The `netaug` binary the tasks run (a path the compute nodes see).
    pub binary: PathBuf,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu`, `--gres=gpu:1`, `--time=4:00:00`.
    pub sbatch: Vec<String>,
    /// The tasks' working directory: relative paths in run configs are resolved from it.
    pub workdir: PathBuf,
    /// Seconds before its time limit (or on preemption) that Slurm signals a task: its run
    /// stops after its current step and the task goes back to the queue, to resume from
    /// the run's last epoch checkpoint.
    pub grace: u64,
    /// How often a task goes back to the queue that way, at most.
    pub requeue_limit: usize,
    /// How often a task starts its run again after a failure not its own (a killed
    /// process, a failed write); a diverged run or bad input is not retried.
    pub retries: usize,
    /// Tasks of one array running at once, at most (`--array=...%N`).
    pub max_running: Option<usize>,
    /// MPI ranks each run trains on, spread evenly over `nodes` nodes (1: one process).
    pub ranks: usize,
    /// Nodes each run's ranks spread over.
    pub nodes: usize,
}

impl SlurmOptions {
    /// Refuses ranks that do not spread evenly over the nodes.
    pub fn check(&self) -> Result<(), SweepError> {
        if self.nodes == 0 || self.ranks == 0 || !self.ranks.is_multiple_of(self.nodes) {
            return Err(SweepError::Plan(format!(
                "--ranks {} does not spread evenly over --nodes {}",
                self.ranks, self.nodes
            )));
        }
        Ok(())
    }
}

/// The job-array script of one dependency level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelScript {
    /// Dependency level.
    pub level: usize,
    /// Runs (indices into the plan, and the array's task ids).
    pub runs: Vec<usize>,
    /// The script.
    pub path: PathBuf,
}

/// Writes `slurm/level-<k>.sbatch` for every level with unfinished runs, and
/// `slurm/submit.sh`, which submits them in order; returns the scripts.
pub fn write_scripts(
    plan: &Plan,
    out: &Path,
    options: &SlurmOptions,
) -> Result<Vec<LevelScript>, SweepError> {
    let out = std::path::absolute(out).map_err(|e| SweepError::file(out, e))?;
    let dir = out.join(SLURM_DIR);
    let logs = dir.join("logs");
    // Slurm does not create the folder of `--output`; a missing one loses the task's log.
    std::fs::create_dir_all(&logs).map_err(|e| SweepError::file(&logs, e))?;
    // Scripts of an earlier submission would list runs that are done by now.
    for entry in std::fs::read_dir(&dir).map_err(|e| SweepError::file(&dir, e))? {
        let path = entry.map_err(|e| SweepError::file(&dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("level-") && name.ends_with(".sbatch") {
            std::fs::remove_file(&path).map_err(|e| SweepError::file(&path, e))?;
        }
    }
    let max_level = plan.runs.iter().map(|r| r.level).max().unwrap_or(0);
    let mut scripts = Vec::new();
    for level in 0..=max_level {
        let runs: Vec<usize> = (0..plan.runs.len())
            .filter(|&i| plan.runs[i].level == level && !local::is_done(&out, &plan.runs[i].id))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let path = dir.join(format!("level-{level}.sbatch"));
        let (tag, what) = (format!("level{level}"), format!("dependency level {level}"));
        let text = script(plan, &out, (&tag, &tag, &what), &runs, options);
        write_executable(&path, &text)?;
        scripts.push(LevelScript { level, runs, path });
    }
    let path = dir.join("submit.sh");
    write_executable(&path, &submit_script(&scripts))?;
    Ok(scripts)
}

/// The job-array script of `runs`; `job` ends its job's name, `tag` its logs' (`level0`,
/// `round2`), `what` says in its comment which runs it holds.
fn script(
    plan: &Plan,
    out: &Path,
    (job, tag, what): (&str, &str, &str),
    runs: &[usize],
    o: &SlurmOptions,
) -> String {
    let array: Vec<String> = runs.iter().map(|i| i.to_string()).collect();
    let mut s = format!(
        "#!/bin/bash\n\
         # netaug sweep {name}, {what}: {n} runs; the array index is the\n\
         # run's index in plan.json.\n",
        name = plan.name,
        n = runs.len()
    );
    for &i in runs {
        s += &format!("#   {i}: {}\n", plan.runs[i].id);
    }
    s += &format!("#SBATCH --job-name=netaug-{}-{job}\n", plan.name);
    let cap = o.max_running.map_or(String::new(), |n| format!("%{n}"));
    s += &format!("#SBATCH --array={}{cap}\n", array.join(","));
    // Slurm signals the batch shell (`B:`) `grace` seconds before the time limit; the
    // shell passes it on and requeues the task. Logs append across requeues.
    s += &format!(
        "#SBATCH --signal=B:TERM@{}\n#SBATCH --requeue\n#SBATCH --open-mode=append\n",
        o.grace
    );
    s += &format!(
        "#SBATCH --output={}\n",
        out.join(SLURM_DIR)
            .join("logs")
            .join(format!("{tag}-%A_%a.out"))
            .display()
    );
    s += &format!("#SBATCH --chdir={}\n", o.workdir.display());
    for extra in &o.sbatch {
        s += &format!("#SBATCH {extra}\n");
    }
    // A run on N GPUs asks for N; Slurm then sets CUDA_VISIBLE_DEVICES to them, which the
    // run sees as GPUs 0..N-1. Options given with --sbatch take precedence.
    let gpus = runs.iter().map(|&i| plan.runs[i].gpus()).max().unwrap_or(0);
    let asked = o
        .sbatch
        .iter()
        .any(|x| ["--gres", "--gpus", "-G"].iter().any(|k| x.starts_with(k)));
    if gpus > 0 && !asked {
        s += &format!("#SBATCH --gres=gpu:{gpus}\n");
    }
    // A run over MPI ranks: the job holds them all; the task's `netaug sweep` starts the
    // run's ranks with srun inside it.
    if o.ranks > 1 {
        s += &format!(
            "#SBATCH --nodes={}\n#SBATCH --ntasks-per-node={}\n",
            o.nodes,
            o.ranks / o.nodes.max(1)
        );
    }
    s += "set -uo pipefail\n\
          # A CPU run uses the cores Slurm gave it, no more.\n\
          if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi\n";
    let ranks = if o.ranks > 1 {
        format!(" --ranks {}", o.ranks)
    } else {
        String::new()
    };
    s += &format!(
        "{} sweep {} --out {} --run-index \"$SLURM_ARRAY_TASK_ID\" --retries {}{ranks} &\n",
        quote(&o.binary.display().to_string()),
        quote(&out.join(workdir::SWEEP_FILE).display().to_string()),
        quote(&out.display().to_string()),
        o.retries,
    );
    s += &format!(
        "# On SIGTERM (the time limit is {grace} s away, or the job is preempted) the run stops\n\
         # after its current step; the task then goes back to the queue and the run resumes\n\
         # from its last epoch checkpoint, at most {limit} times. A finished run exits 0 and\n\
         # is never requeued.\n\
         run=$!\n\
         stopping=0\n\
         trap 'stopping=1; kill -TERM \"$run\" 2>/dev/null' TERM\n\
         wait \"$run\"; status=$?\n\
         if [ \"$stopping\" = 1 ]; then wait \"$run\"; status=$?; fi\n\
         if [ \"$stopping\" = 1 ] && [ \"$status\" -ge 128 ] && [ \"${{SLURM_RESTART_COUNT:-0}}\" -lt {limit} ]; then\n\
         \x20   task=\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\"\n\
         \x20   echo \"netaug: stopped for the time limit or preemption; requeueing $task (restart $(( ${{SLURM_RESTART_COUNT:-0}} + 1 )) of {limit})\"\n\
         \x20   scontrol requeue \"$task\"\n\
         fi\n\
         exit \"$status\"\n",
        grace = o.grace,
        limit = o.requeue_limit,
    );
    s
}

fn submit_script(scripts: &[LevelScript]) -> String {
    let mut s = String::from(
        "#!/bin/bash\n\
         # Submits the sweep's job arrays, each level after the levels before it succeeded.\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n\
         after=\"\"\n",
    );
    if scripts.is_empty() {
        s += "echo \"every run of the sweep is done; nothing to submit\"\n";
    }
    for sc in scripts {
        let name = sc.path.file_name().unwrap_or_default().to_string_lossy();
        s += &format!(
            "id=$(sbatch --parsable ${{after:+--dependency=afterok$after}} {name})\n\
             id=${{id%%;*}}\n\
             echo \"{name}: job $id\"\n\
             after=\"$after:$id\"\n"
        );
    }
    s
}

fn write_executable(path: &Path, text: &str) -> Result<(), SweepError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| SweepError::file(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| SweepError::file(path, e))
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Submits the scripts in order, each level after all earlier ones (`afterok`); returns
/// the job ids.
pub fn submit(scripts: &[LevelScript]) -> Result<Vec<String>, SweepError> {
    let mut ids: Vec<String> = Vec::new();
    for sc in scripts {
        let after = (!ids.is_empty()).then(|| format!("afterok:{}", ids.join(":")));
        ids.push(sbatch(&sc.path, after.as_deref())?);
    }
    Ok(ids)
}

/// `sbatch --parsable [--dependency=DEPENDENCY] SCRIPT`; returns the job id.
fn sbatch(script: &Path, dependency: Option<&str>) -> Result<String, SweepError> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(d) = dependency {
        cmd.arg(format!("--dependency={d}"));
    }
    cmd.arg(script);
    let output = cmd.output().map_err(|e| {
        SweepError::Slurm(format!(
            "cannot run sbatch: {e} (is this a Slurm login node?)"
        ))
    })?;
    if !output.status.success() {
        return Err(SweepError::Slurm(format!(
            "sbatch {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SweepError::Slurm(format!(
            "sbatch printed no job id: {text:?}"
        )));
    }
    Ok(id)
}

/// One round of a sweep with successive halving: a job array of the runs that are to
/// train now (each to its next rung, or to its end), and a driver job that starts once
/// the array has ended (`afterany`): it decides the promotions (`netaug sweep
/// --halving-round`) and submits the next round, until no run is left to train.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// Its number (0 for the first).
    pub number: usize,
    /// Runs of its array (indices into the plan, and the array's task ids).
    pub runs: Vec<usize>,
    /// The array's script.
    pub array: PathBuf,
    /// The driver's script.
    pub driver: PathBuf,
}

/// The runs that may train now: trials whose verdict is to train, and runs of stages
/// without halving that are not done and whose dependencies are.
pub fn ready(plan: &Plan, out: &Path, verdicts: &[Option<Verdict>]) -> Vec<usize> {
    (0..plan.runs.len())
        .filter(|&i| match &verdicts[i] {
            Some(v) => matches!(v, Verdict::Train(_)),
            None => {
                !local::is_done(out, &plan.runs[i].id)
                    && plan.runs[i]
                        .deps
                        .iter()
                        .all(|&d| local::is_done(out, &plan.runs[d].id))
            }
        })
        .collect()
}

/// Writes the next round's array of `runs` and its driver (`slurm/round-<k>.sbatch`,
/// `slurm/halving-<k>.sbatch`) and `slurm/submit.sh`, which submits them.
pub fn write_round(
    plan: &Plan,
    out: &Path,
    options: &SlurmOptions,
    runs: Vec<usize>,
) -> Result<Round, SweepError> {
    let out = std::path::absolute(out).map_err(|e| SweepError::file(out, e))?;
    let dir = out.join(SLURM_DIR);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| SweepError::file(&logs, e))?;
    let number = std::fs::read_dir(&dir)
        .map_err(|e| SweepError::file(&dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("round-")?
                .strip_suffix(".sbatch")?
                .parse::<usize>()
                .ok()
        })
        .map(|k| k + 1)
        .max()
        .unwrap_or(0);
    let tag = format!("round{number}");
    let what = format!("successive halving, round {number}");
    let array = dir.join(format!("round-{number}.sbatch"));
    write_executable(
        &array,
        &script(plan, &out, (HALVING_JOB, &tag, &what), &runs, options),
    )?;
    let driver = dir.join(format!("halving-{number}.sbatch"));
    write_executable(&driver, &driver_script(plan, &out, number, options))?;
    let submit = format!(
        "#!/bin/bash\n\
         # Submits round {number} of the sweep's successive halving: its array, then the\n\
         # driver that decides the promotions once the array has ended.\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n\
         id=$(sbatch --parsable round-{number}.sbatch)\n\
         id=${{id%%;*}}\n\
         echo \"round-{number}.sbatch: job $id\"\n\
         sbatch --parsable --dependency=afterany:$id halving-{number}.sbatch\n"
    );
    write_executable(&dir.join("submit.sh"), &submit)?;
    Ok(Round {
        number,
        runs,
        array,
        driver,
    })
}

/// The job name of every job of a halving sweep: its arrays and drivers.
const HALVING_JOB: &str = "halving";

/// The driver of round `number`: `netaug sweep --halving-round` with the options of this
/// submission, on one core, with the sweep's own `#SBATCH` options but its GPU requests.
fn driver_script(plan: &Plan, out: &Path, number: usize, o: &SlurmOptions) -> String {
    let mut s = format!(
        "#!/bin/bash\n\
         # netaug sweep {name}, successive halving: once round {number}'s array has ended,\n\
         # decide the promotions and submit the next round (array and driver).\n\
         #SBATCH --job-name=netaug-{name}-{HALVING_JOB}\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --output={log}\n\
         #SBATCH --chdir={chdir}\n",
        name = plan.name,
        log = out
            .join(SLURM_DIR)
            .join("logs")
            .join(format!("halving{number}-%j.out"))
            .display(),
        chdir = o.workdir.display(),
    );
    let gpu = |x: &String| ["--gres", "--gpus", "-G"].iter().any(|k| x.starts_with(k));
    for extra in o.sbatch.iter().filter(|x| !gpu(x)) {
        s += &format!("#SBATCH {extra}\n");
    }
    let mut args = vec![
        quote(&o.binary.display().to_string()),
        "sweep".into(),
        quote(&out.join(workdir::SWEEP_FILE).display().to_string()),
        "--out".into(),
        quote(&out.display().to_string()),
        "--halving-round".into(),
        format!("--grace {}", o.grace),
        format!("--requeue-limit {}", o.requeue_limit),
        format!("--retries {}", o.retries),
    ];
    if let Some(n) = o.max_running {
        args.push(format!("--max-running {n}"));
    }
    if o.ranks > 1 {
        args.push(format!("--ranks {} --nodes {}", o.ranks, o.nodes));
    }
    args.extend(o.sbatch.iter().map(|x| quote(&format!("--sbatch={x}"))));
    s += &format!("set -uo pipefail\nexec {}\n", args.join(" "));
    s
}

/// Submits a round: its array, then its driver after it (`afterany`); returns both ids.
pub fn submit_round(round: &Round) -> Result<(String, String), SweepError> {
    let array = sbatch(&round.array, None)?;
    let driver = sbatch(&round.driver, Some(&format!("afterany:{array}")))?;
    Ok((array, driver))
}

/// Shows a halving sweep's progress until no job of it is left in the queue (each round's
/// driver submits the next); returns each run's final state.
pub fn wait_halving(
    plan: &Plan,
    out: &Path,
    observer: &mut dyn local::SweepObserver,
) -> Result<Vec<RunState>, SweepError> {
    let name = format!("netaug-{}-{HALVING_JOB}", plan.name);
    loop {
        observer.update(local::count(&states_on_disk(plan, out)), None);
        let output = Command::new("squeue")
            .args(["-h", "-o", "%i|%T|%r", "-n", &name])
            .output()
            .map_err(|e| SweepError::Slurm(format!("cannot run squeue: {e}")))?;
        if !output.status.success() {
            return Err(SweepError::Slurm(format!(
                "squeue failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        if parse_queue(&String::from_utf8_lossy(&output.stdout)).is_empty() {
            return Ok(settled(plan, out));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// A job still in Slurm's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJob {
    /// Job id (`123` or `123_4` for an array task).
    pub id: String,
    /// PENDING, RUNNING, ...
    pub state: String,
    /// Why it is pending (`Dependency`, `DependencyNeverSatisfied`, `None`, ...).
    pub reason: String,
}

/// The jobs of `ids` still in the queue (pending or running).
pub fn queue(ids: &[String]) -> Result<Vec<QueuedJob>, SweepError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let output = Command::new("squeue")
        .args(["-h", "-o", "%i|%T|%r", "-j", &ids.join(",")])
        .output()
        .map_err(|e| SweepError::Slurm(format!("cannot run squeue: {e}")))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        // Jobs that left the controller's memory are finished.
        if err.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        return Err(SweepError::Slurm(format!(
            "squeue failed ({}): {}",
            output.status,
            err.trim()
        )));
    }
    Ok(parse_queue(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_queue(text: &str) -> Vec<QueuedJob> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, '|');
            Some(QueuedJob {
                id: f.next()?.to_string(),
                state: f.next()?.to_string(),
                reason: f.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Cancels jobs (those that can never start because a dependency failed).
pub fn cancel(ids: &[String]) -> Result<(), SweepError> {
    if ids.is_empty() {
        return Ok(());
    }
    let status = Command::new("scancel")
        .args(ids)
        .status()
        .map_err(|e| SweepError::Slurm(format!("cannot run scancel: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(SweepError::Slurm(format!("scancel exited with {status}")))
    }
}

/// Each run's state as its folder shows it: done, failed, running (a log exists) or queued.
pub fn states_on_disk(plan: &Plan, out: &Path) -> Vec<RunState> {
    plan.runs
        .iter()
        .map(|r| {
            local::summary_state(out, &r.id).unwrap_or_else(|| {
                let log = workdir::run_dir(out, &r.id).join(workdir::LOG_FILE);
                if log.exists() {
                    RunState::Running
                } else {
                    RunState::Queued
                }
            })
        })
        .collect()
}

/// Shows the sweep's progress through `observer` until the jobs `ids` have left the
/// queue; jobs left waiting on a failed dependency are cancelled. Returns each run's final
/// state: a run not done by then has failed.
pub fn wait(
    plan: &Plan,
    out: &Path,
    ids: &[String],
    observer: &mut dyn local::SweepObserver,
) -> Result<Vec<RunState>, SweepError> {
    loop {
        observer.update(local::count(&states_on_disk(plan, out)), None);
        let queued = queue(ids)?;
        // Jobs whose dependency failed never start: cancel them and stop waiting.
        let stuck: Vec<String> = queued
            .iter()
            .filter(|j| j.reason.contains("DependencyNeverSatisfied"))
            .map(|j| j.id.clone())
            .collect();
        if !stuck.is_empty() && stuck.len() == queued.len() {
            observer.note(&format!(
                "cancelling jobs whose dependencies failed: {stuck:?}"
            ));
            cancel(&stuck)?;
        }
        if queued.is_empty() || stuck.len() == queued.len() {
            return Ok(settled(plan, out));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// The runs' states once their jobs have left the queue: a run not done has failed.
fn settled(plan: &Plan, out: &Path) -> Vec<RunState> {
    states_on_disk(plan, out)
        .into_iter()
        .zip(&plan.runs)
        .map(|(state, run)| match state {
            RunState::Running => RunState::Failed(format!(
                "its job ended before the run finished; see {}",
                workdir::run_dir(out, &run.id)
                    .join(workdir::LOG_FILE)
                    .display()
            )),
            RunState::Queued => RunState::Failed("never started: a dependency failed".into()),
            RunState::Paused => RunState::Failed(
                "paused at a rung, and no driver job is left to decide it; run the sweep \
                 again to continue"
                    .into(),
            ),
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunPlan;
    use netaug_trainer::backend::DeviceName;

    fn run(id: &str, level: usize, deps: Vec<usize>) -> RunPlan {
        RunPlan {
            id: id.into(),
            stage: "s".into(),
            assignment: vec![],
            config: String::new(),
            deps,
            level,
            devices: vec![],
            trial: None,
        }
    }

    #[test]
    fn one_array_per_level_with_only_unfinished_runs() {
        let out = std::env::temp_dir().join(format!("netaug-slurm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let plan = Plan {
            name: "t".into(),
            runs: vec![
                run("a", 0, vec![]),
                run("b", 0, vec![]),
                run("c", 1, vec![0]),
                run("d", 1, vec![1]),
            ],
            halving: Default::default(),
        };
        // Run b is done: it is left out of level 0's array.
        let b = workdir::run_dir(&out, "b");
        std::fs::create_dir_all(&b).unwrap();
        let summary = netaug_trainer::metrics::Summary {
            run_id: "b".into(),
            dataset: "x".into(),
            model: "m".into(),
            resolution: 8,
            method: "baseline".into(),
            epochs: 1,
            train_images: None,
            seed: 0,
            device: "cpu".into(),
            params: 1,
            macs: 1,
            best_epoch: 1,
            metrics: [
                ("best_val_top1", 1.0),
                ("final_val_top1", 1.0),
                ("final_val_top5", 1.0),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into(),
            wall_seconds: 1.0,
            images_per_second: 1.0,
            status: netaug_trainer::Status::Done,
            error: None,
        };
        let summary = serde_json::to_string(&summary).unwrap();
        std::fs::write(b.join("summary.json"), summary).unwrap();
        assert!(local::is_done(&out, "b"), "the fixture summary must parse");
        let options = SlurmOptions {
            binary: "/opt/netaug it's".into(),
            sbatch: vec!["--partition=gpu".into()],
            workdir: "/work".into(),
            grace: 90,
            requeue_limit: 4,
            retries: 2,
            max_running: Some(8),
            ranks: 1,
            nodes: 1,
        };
        std::fs::create_dir_all(out.join(SLURM_DIR)).unwrap();
        std::fs::write(out.join(SLURM_DIR).join("level-7.sbatch"), "stale").unwrap();
        let scripts = write_scripts(&plan, &out, &options).unwrap();
        assert_eq!(scripts.len(), 2);
        assert!(!out.join(SLURM_DIR).join("level-7.sbatch").exists());
        assert_eq!(scripts[0].runs, vec![0]);
        assert_eq!(scripts[1].runs, vec![2, 3]);
        let text = std::fs::read_to_string(&scripts[1].path).unwrap();
        assert!(text.contains("#SBATCH --array=2,3%8\n"), "{text}");
        for line in [
            "#SBATCH --signal=B:TERM@90\n",
            "#SBATCH --requeue\n",
            "#SBATCH --open-mode=append\n",
            "--retries 2 &\n",
            "-lt 4 ]",
            "scontrol requeue \"$task\"",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        assert!(!text.contains("--gres"), "CPU runs ask for no GPU: {text}");
        assert!(text.contains("#SBATCH --partition=gpu\n"), "{text}");
        assert!(text.contains("#SBATCH --chdir=/work\n"), "{text}");
        assert!(text.contains(r"'/opt/netaug it'\''s' sweep"), "{text}");
        assert!(
            text.contains("--run-index \"$SLURM_ARRAY_TASK_ID\""),
            "{text}"
        );
        let submit = std::fs::read_to_string(out.join(SLURM_DIR).join("submit.sh")).unwrap();
        let l0 = submit.find("level-0.sbatch").unwrap();
        let l1 = submit.find("level-1.sbatch").unwrap();
        assert!(l0 < l1, "levels are submitted in order: {submit}");
        assert!(submit.contains("--dependency=afterok$after"), "{submit}");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_level_asks_for_the_gpus_of_its_largest_run() {
        let out = std::env::temp_dir().join(format!("netaug-slurm-gpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let on = |names: &[&str]| -> Vec<DeviceName> {
            names.iter().map(|n| n.parse().unwrap()).collect()
        };
        let mut runs = vec![
            run("a", 0, vec![]),
            run("b", 0, vec![]),
            run("c", 1, vec![0]),
        ];
        runs[0].devices = on(&["tch-cuda:0", "tch-cuda:1"]);
        runs[1].devices = on(&["cuda:0"]);
        runs[2].devices = on(&["cpu", "cpu"]);
        let plan = Plan {
            name: "g".into(),
            runs,
            halving: Default::default(),
        };
        let mut options = SlurmOptions {
            binary: "/opt/netaug".into(),
            sbatch: vec![],
            workdir: "/work".into(),
            grace: 120,
            requeue_limit: 3,
            retries: 0,
            max_running: None,
            ranks: 1,
            nodes: 1,
        };
        let scripts = write_scripts(&plan, &out, &options).unwrap();
        let text = |k: usize| std::fs::read_to_string(&scripts[k].path).unwrap();
        assert!(text(0).contains("#SBATCH --gres=gpu:2\n"), "{}", text(0));
        assert!(!text(1).contains("--gres"), "{}", text(1));
        // The user's own GPU request is kept, not doubled.
        options.sbatch = vec!["--gres=gpu:a100:2".into()];
        let scripts = write_scripts(&plan, &out, &options).unwrap();
        let level0 = std::fs::read_to_string(&scripts[0].path).unwrap();
        assert_eq!(level0.matches("--gres").count(), 1, "{level0}");

        // A run over 4 MPI ranks on 2 nodes: the job holds them, the task passes them on.
        options.ranks = 4;
        options.nodes = 2;
        options.check().unwrap();
        let scripts = write_scripts(&plan, &out, &options).unwrap();
        let level0 = std::fs::read_to_string(&scripts[0].path).unwrap();
        assert!(
            level0.contains("#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=2\n"),
            "{level0}"
        );
        assert!(level0.contains(" --ranks 4 &\n"), "{level0}");
        options.ranks = 3;
        assert!(
            options.check().is_err(),
            "3 ranks do not spread over 2 nodes"
        );
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn squeue_lines_parse() {
        let q = parse_queue("12_[3,4]|PENDING|DependencyNeverSatisfied\n11_0|RUNNING|None\n");
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].reason, "DependencyNeverSatisfied");
        assert_eq!(q[1].state, "RUNNING");
    }
}
