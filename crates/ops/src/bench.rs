//! `bench`: throughput measured side by side in one run: the data loader on one core and
//! on all, a training step (baseline and NetAug), and the report over synthetic runs.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use netaug_data::loader::{Loader, LoaderConfig, Normalize, Transform};
use netaug_data::{Dataset, Sample, TrainTransform};
use netaug_model::NetSpec;
use netaug_trainer::backend::DeviceName;
use netaug_trainer::bench::{BenchResult, TrainBench, train_throughput};
use serde::Serialize;

use crate::OpsError;

/// Decode + train augmentation throughput on one core and on all.
#[derive(Clone, Debug, Serialize)]
pub struct LoaderBench {
    /// The dataset.
    pub dataset: String,
    /// Crop side.
    pub size: usize,
    /// Images per pass.
    pub images: usize,
    /// Cores used by the second pass.
    pub cores: usize,
    /// Images/s with one loader thread.
    pub single_core_images_per_second: f64,
    /// Images/s with one thread per core.
    pub all_cores_images_per_second: f64,
}

impl fmt::Display for LoaderBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (single, all) = (
            self.single_core_images_per_second,
            self.all_cores_images_per_second,
        );
        writeln!(
            f,
            "{}: {} images, decode + train augmentation to {}px",
            self.dataset, self.images, self.size
        )?;
        writeln!(f, "  1 core        {single:>9.1} images/s")?;
        write!(
            f,
            "  {} cores{:<7}{all:>9.1} images/s  ({:.2}x)",
            self.cores,
            "",
            all / single
        )
    }
}

/// Times the loader over the first `images` training images of `ds` at `size` pixels.
pub fn loader(
    ds: &Dataset,
    size: usize,
    images: usize,
    batch: usize,
) -> Result<LoaderBench, OpsError> {
    if size < 8 || images == 0 || batch == 0 {
        return Err(OpsError::Input(
            "--size must be >= 8, --images and --batch >= 1".into(),
        ));
    }
    let samples: Vec<Sample> = ds.train().samples.iter().take(images).cloned().collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pass = |workers| loader_pass(&samples, ds.channels, size, batch, workers);
    // Warm-up pass: reads the files into the page cache so both runs see the same disk.
    pass(0)?;
    let single = pass(1)?;
    let all = pass(cores)?;
    Ok(LoaderBench {
        dataset: ds.name.clone(),
        size,
        images: samples.len(),
        cores,
        single_core_images_per_second: single,
        all_cores_images_per_second: all,
    })
}

/// Images/s of one pass of the training loader over `samples`.
fn loader_pass(
    samples: &[Sample],
    channels: usize,
    size: usize,
    batch: usize,
    workers: usize,
) -> Result<f64, OpsError> {
    let mut cfg = LoaderConfig::train(batch, 0);
    cfg.workers = workers;
    cfg.drop_last = false;
    let loader = Loader::new(
        samples.to_vec(),
        Transform::Train(TrainTransform::imagenet(size)),
        Normalize::for_channels(channels),
        cfg,
    )
    .map_err(|e| OpsError::Input(e.to_string()))?;
    let start = Instant::now();
    let mut n = 0;
    for batch in loader.epoch(0) {
        n += batch.map_err(netaug_trainer::TrainError::from)?.shape[0];
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// A training-step benchmark.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct TrainOptions {
    /// Zoo model.
    #[cfg_attr(feature = "clap", arg(long, default_value = "tinymbv2"))]
    pub model: String,
    /// Build this net description instead (NetSpec JSON, as `netaug profile --spec`
    /// prints; e.g. bench/probe.json); `--classes` and `--channels` are then its own.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub spec: Option<PathBuf>,
    /// Input side in pixels.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 144))]
    pub resolution: usize,
    /// Images per step.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 64))]
    pub batch: usize,
    /// Classifier outputs.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1000))]
    pub classes: usize,
    /// Input channels.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 3))]
    pub channels: usize,
    /// NetAug steps (the paper's factor lists for the model).
    #[cfg_attr(feature = "clap", arg(long))]
    pub netaug: bool,
    /// Measure baseline and NetAug steps one after the other and print the ratio.
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "netaug"))]
    pub both: bool,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu", value_parser = crate::values::DeviceParser))]
    pub device: DeviceName,
    /// Timed steps.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 20))]
    pub steps: usize,
    /// Untimed steps before.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 3))]
    pub warmup: usize,
    /// Replicas the batch is split over (as `run.replicas`), the threads shared among them.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub replicas: usize,
}

