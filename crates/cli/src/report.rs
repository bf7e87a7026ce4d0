//! `netaug report`: a results folder into summary.csv, tables and plots.

use std::path::PathBuf;

use anyhow::Result;

use crate::classify;

/// `netaug report` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A sweep's results folder (with runs/), or one run folder.
    pub dir: PathBuf,
    /// The paper's numbers (CSV: table,dataset,model,resolution,method,metric,value,note),
    /// shown beside ours, e.g. experiments/paper/results.csv.
    #[arg(long)]
    pub paper: Option<PathBuf>,
}

/// Runs `netaug report`.
pub fn run(args: Args) -> Result<()> {
    let report = netaug_analysis::report(&args.dir, args.paper.as_deref()).map_err(classify)?;
    for t in &report.tables {
        outln!("{t}")?;
    }
    for note in &report.notes {
        outln!("note: {note}")?;
    }
    outln!("{} runs; wrote:", report.runs)?;
    for f in &report.files {
        outln!("  {}", f.display())?;
    }
    Ok(())
}
