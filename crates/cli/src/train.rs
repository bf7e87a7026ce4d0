//! `netaug train`, `netaug eval`, `netaug export`: wiring over netaug-trainer, with a
//! progress bar per phase (drawn only on a terminal) and one line per epoch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use netaug_model::{Active, AugFactors, Net};
use netaug_trainer::backend::DeviceName;
use netaug_trainer::checkpoint::resolve_net;
use netaug_trainer::pth;
use netaug_trainer::{RunConfig, TrainError, TrainOptions, backend, data, eval};
use serde_json::json;

use crate::progress::Bars;
use crate::run_folder::run_config_of;
use crate::values::{self, DeviceParser};
use crate::{UsageError, classify};

/// `netaug train` arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run config (YAML; see experiments/).
    pub config: PathBuf,
    /// The run folder (config.yaml, metrics.jsonl, summary.json, checkpoints/, exported/).
    #[arg(long)]
    pub out: PathBuf,
    /// Override a config key, e.g. `--set run.epochs=3` (repeatable; `null` removes).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bars or epoch lines.
    #[arg(long)]
    pub quiet: bool,
}

/// `netaug eval` arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A run folder, checkpoint folder or exported-net folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset (default: the run's, when --checkpoint is inside a run folder).
    #[arg(long, value_parser = values::dataset())]
    pub dataset: Option<String>,
    /// Dataset root (default: the run's).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Split to evaluate (default: the dataset's evaluation split).
    #[arg(long)]
    pub split: Option<String>,
    /// Resolution (default: the run's).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[arg(long, default_value = "cpu", value_parser = DeviceParser)]
    pub device: DeviceName,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `netaug export` arguments.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// A run folder or checkpoint folder.
    #[arg(
        long,
        required_unless_present = "from_pth",
        conflicts_with = "from_pth"
    )]
    pub checkpoint: Option<PathBuf>,
    /// An official NetAug PyTorch checkpoint (`.pth`/`.pt`): a plain net or a NetAug
    /// supernet, whose target net is exported.
    #[arg(long, value_name = "FILE", requires = "model")]
    pub from_pth: Option<PathBuf>,
    /// With --from-pth: the zoo net the file holds (tinymbv2, mbv2-0.35, ...).
    #[arg(long)]
    pub model: Option<String>,
    /// With --from-pth: the class count the file must have.
    #[arg(long)]
    pub classes: Option<usize>,
    /// With --from-pth: the input channels the file must have.
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// The input side for --from-pth and for a checkpoint outside a run folder (a run's
    /// own resolution wins): the params/MACs line, and the ONNX input with --format onnx.
    #[arg(long, default_value_t = 224)]
    pub resolution: usize,
    /// With --from-pth, for a supernet: its expand factors (default: tried plain, then
    /// the paper's lists for --model).
    #[arg(long, value_delimiter = ',', requires = "aug_width_mult_list")]
    pub aug_expand_list: Option<Vec<f64>>,
    /// With --from-pth, for a supernet: its width factors.
    #[arg(long, value_delimiter = ',', requires = "aug_expand_list")]
    pub aug_width_mult_list: Option<Vec<f64>>,
    /// Where to write the tiny net: a folder (model.json, weights.bpk), or with
    /// `--format onnx` a file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing `--out`; the old one goes only once the new one is whole.
    #[arg(long)]
    pub force: bool,
    /// `folder` (what `eval` and `train`'s `init_from` read) or `onnx` (a file for ONNX
    /// runtimes: BN folded, opset 13, input normalized as the run's evaluation).
    #[arg(long, value_enum, default_value_t = ExportFormat::Folder)]
    pub format: ExportFormat,
}

/// What `netaug export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A folder with model.json and weights.bpk.
    Folder,
    /// One ONNX file.
    Onnx,
}

