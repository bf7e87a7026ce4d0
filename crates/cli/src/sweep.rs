//! `netaug sweep`: expand a sweep file and run it, locally in parallel or as Slurm job
//! arrays, with a live progress line; `--dry-run` prints the run table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use netaug_sweep::local::{self, Counts, LocalOptions, RunState, SweepObserver};
use netaug_sweep::lock::Lock;
use netaug_sweep::promote::Promotions;
use netaug_sweep::slurm::{self, SlurmOptions};
use netaug_sweep::{Plan, SweepSpec, workdir};

use crate::{UsageError, classify};

/// `netaug sweep` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The sweep file (see experiments/).
    pub sweep: PathBuf,
    /// Results folder (default: results/<sweep name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at once, local executor (default: 1 for CPU devices, which use every core each).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override a key in every run's config, e.g. `--set data.root=/data/x` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Let --jobs times a run's CPU replicas exceed this machine's cores (else refused).
    #[arg(long)]
    pub oversubscribe: bool,
    /// Print the run table and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Run even if OUT holds runs that this sweep does not have (made by a changed sweep
    /// file or other --set values); they stay in the folder and in its report.
    #[arg(long)]
    pub force: bool,
    /// Where runs run: here (`local`), or as Slurm job arrays, one per dependency level
    /// (`slurm`: writes OUT/slurm/level-*.sbatch and submit.sh).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// Slurm: submit the job arrays with sbatch (else only write them).
    #[arg(long)]
    pub submit: bool,
    /// Slurm: after submitting, show the sweep's progress until its jobs have left the queue.
    #[arg(long, requires = "submit")]
    pub wait: bool,
    /// Slurm: an extra `#SBATCH` option for every job, e.g. `--sbatch=--partition=gpu`
    /// (repeatable).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// Start a run again, up to N times, when its process was killed or a write failed
    /// (not when it diverged or its input is bad); locally and in each Slurm task.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: usize,
    /// Runs at once, at most: locally --jobs; on Slurm each array's `--array=...%N`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "jobs")]
    pub max_running: Option<u64>,
    /// Slurm: seconds before the time limit that a task is signalled (as on preemption):
    /// its run stops after its step, the task is requeued and resumes it (at least 30).
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(30..))]
    pub grace: u64,
    /// Slurm: how often one task is requeued that way, at most.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub requeue_limit: usize,
    /// Train each run over N MPI ranks (a netaug built with `--features mpi`): locally
    /// under `mpirun -np N`, on Slurm as a job of N tasks started by `srun --mpi=pmix`.
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub ranks: u64,
    /// Slurm, with --ranks: the nodes each run's ranks spread over, evenly.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "ranks",
        value_parser = clap::value_parser!(u64).range(1..))]
    pub nodes: u64,
    /// Train only the run with this index in OUT/plan.json, in the foreground (what each
    /// Slurm array task runs, with $SLURM_ARRAY_TASK_ID).
    #[arg(long, conflicts_with_all = ["dry_run", "jobs", "set", "submit", "max_running"])]
    pub run_index: Option<usize>,
    /// Decide the promotions of a prepared sweep with successive halving in OUT and submit
    /// its next round to Slurm (what each round's driver job runs).
    #[arg(long, conflicts_with_all = ["dry_run", "jobs", "set", "submit", "run_index", "wait"])]
    pub halving_round: bool,
}

/// Where a sweep's runs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    /// Child processes on this machine.
    Local,
    /// Slurm job arrays.
    Slurm,
}

