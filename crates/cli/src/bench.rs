//! `netaug bench`: throughput measured side by side in one run.

use std::time::Instant;

use anyhow::Result;
use netaug_data::loader::{Loader, LoaderConfig, Normalize, Transform};
use netaug_data::{Sample, TrainTransform};
use serde_json::json;

use crate::UsageError;
use crate::data::Source;

/// `netaug bench ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Images/s of decode + training augmentation, on one core and on all cores.
    #[command(
        after_help = "Example:\n  netaug bench loader --dataset food101 --root /data --size 160 --images 1000"
    )]
    Loader(LoaderArgs),
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
        Command::Loader(args) => loader(args),
    }
}

/// Images per second of one full pass over `samples` with `workers` threads.
fn pass(
    samples: &[Sample],
    channels: usize,
    size: usize,
    batch: usize,
    workers: usize,
) -> Result<f64> {
    let mut cfg = LoaderConfig::train(batch, 0);
    cfg.workers = workers;
    cfg.drop_last = false;
    let norm = Normalize::for_channels(channels);
    let loader = Loader::new(
        samples.to_vec(),
        Transform::Train(TrainTransform::imagenet(size)),
        norm,
        cfg,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let start = Instant::now();
    let mut n = 0;
    for batch in loader.epoch(0) {
        n += batch?.shape[0];
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn loader(args: LoaderArgs) -> Result<()> {
    if args.size < 8 || args.images == 0 || args.batch == 0 {
        return Err(UsageError("--size must be >= 8, --images and --batch >= 1".into()).into());
    }
    let ds = args.source.open()?;
    let samples: Vec<Sample> = ds
        .train()
        .samples
        .iter()
        .take(args.images)
        .cloned()
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Warm-up pass: reads the files into the page cache so both runs see the same disk.
    pass(&samples, ds.channels, args.size, args.batch, 0)?;
    let single = pass(&samples, ds.channels, args.size, args.batch, 1)?;
    let all = pass(&samples, ds.channels, args.size, args.batch, cores)?;
    if args.source.json {
        let out = json!({
            "dataset": ds.name, "size": args.size, "images": samples.len(), "cores": cores,
            "single_core_images_per_second": single, "all_cores_images_per_second": all,
        });
        println!("{out}");
    } else {
        println!(
            "{}: {} images, decode + train augmentation to {}px",
            ds.name,
            samples.len(),
            args.size
        );
        println!("  1 core        {single:>9.1} images/s");
        println!(
            "  {cores} cores{:<7}{all:>9.1} images/s  ({:.2}x)",
            "",
            all / single
        );
    }
    Ok(())
}