/// Runs `netaug train`.
pub fn train(args: TrainArgs) -> Result<()> {
    let config =
        RunConfig::load(&args.config, &args.set).map_err(|e| classify(TrainError::from(e)))?;
    let mut bars = Bars::new(args.quiet);
    crate::signals::stop_runs_on_signals()?;
    let summary = netaug_trainer::train(
        &config,
        &args.out,
        &TrainOptions {
            resume: args.resume,
        },
        &mut bars,
    )
    .map_err(classify)?;
    let result = match (summary.final_val_top1, summary.final_val_map50) {
        (Some(top1), _) => format!(
            "final val top-1 {top1:.2}% (best {:.2}% at epoch {}){}",
            summary.best_val_top1.unwrap_or(top1),
            summary.best_epoch,
            summary
                .final_test_top1
                .map_or_else(String::new, |t| format!(", test top-1 {t:.2}%"))
        ),
        (None, Some(map50)) => format!(
            "final val mAP50 {map50:.2}% mAP {:.2}% (best mAP50 {:.2}% at epoch {})",
            summary.final_val_map.unwrap_or(0.0),
            summary.best_val_map50.unwrap_or(map50),
            summary.best_epoch
        ),
        (None, None) => "no evaluation".into(),
    };
    outln!(
        "{}: {} {} {result}, {:.0} img/s, {:.0} s",
        args.out.display(),
        summary.model,
        summary.method,
        summary.images_per_second,
        summary.wall_seconds
    )?;
    Ok(())
}

