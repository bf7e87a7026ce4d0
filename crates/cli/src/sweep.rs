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
        let options = LocalOptions {
            jobs: 1,
            binary: std::env::current_exe()?,
            // Left alone: the job script sets RAYON_NUM_THREADS from Slurm's CPU count.
            threads_per_run: 0,
        };
        let (id, state) =
            local::run_prepared(&spec.name, &out, index, &options).map_err(classify)?;
        return match state {
            RunState::Done => outln!("run {index} ({id}): done"),
            RunState::Failed(why) => anyhow::bail!("run {index} ({id}) failed: {why}"),
            other => anyhow::bail!("run {index} ({id}): unexpected state {other:?}"),
        };
    }
    if args.executor == Executor::Local && (args.submit || !args.sbatch.is_empty()) {
        return Err(UsageError("--submit and --sbatch need --executor slurm".into()).into());
    }
    let plan = netaug_sweep::plan(&spec, &out, &args.set).map_err(classify)?;
    if args.dry_run {
        return outln!("{}", plan.table());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(1).max(1);
    if args.executor == Executor::Local && !args.oversubscribe {
        plan.check_cores(jobs, cores).map_err(classify)?;
    }
    let _lock = Lock::acquire(&out).map_err(classify)?;
    let text = std::fs::read_to_string(&args.sweep)?;
    workdir::prepare(&out, &text, &plan, args.force).map_err(classify)?;
    let mut view = View::new(plan.runs.len());
    let states = match args.executor {
        Executor::Local => {
            let options = LocalOptions {
                jobs,
                binary: std::env::current_exe()?,
                // Each CPU run gets its share of the cores, so N runs do not oversubscribe them.
                threads_per_run: (cores / jobs).max(1),
            };
            let (name, n, dir) = (&plan.name, plan.runs.len(), out.display());
            errln!("sweep {name}: {n} runs into {dir}, {jobs} at a time");
            local::run(&plan, &out, &options, &mut view)?
        }
        Executor::Slurm => match submit_slurm(&plan, &out, &args)? {
            Some(ids) => slurm::wait(&plan, &out, &ids, &mut view).map_err(classify)?,
            None => return Ok(()),
        },
    };
    view.bar.finish_and_clear();
    let c = local::count(&states);
    let (name, dir) = (&plan.name, out.display());
    outln!(
        "sweep {name}: {} done, {} failed; results in {dir}",
        c.done,
        c.failed
    )?;
    match local::shortfall(&plan, &states) {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// Writes the Slurm scripts and, with --submit, submits them; the job ids to wait for
/// with --wait, else `None` (the work of this command is done).
fn submit_slurm(plan: &Plan, out: &Path, args: &Args) -> Result<Option<Vec<String>>> {
    let options = SlurmOptions {
        binary: std::env::current_exe()?,
        sbatch: args.sbatch.clone(),
        workdir: std::env::current_dir()?,
    };
    let scripts = slurm::write_scripts(plan, out, &options).map_err(classify)?;
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

    fn note(&mut self, line: &str) {
        self.bar.suspend(|| errln!("{line}"));
    }
}
