//! `netaug bench`: throughput measured side by side in one run.

use anyhow::Result;
use netaug_ops::bench::{self, TrainOptions};

use crate::classify;
use crate::data::Source;

/// `netaug bench ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Images/s of decode + training augmentation, on one core and on all cores.
    #[command(
        after_help = "Example:\n  netaug bench loader --dataset food101 --root /data --size 160 --images 1000"
    )]
    Loader(LoaderArgs),
    /// Images/s of full training steps (forward, backward, optimizer) on synthetic batches.
    #[command(
        after_help = "Examples:\n  netaug bench train --model tinymbv2 --resolution 144 --batch 256 --device tch-cuda --both\n  \
                      netaug bench train --model tinymbv2 --resolution 32 --batch 64 --netaug --json"
    )]
    Train(TrainArgs),
    /// Seconds of `netaug report` on synthetic run folders (summary, tables, figures).
    #[command(after_help = "Example:\n  netaug bench report --runs 1000 --epochs 20")]
    Report(ReportArgs),
}

/// `netaug bench report` arguments.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Synthetic runs (5 models x baseline/NetAug x seeds).
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Epochs per run (lines of metrics.jsonl).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Timed repetitions (the fastest and the median are printed).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Where the synthetic folder goes (default: a temporary folder, removed afterwards).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of `netaug bench train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    options: TrainOptions,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of `netaug bench loader`.
#[derive(clap::Args)]
pub struct LoaderArgs {
    #[command(flatten)]
    source: Source,
    /// Output side in pixels.
    #[arg(long, default_value_t = 160)]
    size: usize,
    /// Images per measurement (the first ones of the training split).
    #[arg(long, default_value_t = 512)]
    images: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Loader(a) => {
            let ds = a.source.open()?;
            let r = bench::loader(&ds, a.size, a.images, a.batch).map_err(classify)?;
            print(&r, a.source.json)
        }
        Command::Train(a) => {
            let r = bench::train(&a.options).map_err(classify)?;
            if a.json {
                outln!("{}", r.to_json())
            } else {
                outln!("{r}")
            }
        }
        Command::Report(a) => {
            let r = bench::report(a.runs, a.epochs, a.repeat, a.dir).map_err(classify)?;
            print(&r, a.json)
        }
    }
}

/// Prints a report as one JSON line or as text.
fn print<R: std::fmt::Display + serde::Serialize>(r: &R, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(r)?)
    } else {
        outln!("{r}")
    }
}