/// Runs `netaug sweep`.
pub fn run(args: Args) -> Result<()> {
    let spec = SweepSpec::load(&args.sweep).map_err(classify)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&spec.name));
    if out.exists() && !out.is_dir() {
        let why = format!(
            "--out {}: is a file; --out names a results folder",
            out.display()
        );
        return Err(UsageError(why.into()).into());
    }
    if let Some(index) = args.run_index {
        if !out.join(workdir::PLAN_FILE).is_file() {
            let why = format!(
                "--run-index: {} has no {} (a sweep writes it before its runs start)",
                out.display(),
                workdir::PLAN_FILE
            );
            return Err(UsageError(why.into()).into());
        }
        return run_index(&spec.name, &out, index, args.retries, launch(&args)?);
    }
    if args.halving_round {
        // No lock: the `netaug sweep --wait` that submitted the first round may hold it
        // while it watches; one driver runs at a time, each after the one before.
        let plan = workdir::load_plan(&out).map_err(classify)?;
        if plan.name != spec.name {
            let why = format!(
                "{}: holds sweep {:?}, not {:?}",
                out.display(),
                plan.name,
                spec.name
            );
            return Err(UsageError(why.into()).into());
        }
        submit_round(&plan, &out, &args, true)?;
        return Ok(());
    }
    check_executor_options(&args)?;
    let launch = launch(&args)?;
    let plan = netaug_sweep::plan(&spec, &out, &args.set).map_err(classify)?;
    if args.dry_run {
        return outln!("{}", plan.table());
    }
    // After the dry run: a plan for another machine's build may be printed here.
    plan.check_devices().map_err(classify)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_running = args.max_running.map(|n| n as usize);
    let jobs = max_running.or(args.jobs).unwrap_or(1).max(1);
    let ranks = args.ranks as usize;
    check_cores(&args, &plan, jobs, cores)?;
    let _lock = Lock::acquire(&out).map_err(classify)?;
    let text = std::fs::read_to_string(&args.sweep)?;
    workdir::prepare(&out, &text, &plan, args.force).map_err(classify)?;
    let mut view = View::new(plan.runs.len());
    let outcome = match args.executor {
        Executor::Local => {
            let options = LocalOptions {
                jobs,
                binary: std::env::current_exe()?,
                // Each CPU run (each rank) gets its share of the cores, so N runs do not
                // oversubscribe them.
                threads_per_run: (cores / jobs.saturating_mul(ranks)).max(1),
                retries: args.retries,
                launch,
            };
            let (name, n, dir) = (&plan.name, plan.runs.len(), out.display());
            errln!("sweep {name}: {n} runs into {dir}, {jobs} at a time");
            local::run(&plan, &out, &options, &mut view)?
        }
        Executor::Slurm if !plan.halving.is_empty() => {
            if !submit_round(&plan, &out, &args, args.submit)? || !args.wait {
                return Ok(());
            }
            let states = slurm::wait_halving(&plan, &out, &mut view).map_err(classify)?;
            local::Outcome { states, retried: 0 }
        }
        Executor::Slurm => match submit_slurm(&plan, &out, &args)? {
            Some(ids) => {
                let states = slurm::wait(&plan, &out, &ids, &mut view).map_err(classify)?;
                local::Outcome { states, retried: 0 }
            }
            None => return Ok(()),
        },
    };
    view.bar.finish_and_clear();
    let (states, c) = (&outcome.states, local::count(&outcome.states));
    let retried = retried(", ", outcome.retried);
    let (name, dir) = (&plan.name, out.display());
    let stopped = if c.stopped > 0 {
        format!(", {} stopped by halving", c.stopped)
    } else {
        String::new()
    };
    outln!(
        "sweep {name}: {} done, {} failed{stopped}{retried}; results in {dir}",
        c.done,
        c.failed
    )?;
    match local::shortfall(&plan, states) {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// Refuses options of one executor given to the other, and `--sbatch` values that would
/// break the job script.
fn check_executor_options(args: &Args) -> Result<()> {
    if args.executor == Executor::Local && (args.submit || !args.sbatch.is_empty()) {
        return Err(UsageError("--submit and --sbatch need --executor slurm".into()).into());
    }
    if args.executor == Executor::Local && args.nodes > 1 {
        return Err(UsageError("--nodes needs --executor slurm".into()).into());
    }
    // Each value becomes one `#SBATCH` line of a shell script: a line break would add a
    // line of its own to every job.
    if let Some(bad) = args.sbatch.iter().find(|o| o.contains(['\n', '\r'])) {
        let why = format!("--sbatch {bad:?}: one option per --sbatch, without line breaks");
        return Err(UsageError(why.into()).into());
    }
    if args.executor == Executor::Slurm {
        slurm_options(args)?.check().map_err(classify)?;
    }
    Ok(())
}

/// Locally, unless --oversubscribe: `jobs` runs at once, with their replicas or ranks,
/// must fit the `cores`.
fn check_cores(args: &Args, plan: &Plan, jobs: usize, cores: usize) -> Result<()> {
    if args.executor != Executor::Local || args.oversubscribe {
        return Ok(());
    }
    plan.check_cores(jobs, cores).map_err(classify)?;
    let ranks = args.ranks as usize;
    if ranks > 1 && jobs.saturating_mul(ranks) > cores {
        let why = format!(
            "--jobs {jobs} x --ranks {ranks} needs {} cores, this machine has {cores}; \
             lower --jobs or --ranks, or pass --oversubscribe",
            jobs.saturating_mul(ranks)
        );
        return Err(UsageError(why.into()).into());
    }
    Ok(())
}

/// One run of a prepared sweep in the foreground (a Slurm array task). SIGTERM or SIGINT
/// stops the run after its step; this process then exits as the run did (143, 130).
fn run_index(
    name: &str,
    out: &Path,
    index: usize,
    retries: usize,
    launch: Vec<String>,
) -> Result<()> {
    crate::signals::stop_runs_on_signals()?;
    let options = LocalOptions {
        jobs: 1,
        binary: std::env::current_exe()?,
        // Left alone: the job script sets RAYON_NUM_THREADS from Slurm's CPU count.
        threads_per_run: 0,
        retries,
        launch,
    };
    let (id, state) = local::run_prepared(name, out, index, &options).map_err(classify)?;
    if let Some(signal) = netaug_trainer::interrupt::requested() {
        return Err(netaug_trainer::TrainError::Interrupted(signal).into());
    }
    match state {
        RunState::Done => outln!("run {index} ({id}): done"),
        RunState::Failed(why) => anyhow::bail!("run {index} ({id}) failed: {why}"),
        RunState::Paused => outln!("run {index} ({id}): paused at its rung"),
        RunState::Stopped(why) => outln!("run {index} ({id}): stopped: {why}"),
        other => anyhow::bail!("run {index} ({id}): unexpected state {other:?}"),
    }
}

/// The Slurm options of this command.
fn slurm_options(args: &Args) -> Result<SlurmOptions> {
    Ok(SlurmOptions {
        binary: std::env::current_exe()?,
        sbatch: args.sbatch.clone(),
        workdir: std::env::current_dir()?,
        grace: args.grace,
        requeue_limit: args.requeue_limit,
        retries: args.retries,
        max_running: args.max_running.map(|n| n as usize),
        ranks: args.ranks as usize,
        nodes: args.nodes as usize,
    })
}

/// The command that starts a run's ranks (`--ranks`): `mpirun -np N` here, `srun
/// --mpi=pmix` in a Slurm task (whose job holds the ranks); none for one process.
fn launch(args: &Args) -> Result<Vec<String>> {
    if args.ranks == 1 {
        return Ok(Vec::new());
    }
    if !cfg!(feature = "mpi") {
        let why = "--ranks: this netaug was built without MPI; build it with \
                   `make build-mpi` (cargo feature mpi)";
        return Err(UsageError(why.into()).into());
    }
    Ok(if args.run_index.is_some() {
        vec!["srun".into(), "--mpi=pmix".into()]
    } else {
        vec!["mpirun".into(), "-np".into(), args.ranks.to_string()]
    })
}

/// A sweep with successive halving on Slurm: decides the promotions due, writes the
/// next round (the runs to train now, and the driver job that decides after them) and,
/// with `submit`, submits it. Returns whether a round was written.
fn submit_round(plan: &Plan, out: &Path, args: &Args, submit: bool) -> Result<bool> {
    let verdicts = match Promotions::open(plan, out).map_err(classify)? {
        Some(mut p) => p.settle().map_err(classify)?,
        None => vec![None; plan.runs.len()],
    };
    let runs = slurm::ready(plan, out, &verdicts);
    if runs.is_empty() {
        let c = local::count(&slurm::states_on_disk(plan, out));
        outln!(
            "sweep {}: no run is left to train ({} done, {} stopped by halving, {} failed)",
            plan.name,
            c.done,
            c.stopped,
            c.failed
        )?;
        return Ok(false);
    }
    let round = slurm::write_round(plan, out, &slurm_options(args)?, runs).map_err(classify)?;
    let (k, n) = (round.number, round.runs.len());
    outln!("round {k}: {n} runs  {}", round.array.display())?;
    if !submit {
        let script = out.join(slurm::SLURM_DIR).join("submit.sh");
        outln!("submit it with: bash {}", script.display())?;
        return Ok(true);
    }
    let (array, driver) = slurm::submit_round(&round).map_err(classify)?;
    outln!("round {k}: job {array}, its driver job {driver}")?;
    Ok(true)
}

/// Writes the Slurm scripts and, with --submit, submits them; the job ids to wait for
/// with --wait, else `None` (the work of this command is done).
fn submit_slurm(plan: &Plan, out: &Path, args: &Args) -> Result<Option<Vec<String>>> {
    let scripts = slurm::write_scripts(plan, out, &slurm_options(args)?).map_err(classify)?;
    if scripts.is_empty() {
        outln!("sweep {}: every run is done; nothing to submit", plan.name)?;
        return Ok(None);
    }
    for s in &scripts {
        let (level, n, path) = (s.level, s.runs.len(), s.path.display());
        outln!("level {level}: {n} runs  {path}")?;
    }
    if !args.submit {
        let submit = out.join(slurm::SLURM_DIR).join("submit.sh");
        outln!("submit them with: bash {}", submit.display())?;
        return Ok(None);
    }
    let ids = slurm::submit(&scripts).map_err(classify)?;
    for (s, id) in scripts.iter().zip(&ids) {
        outln!("level {}: job {id}", s.level)?;
    }
    Ok(args.wait.then_some(ids))
}

/// `"{sep}N retried"`, or nothing when no run was retried.
fn retried(sep: &str, n: usize) -> String {
    if n > 0 {
        format!("{sep}{n} retried")
    } else {
        String::new()
    }
}

/// One live line: done / running / failed / queued and the ETA.
struct View {
    bar: ProgressBar,
}

impl View {
    fn new(total: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self { bar }
    }
}

impl SweepObserver for View {
    fn update(&mut self, c: Counts, eta: Option<Duration>) {
        self.bar
            .set_position((c.done + c.failed + c.stopped) as u64);
        let eta = eta.map_or(String::new(), |d| format!(", ETA {}s", d.as_secs()));
        let retried = retried(" ", c.retried);
        let halving = if c.paused + c.stopped > 0 {
            format!(" paused {} stopped {}", c.paused, c.stopped)
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "done {} running {} failed {}{retried}{halving} queued {}{eta}",
            c.done, c.running, c.failed, c.queued
        ));
    }

    fn finished(&mut self, id: &str, state: &RunState) {
        let line = match state {
            RunState::Done => format!("done    {id}"),
            RunState::Failed(why) => format!("failed  {id}: {why}"),
            RunState::Paused => format!("paused  {id}"),
            RunState::Stopped(why) => format!("stopped {id}: {why}"),
            _ => return,
        };
        self.bar.suspend(|| errln!("{line}"));
    }

    fn note(&mut self, line: &str) {
        self.bar.suspend(|| errln!("{line}"));
    }
}
