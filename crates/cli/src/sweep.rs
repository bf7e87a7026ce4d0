//! `netaug sweep`: expand a sweep file and run it, locally in parallel or as Slurm job
//! arrays, with a live progress line; `--dry-run` prints the run table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use netaug_sweep::local::{self, Counts, LocalOptions, RunState, SweepObserver};
use netaug_sweep::lock::Lock;
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
    /// Train only the run with this index in OUT/plan.json, in the foreground (what each
    /// Slurm array task runs, with $SLURM_ARRAY_TASK_ID).
    #[arg(long, conflicts_with_all = ["dry_run", "jobs", "set", "submit"])]
    pub run_index: Option<usize>,
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
    if let Some(index) = args.run_index {
        return run_index(&spec, &out, index);
    }
    if args.executor == Executor::Local && (args.submit || !args.sbatch.is_empty()) {
        return Err(UsageError("--submit and --sbatch need --executor slurm".into()).into());
    }
    let plan = netaug_sweep::plan(&spec, &out, &args.set).map_err(classify)?;
    if args.dry_run {
        print_table(&plan)?;
        return Ok(());
    }
    if args.executor == Executor::Local && !args.oversubscribe {
        check_cores(&plan, args.jobs.unwrap_or(1).max(1))?;
    }
    let _lock = Lock::acquire(&out).map_err(classify)?;
    let text = std::fs::read_to_string(&args.sweep)?;
    workdir::prepare(&out, &text, &plan, args.force).map_err(classify)?;
    match args.executor {
        Executor::Local => run_local(&plan, &out, args.jobs),
        Executor::Slurm => run_slurm(&plan, &out, &args),
    }
}

/// Refuses `jobs` runs at once whose CPU replicas would want more cores than there are
/// (each replica, as each job, wants a core of its own).
fn check_cores(plan: &Plan, jobs: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(widest) = plan.runs.iter().max_by_key(|r| r.cpu_replicas())
        && widest.cpu_replicas() > 1
        && jobs * widest.cpu_replicas() > cores
    {
        return Err(UsageError(format!(
            "--jobs {jobs} x {} replicas (run {}) needs {} cores, this machine has {cores}; \
             lower --jobs or the replicas, or pass --oversubscribe",
            widest.cpu_replicas(),
            widest.id,
            jobs * widest.cpu_replicas()
        ))
        .into());
    }
    Ok(())
}

fn run_local(plan: &Plan, out: &Path, jobs: Option<usize>) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs.unwrap_or(1).max(1);
    let options = LocalOptions {
        jobs,
        binary: std::env::current_exe()?,
        // Each CPU run gets its share of the cores, so N runs do not oversubscribe them.
        threads_per_run: (cores / jobs).max(1),
    };
    errln!(
        "sweep {}: {} runs into {}, {jobs} at a time",
        plan.name,
        plan.runs.len(),
        out.display()
    );
    let mut view = View::new(plan.runs.len());
    let states = local::run(plan, out, &options, &mut view)?;
    view.bar.finish_and_clear();
    conclude(plan, out, &states)
}

/// Prints the outcome; an error if any run failed or did not finish.
fn conclude(plan: &Plan, out: &Path, states: &[RunState]) -> Result<()> {
    let failed: Vec<String> = plan
        .runs
        .iter()
        .zip(states)
        .filter_map(|(r, s)| match s {
            RunState::Failed(why) => Some(format!("  {}: {why}", r.id)),
            _ => None,
        })
        .collect();
    let c = local::count(states);
    outln!(
        "sweep {}: {} done, {} failed; results in {}",
        plan.name,
        c.done,
        c.failed,
        out.display()
    )?;
    if !failed.is_empty() {
        anyhow::bail!("{} runs failed:\n{}", failed.len(), failed.join("\n"));
    }
    let unfinished = c.queued + c.running;
    if unfinished > 0 {
        anyhow::bail!("{unfinished} runs did not finish");
    }
    Ok(())
}