/// Runs `netaug eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let input = |e: TrainError| classify(e);
    if let Some(s) = args.image_size {
        netaug_trainer::config::check_image_size(s)
            .map_err(|m| UsageError(format!("--image-size: {m}")))?;
    }
    let dir = resolve_net(&args.checkpoint).map_err(input)?;
    // Defaults from the run this checkpoint belongs to, when there is one.
    let run_config = run_config_of(&dir).map_err(|e| input(e.into()))?;
    if let Some(config) = run_config.as_ref().filter(|c| c.detection.is_some()) {
        return eval_detector(&args, &dir, config);
    }
    let mut data_cfg = match (&run_config, &args.dataset) {
        (Some(c), None) => c.data.clone(),
        (_, Some(dataset)) => netaug_trainer::config::DataConfig {
            dataset: dataset.clone(),
            root: None,
            image_size: run_config.as_ref().map_or(224, |c| c.data.image_size),
            batch_size: args.batch_size,
            workers: 0,
            train_subset: None,
            eval_subset: None,
            val_split: None,
            train_eval_images: None,
            min_scale: 0.08,
        },
        (None, None) => {
            return Err(UsageError(format!(
                "--dataset: required ({} is not inside a run folder)",
                args.checkpoint.display()
            ))
            .into());
        }
    };
    if args.root.is_some() {
        data_cfg.root = args.root.clone();
    }
    if let Some(s) = args.image_size {
        data_cfg.image_size = s;
    }
    let dataset = data::open(&data_cfg).map_err(input)?;
    let split = match &args.split {
        Some(s) => dataset
            .split(s)
            .map_err(|e| UsageError(format!("--split: {e}")))?,
        None => dataset.eval(),
    };
    let device = backend::device(&args.device).map_err(input)?;
    let mut net = Net::load(&dir, &device).map_err(|e| UsageError(format!("--checkpoint: {e}")))?;
    net.set_active(Active::Min);
    if net.spec().classes != dataset.classes.len() {
        return Err(UsageError(format!(
            "--checkpoint: {} has {} classes, {} has {}",
            dir.display(),
            net.spec().classes,
            dataset.name,
            dataset.classes.len()
        ))
        .into());
    }
    // Images are decoded to the dataset's channels; a net that expects others would fail
    // in its first convolution, or, worse, read them wrongly.
    if net.spec().in_channels != dataset.channels {
        return Err(UsageError(format!(
            "--checkpoint: {} takes {}-channel images, {} has {}-channel images",
            dir.display(),
            net.spec().in_channels,
            dataset.name,
            dataset.channels
        ))
        .into());
    }
    let loader = data::eval_loader(
        split.samples.clone(),
        dataset.channels,
        data_cfg.image_size,
        args.batch_size,
        0,
    )
    .map_err(input)?;
    let mut bars = Bars::new(args.json);
    let r = eval::evaluate(&net, &loader, &device, &mut bars, "eval")?;
    if args.json {
        let out = json!({
            "checkpoint": dir.display().to_string(),
            "dataset": dataset.name,
            "split": split.name,
            "image_size": data_cfg.image_size,
            "images": r.images,
            "top1": r.top1,
            "top5": r.top5,
            "loss": r.loss,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        outln!(
            "{} on {} {} ({} images at {} px): top-1 {:.2}%, top-5 {:.2}%, loss {:.4}",
            dir.display(),
            dataset.name,
            split.name,
            r.images,
            data_cfg.image_size,
            r.top1,
            r.top5,
            r.loss
        )?;
    }
    Ok(())
}

/// `netaug eval` of a detector in a detection run: mAP50 and mAP on the run's evaluation
/// split (`--root`, `--image-size` apply; `--dataset` and `--split` do not).
fn eval_detector(args: &EvalArgs, dir: &Path, config: &RunConfig) -> Result<()> {
    use netaug_trainer::detection::{data as det_data, eval as det_eval, task::decode_options};
    if args.dataset.is_some() || args.split.is_some() {
        return Err(UsageError(
            "--dataset/--split: a detector is evaluated on its run's evaluation split".into(),
        )
        .into());
    }
    let mut data_cfg = config.data.clone();
    if args.root.is_some() {
        data_cfg.root = args.root.clone();
    }
    let size = args.image_size.unwrap_or(data_cfg.image_size);
    let data = det_data::open(&data_cfg).map_err(classify)?;
    let device = backend::device(&args.device).map_err(classify)?;
    let det = crate::detect::load_detector(dir, &device)?;
    let options = config
        .detection
        .as_ref()
        .map(decode_options)
        .unwrap_or_default();
    let images = data.eval.len();
    let found = crate::detect::detect(
        &det,
        data.eval,
        size,
        args.batch_size,
        &device,
        &options,
        args.json,
    )?;
    let s = det_eval::score(&data.gt, &found).map_err(classify)?;
    if args.json {
        let out = json!({
            "checkpoint": dir.display().to_string(),
            "dataset": data_cfg.dataset,
            "image_size": size,
            "images": images,
            "map50": s.map50,
            "map": s.map,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        outln!(
            "{} on {} ({images} images at {size} px): mAP50 {:.2}%, mAP {:.2}%",
            dir.display(),
            data_cfg.dataset,
            s.map50,
            s.map
        )?;
    }
    Ok(())
}

/// Runs `netaug export`.
pub fn export(args: ExportArgs) -> Result<()> {
    if args.format == ExportFormat::Onnx {
        return crate::onnx::export(&args);
    }
    refuse_existing(&args.out, args.force)?;
    let Some(checkpoint) = &args.checkpoint else {
        return export_official(&args);
    };
    let dir = resolve_net(checkpoint).map_err(classify)?;
    let device = burn::tensor::Device::flex();
    // Profiled at the run's resolution when the checkpoint is inside a run folder.
    let run_config = run_config_of(&dir).ok().flatten();
    // A detector: of a detection run, or an exported one copied out of its run (its
    // model.json has a `detector` section).
    let detection_run = run_config.as_ref().filter(|c| c.detection.is_some());
    if detection_run.is_some() || is_detector(&dir) {
        let det = crate::detect::load_detector(&dir, &device)?;
        let tiny = det.export();
        write_new_folder(&args.out, |tmp| tiny.save(tmp))?;
        let size = detection_run.map_or(args.resolution, |c| c.data.image_size);
        let p = tiny.profile(size);
        outln!(
            "{} -> {}: detector, {} params, {} MACs",
            dir.display(),
            args.out.display(),
            p.params,
            p.macs
        )?;
        return Ok(());
    }
    let mut net = Net::load(&dir, &device).map_err(|e| UsageError(format!("--checkpoint: {e}")))?;
    net.set_active(Active::Min);
    let tiny = net.export();
    write_new_folder(&args.out, |tmp| tiny.save(tmp))?;
    let resolution = run_config.as_ref().map_or(224, |c| c.data.image_size);
    let p = tiny.profile(resolution);
    outln!(
        "{} -> {}: {} params, {} MACs",
        dir.display(),
        args.out.display(),
        p.params,
        p.macs
    )?;
    Ok(())
}

/// Whether the saved net in `dir` is a detector (its model.json has a `detector` section).
fn is_detector(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(netaug_model::net::MODEL_JSON))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("detector").is_some())
}

/// `netaug export --from-pth`: the target net of an official checkpoint (plain net or
/// supernet) as a folder that `netaug eval --checkpoint` reads.
fn export_official(args: &ExportArgs) -> Result<()> {
    let (net, path, model) = load_official(args)?;
    let tiny = net.export();
    write_new_folder(&args.out, |tmp| tiny.save(tmp))?;
    let p = tiny.profile(args.resolution);
    outln!(
        "{} -> {}: {model}{}, {} classes, {} params, {} MACs at {} px",
        path.display(),
        args.out.display(),
        if net.factors().is_augmented() {
            " (target of the supernet)"
        } else {
            ""
        },
        tiny.spec().classes,
        p.params,
        p.macs,
        args.resolution
    )?;
    Ok(())
}

/// The net of `--from-pth` (its target active), the file and the model name; counts that
/// differ from `--classes` / `--in-channels` are refused.
pub(crate) fn load_official(args: &ExportArgs) -> Result<(Net, &Path, &str)> {
    let (Some(path), Some(model)) = (&args.from_pth, &args.model) else {
        return Err(UsageError("--from-pth needs --model".into()).into());
    };
    let device = burn::tensor::Device::flex();
    let factors =
        match (&args.aug_expand_list, &args.aug_width_mult_list) {
            (Some(e), Some(w)) => Some(AugFactors::new(e.clone(), w.clone()).map_err(|e| {
                UsageError(format!("--aug-expand-list / --aug-width-mult-list: {e}"))
            })?),
            _ => None,
        };
    // The target of a supernet is active.
    let net = pth::load_official(model, path, factors.as_ref(), &device)
        .map_err(|e| UsageError(format!("--from-pth: {e}")))?;
    let spec = net.spec();
    for (flag, want, have) in [
        ("--classes", args.classes, spec.classes),
        ("--in-channels", args.in_channels, spec.in_channels),
    ] {
        if let Some(want) = want.filter(|w| *w != have) {
            return Err(UsageError(format!(
                "{flag} {want}: {} holds a net with {have}",
                path.display()
            ))
            .into());
        }
    }
    Ok((net, path, model))
}

/// Refuses an `--out` that already exists (anything but an empty folder) unless `force`
/// (and then it must be a folder): an export does not write over a checkpoint, a run or an
/// earlier export unless asked to.
fn refuse_existing(out: &Path, force: bool) -> Result<()> {
    let empty_dir = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_none());
    if out.exists() && !empty_dir && !(force && out.is_dir()) {
        return Err(UsageError(format!(
            "--out {}: already exists; choose a new folder, or pass --force to replace it",
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// `.<name of out>.<tag>-<pid>` beside `out`: where an export is written before it is
/// renamed into place, or an old one waits to be removed.
pub(crate) fn sibling(out: &Path, tag: &str) -> PathBuf {
    let name = out.file_name().map_or_else(
        || "export".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    out.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes a folder through `write` into a temporary sibling, then renames it to `out`, so
/// a failed or killed export leaves no half-written folder behind.
fn write_new_folder<E>(out: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let tmp = sibling(out, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = write(&tmp)
        .with_context(|| format!("writing {}", out.display()))
        .and_then(|()| {
            if !out.is_dir() {
                return std::fs::rename(&tmp, out)
                    .with_context(|| format!("writing {}", out.display()));
            }
            // A folder at `out` (empty, or with --force) is swapped out, then removed.
            let old = sibling(out, "old");
            std::fs::rename(out, &old).with_context(|| format!("replacing {}", out.display()))?;
            if let Err(e) = std::fs::rename(&tmp, out) {
                let _ = std::fs::rename(&old, out);
                return Err(e).with_context(|| format!("writing {}", out.display()));
            }
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
