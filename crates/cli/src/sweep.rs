//! `netaug sweep`: expand a sweep file and run it (locally, in parallel), with a live
//! progress line; `--dry-run` prints the run table.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use netaug_sweep::local::{self, Counts, LocalOptions, RunState, SweepObserver};
use netaug_sweep::lock::Lock;
use netaug_sweep::{SweepError, SweepSpec, workdir};

use crate::UsageError;

/// `netaug sweep` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The sweep file (see experiments/).
    pub sweep: PathBuf,
    /// Results folder (default: results/<sweep name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at once (default: 1 for CPU devices, which use every core each).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override a key in every run's config, e.g. `--set data.root=/data/x` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the run table and exit.
    #[arg(long)]
    pub dry_run: bool,
}

fn classify(e: SweepError) -> anyhow::Error {
    if e.is_input() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Runs `netaug sweep`.
pub fn run(args: Args) -> Result<()> {
    let spec = SweepSpec::load(&args.sweep).map_err(classify)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&spec.name));
    let plan = netaug_sweep::plan(&spec, &out, &args.set).map_err(classify)?;
    if args.dry_run {
        print_table(&plan);
        return Ok(());
    }
    let _lock = Lock::acquire(&out).map_err(classify)?;
    let text = std::fs::read_to_string(&args.sweep)?;
    workdir::prepare(&out, &text, &plan).map_err(classify)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(1).max(1);
    let options = LocalOptions {
        jobs,
        binary: std::env::current_exe()?,
        // Each CPU run gets its share of the cores, so N runs do not oversubscribe them.
        threads_per_run: (cores / jobs).max(1),
    };
    eprintln!(
        "sweep {}: {} runs into {}, {jobs} at a time",
        plan.name,
        plan.runs.len(),
        out.display()
    );
    let mut view = View::new(plan.runs.len());
    let states = local::run(&plan, &out, &options, &mut view)?;
    view.bar.finish_and_clear();
    let failed: Vec<String> = plan
        .runs
        .iter()
        .zip(&states)
        .filter_map(|(r, s)| match s {
            RunState::Failed(why) => Some(format!("  {}: {why}", r.id)),
            _ => None,
        })
        .collect();
    let c = local::count(&states);
    println!(
        "sweep {}: {} done, {} failed; results in {}",
        plan.name,
        c.done,
        c.failed,
        out.display()
    );
    if !failed.is_empty() {
        anyhow::bail!("{} runs failed:\n{}", failed.len(), failed.join("\n"));
    }
    Ok(())
}

fn print_table(plan: &netaug_sweep::Plan) {
    println!("sweep {}: {} runs", plan.name, plan.runs.len());
    for (i, r) in plan.runs.iter().enumerate() {
        let values: Vec<String> = r
            .assignment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let deps: Vec<String> = r.deps.iter().map(|d| plan.runs[*d].id.clone()).collect();
        println!(
            "{i:>4}  {:<40} stage {:<10} {}{}",
            r.id,
            r.stage,
            values.join(" "),
            if deps.is_empty() {
                String::new()
            } else {
                format!("  after {}", deps.join(", "))
            }
        );
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
        self.bar.suspend(|| eprintln!("{line}"));
    }
}