fn run_slurm(plan: &Plan, out: &Path, args: &Args) -> Result<()> {
    let options = SlurmOptions {
        binary: std::env::current_exe()?,
        sbatch: args.sbatch.clone(),
        workdir: std::env::current_dir()?,
    };
    let scripts = slurm::write_scripts(plan, out, &options).map_err(classify)?;
    if scripts.is_empty() {
        outln!("sweep {}: every run is done; nothing to submit", plan.name)?;
        return Ok(());
    }
    for s in &scripts {
        outln!(
            "level {}: {} runs  {}",
            s.level,
            s.runs.len(),
            s.path.display()
        )?;
    }
    if !args.submit {
        let submit = out.join(slurm::SLURM_DIR).join("submit.sh");
        outln!("submit them with: bash {}", submit.display())?;
        return Ok(());
    }
    let ids = slurm::submit(&scripts).map_err(classify)?;
    for (s, id) in scripts.iter().zip(&ids) {
        outln!("level {}: job {id}", s.level)?;
    }
    if !args.wait {
        return Ok(());
    }
    let mut view = View::new(plan.runs.len());
    let states = loop {
        view.update(local::count(&slurm::states_on_disk(plan, out)), None);
        let queued = slurm::queue(&ids).map_err(classify)?;
        // Jobs whose dependency failed never start: cancel them and stop waiting.
        let stuck: Vec<String> = queued
            .iter()
            .filter(|j| j.reason.contains("DependencyNeverSatisfied"))
            .map(|j| j.id.clone())
            .collect();
        if !stuck.is_empty() && stuck.len() == queued.len() {
            view.bar
                .suspend(|| errln!("cancelling jobs whose dependencies failed: {stuck:?}"));
            slurm::cancel(&stuck).map_err(classify)?;
        }
        if queued.is_empty() || stuck.len() == queued.len() {
            break settled(plan, out);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    view.bar.finish_and_clear();
    conclude(plan, out, &states)
}

/// The runs' states once their jobs have left the queue: a run not done has failed.
fn settled(plan: &Plan, out: &Path) -> Vec<RunState> {
    slurm::states_on_disk(plan, out)
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
            other => other,
        })
        .collect()
}

/// One run of a prepared sweep, in the foreground: a Slurm array task.
fn run_index(spec: &SweepSpec, out: &Path, index: usize) -> Result<()> {
    let plan = workdir::load_plan(out).map_err(classify)?;
    if plan.name != spec.name {
        return Err(UsageError(format!(
            "{}: holds sweep {:?}, not {:?}",
            out.join(workdir::PLAN_FILE).display(),
            plan.name,
            spec.name
        ))
        .into());
    }
    let options = LocalOptions {
        jobs: 1,
        binary: std::env::current_exe()?,
        // Left alone: the job script sets RAYON_NUM_THREADS from Slurm's CPU count.
        threads_per_run: 0,
    };
    let state = local::run_one(&plan, index, out, &options).map_err(classify)?;
    let id = &plan.runs[index].id;
    match state {
        RunState::Done => {
            outln!("run {index} ({id}): done")?;
            Ok(())
        }
        RunState::Failed(why) => anyhow::bail!("run {index} ({id}) failed: {why}"),
        other => anyhow::bail!("run {index} ({id}): unexpected state {other:?}"),
    }
}

fn print_table(plan: &Plan) -> Result<()> {
    outln!("sweep {}: {} runs", plan.name, plan.runs.len())?;
    for (i, r) in plan.runs.iter().enumerate() {
        let values: Vec<String> = r
            .assignment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let deps: Vec<String> = r.deps.iter().map(|d| plan.runs[*d].id.clone()).collect();
        outln!(
            "{i:>4}  {:<40} stage {:<10} {}{}",
            r.id,
            r.stage,
            values.join(" "),
            if deps.is_empty() {
                String::new()
            } else {
                format!("  after {}", deps.join(", "))
            }
        )?;
    }
    Ok(())
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
        self.bar.set_position((c.done + c.failed) as u64);
        let eta = eta.map_or(String::new(), |d| format!(", ETA {}s", d.as_secs()));
        self.bar.set_message(format!(
            "done {} running {} failed {} queued {}{eta}",
            c.done, c.running, c.failed, c.queued
        ));
    }

    fn finished(&mut self, id: &str, state: &RunState) {
        let line = match state {
            RunState::Done => format!("done    {id}"),
            RunState::Failed(why) => format!("failed  {id}: {why}"),
            _ => return,
        };
        self.bar.suspend(|| errln!("{line}"));
    }
}
