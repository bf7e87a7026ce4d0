//! `netaug bench`: throughput measured side by side in one run.

use std::time::Instant;

use anyhow::Result;
use netaug_data::loader::{Loader, LoaderConfig, Normalize, Transform};
use netaug_data::{Sample, TrainTransform};
use serde_json::json;

use netaug_model::NetSpec;
use netaug_trainer::bench::{BenchResult, TrainBench, train_throughput};

use crate::data::Source;
use crate::{UsageError, classify};

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
    /// Zoo model.
    #[arg(long, default_value = "tinymbv2")]
    model: String,
    /// Build this net description instead (NetSpec JSON, as `netaug profile --spec`
    /// prints; e.g. bench/probe.json); `--classes` and `--channels` are then its own.
    #[arg(long, value_name = "FILE")]
    spec: Option<std::path::PathBuf>,
    /// Input side in pixels.
    #[arg(long, default_value_t = 144)]
    resolution: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Classifier outputs.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Input channels.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// NetAug steps (the paper's factor lists for the model).
    #[arg(long)]
    netaug: bool,
    /// Measure baseline and NetAug steps one after the other and print the ratio.
    #[arg(long, conflicts_with = "netaug")]
    both: bool,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[arg(long, default_value = "cpu", value_parser = crate::values::DeviceParser)]
    device: netaug_trainer::backend::DeviceName,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps before.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Replicas the batch is split over (as `run.replicas`), the threads shared among them.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
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
        Command::Loader(args) => loader(args),
        Command::Train(args) => train(args),
        Command::Report(args) => report(args),
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
        outln!("{out}")?;
    } else {
        outln!(
            "{}: {} images, decode + train augmentation to {}px",
            ds.name,
            samples.len(),
            args.size
        )?;
        outln!("  1 core        {single:>9.1} images/s")?;
        outln!(
            "  {cores} cores{:<7}{all:>9.1} images/s  ({:.2}x)",
            "",
            all / single
        )?;
    }
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    if args.resolution < 8 || args.batch == 0 || args.steps == 0 || args.replicas == 0 {
        return Err(UsageError(
            "--resolution must be >= 8, --batch, --steps and --replicas >= 1".into(),
        )
        .into());
    }
    if !args.batch.is_multiple_of(args.replicas) {
        return Err(UsageError(format!(
            "--replicas {} cannot split --batch {} evenly",
            args.replicas, args.batch
        ))
        .into());
    }
    let net = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("--spec {}: {e}", path.display())))?;
            let net: NetSpec = serde_json::from_str(&text)
                .map_err(|e| UsageError(format!("--spec {}: {e}", path.display())))?;
            Some(net)
        }
        None => None,
    };
    let model = net.as_ref().map_or(args.model.clone(), |n| n.name.clone());
    let spec = |netaug| TrainBench {
        model: model.clone(),
        net: net.clone(),
        resolution: args.resolution,
        batch: args.batch,
        classes: args.classes,
        channels: args.channels,
        netaug,
        device: args.device,
        warmup: args.warmup,
        steps: args.steps,
        replicas: args.replicas,
    };
    let measure = |netaug| train_throughput(&spec(netaug)).map_err(classify);
    let runs: Vec<(&str, BenchResult)> = if args.both {
        vec![("baseline", measure(false)?), ("netaug", measure(true)?)]
    } else {
        let name = if args.netaug { "netaug" } else { "baseline" };
        vec![(name, measure(args.netaug)?)]
    };
    let ratio =
        (runs.len() == 2).then(|| runs[0].1.images_per_second / runs[1].1.images_per_second);
    if args.json {
        let mut out = json!({
            "model": model, "resolution": args.resolution, "batch": args.batch,
            "device": args.device.to_string(), "steps": args.steps,
        });
        for (name, r) in &runs {
            out[*name] = serde_json::to_value(r)?;
        }
        if let [(_, r)] = runs.as_slice() {
            out["images_per_second"] = json!(r.images_per_second);
        }
        if let Some(q) = ratio {
            out["netaug_cost"] = json!(q);
        }
        outln!("{out}")?;
    } else {
        let replicas = match args.replicas {
            1 => String::new(),
            n => format!(" over {n} replicas"),
        };
        outln!(
            "{} at {}px, batch {}{replicas}, {} ({} timed steps)",
            model,
            args.resolution,
            args.batch,
            args.device,
            args.steps
        )?;
        for (name, r) in &runs {
            outln!(
                "  {name:<9}{:>10.1} images/s  {:>8.4} s/step",
                r.images_per_second,
                r.seconds_per_step
            )?;
        }
        if let Some(q) = ratio {
            outln!("  a NetAug step costs {q:.2}x a baseline step")?;
        }
    }
    Ok(())
}

fn report(args: ReportArgs) -> Result<()> {
    if args.runs == 0 || args.epochs == 0 || args.repeat == 0 {
        return Err(UsageError("--runs, --epochs and --repeat must be >= 1".into()).into());
    }
    let temporary = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("netaug-bench-report-{}", std::process::id()))
    });
    if dir.join("runs").exists() {
        return Err(UsageError(format!(
            "{}: already holds runs/; give an empty folder",
            dir.display()
        ))
        .into());
    }
    netaug_analysis::synthetic::write_runs(&dir, args.runs, args.epochs).map_err(classify)?;
    let mut seconds = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let start = Instant::now();
        let r = netaug_analysis::report(&dir, None).map_err(classify)?;
        seconds.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(r.runs == args.runs, "the report read {} runs", r.runs);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    seconds.sort_by(f64::total_cmp);
    let (best, median) = (seconds[0], seconds[seconds.len() / 2]);
    if args.json {
        let out = json!({
            "runs": args.runs, "epochs": args.epochs, "repeat": args.repeat,
            "best_seconds": best, "median_seconds": median,
        });
        outln!("{out}")?;
    } else {
        outln!(
            "report of {} runs x {} epochs: best {best:.3} s, median {median:.3} s over {} repeats",
            args.runs,
            args.epochs,
            args.repeat
        )?;
    }
    Ok(())
}