/// Images/s of the timed training steps.
#[derive(Clone, Debug)]
pub struct TrainBenchReport {
    /// The net's name.
    pub model: String,
    /// What was asked.
    pub options: TrainOptions,
    /// Each method timed.
    pub runs: Vec<(&'static str, BenchResult)>,
}

impl TrainBenchReport {
    /// A NetAug step's cost in baseline steps, when both were timed.
    pub fn netaug_cost(&self) -> Option<f64> {
        match self.runs.as_slice() {
            [(_, b), (_, n)] => Some(b.images_per_second / n.images_per_second),
            _ => None,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let o = &self.options;
        let mut out = serde_json::json!({
            "model": self.model, "resolution": o.resolution, "batch": o.batch,
            "device": o.device.to_string(), "steps": o.steps,
        });
        for (name, r) in &self.runs {
            out[*name] = serde_json::to_value(r).expect("results serialize");
        }
        if let [(_, r)] = self.runs.as_slice() {
            out["images_per_second"] = r.images_per_second.into();
        }
        if let Some(q) = self.netaug_cost() {
            out["netaug_cost"] = q.into();
        }
        out
    }
}

impl fmt::Display for TrainBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let replicas = match o.replicas {
            1 => String::new(),
            n => format!(" over {n} replicas"),
        };
        write!(
            f,
            "{} at {}px, batch {}{replicas}, {} ({} timed steps)",
            self.model, o.resolution, o.batch, o.device, o.steps
        )?;
        for (name, r) in &self.runs {
            write!(
                f,
                "\n  {name:<9}{:>10.1} images/s  {:>8.4} s/step",
                r.images_per_second, r.seconds_per_step
            )?;
        }
        if let Some(q) = self.netaug_cost() {
            write!(f, "\n  a NetAug step costs {q:.2}x a baseline step")?;
        }
        Ok(())
    }
}

/// Times training steps on random images.
pub fn train(o: &TrainOptions) -> Result<TrainBenchReport, OpsError> {
    if o.resolution < 8 || o.batch == 0 || o.steps == 0 || o.replicas == 0 {
        return Err(OpsError::Input(
            "--resolution must be >= 8, --batch, --steps and --replicas >= 1".into(),
        ));
    }
    // As `data.image_size`: a side that no allocation can hold aborts, never errs.
    netaug_trainer::config::check_image_size(o.resolution)
        .map_err(|m| OpsError::Input(format!("--resolution: {m}")))?;
    if !o.batch.is_multiple_of(o.replicas) {
        return Err(OpsError::Input(format!(
            "--replicas {} cannot split --batch {} evenly",
            o.replicas, o.batch
        )));
    }
    let net = match &o.spec {
        Some(path) => {
            let bad =
                |e: &dyn fmt::Display| OpsError::input(format!("--spec {}", path.display()), e);
            let text = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
            Some(serde_json::from_str::<NetSpec>(&text).map_err(|e| bad(&e))?)
        }
        None => None,
    };
    let model = net.as_ref().map_or(o.model.clone(), |n| n.name.clone());
    let measure = |netaug| {
        train_throughput(&TrainBench {
            model: model.clone(),
            net: net.clone(),
            resolution: o.resolution,
            batch: o.batch,
            classes: o.classes,
            channels: o.channels,
            netaug,
            device: o.device,
            warmup: o.warmup,
            steps: o.steps,
            replicas: o.replicas,
        })
    };
    let runs = match (o.both, o.netaug) {
        (true, _) => vec![("baseline", measure(false)?), ("netaug", measure(true)?)],
        (false, true) => vec![("netaug", measure(true)?)],
        (false, false) => vec![("baseline", measure(false)?)],
    };
    Ok(TrainBenchReport {
        model,
        options: o.clone(),
        runs,
    })
}

/// Seconds of `report` over synthetic runs.
#[derive(Clone, Debug, Serialize)]
pub struct ReportBench {
    /// Runs.
    pub runs: usize,
    /// Epochs per run.
    pub epochs: usize,
    /// Reports timed.
    pub repeat: usize,
    /// The fastest.
    pub best_seconds: f64,
    /// The median.
    pub median_seconds: f64,
}

impl fmt::Display for ReportBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "report of {} runs x {} epochs: best {:.3} s, median {:.3} s over {} repeats",
            self.runs, self.epochs, self.best_seconds, self.median_seconds, self.repeat
        )
    }
}

/// Writes `runs` synthetic runs of `epochs` epochs into `dir` (default: a temporary folder,
/// removed after) and times `report` over them `repeat` times.
pub fn report(
    runs: usize,
    epochs: usize,
    repeat: usize,
    dir: Option<PathBuf>,
) -> Result<ReportBench, OpsError> {
    if runs == 0 || epochs == 0 || repeat == 0 {
        return Err(OpsError::Input(
            "--runs, --epochs and --repeat must be >= 1".into(),
        ));
    }
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("netaug-bench-report-{}", std::process::id()))
    });
    if dir.join("runs").exists() {
        return Err(OpsError::input(
            dir.display(),
            "already holds runs/; give an empty folder",
        ));
    }
    netaug_analysis::synthetic::write_runs(&dir, runs, epochs)?;
    let mut seconds = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let start = Instant::now();
        let r = netaug_analysis::report(&dir, None)?;
        seconds.push(start.elapsed().as_secs_f64());
        assert_eq!(r.runs, runs, "the report reads every synthetic run");
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    seconds.sort_by(f64::total_cmp);
    Ok(ReportBench {
        runs,
        epochs,
        repeat,
        best_seconds: seconds[0],
        median_seconds: seconds[seconds.len() / 2],
    })
}
