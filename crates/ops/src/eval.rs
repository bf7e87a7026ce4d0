//! `eval`: the top-1/top-5 of a saved net on a dataset split, or the mAP of a saved
//! detector on its run's evaluation split.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use netaug_model::{Active, Net};
use netaug_trainer::backend::{self, DeviceName};
use netaug_trainer::config::{DataConfig, check_image_size};
use netaug_trainer::detection::{data as det_data, eval as det_eval};
use netaug_trainer::{Observer, RunConfig, data, eval};
use serde::Serialize;

use crate::run_folder::locate;
use crate::{OpsError, detect};

/// What to evaluate, and on what.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct EvalOptions {
    /// A run folder, checkpoint folder or exported-net folder.
    #[cfg_attr(feature = "clap", arg(long))]
    pub checkpoint: PathBuf,
    /// Dataset (default: the run's, when --checkpoint is inside a run folder).
    #[cfg_attr(feature = "clap", arg(long, value_parser = crate::values::dataset()))]
    pub dataset: Option<String>,
    /// Dataset root (default: the run's).
    #[cfg_attr(feature = "clap", arg(long))]
    pub root: Option<PathBuf>,
    /// Split to evaluate (default: the dataset's evaluation split).
    #[cfg_attr(feature = "clap", arg(long))]
    pub split: Option<String>,
    /// Resolution (default: the run's).
    #[cfg_attr(feature = "clap", arg(long))]
    pub image_size: Option<usize>,
    /// Batch size.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 256))]
    pub batch_size: usize,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu", value_parser = crate::values::DeviceParser))]
    pub device: DeviceName,
}

/// What `eval` measured.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum EvalReport {
    /// A classifier's accuracy.
    Classifier {
        /// The net's folder.
        checkpoint: String,
        /// The dataset.
        dataset: String,
        /// The split.
        split: String,
        /// Resolution.
        image_size: usize,
        /// Images evaluated.
        images: usize,
        /// Top-1 (percent).
        top1: f64,
        /// Top-5 (percent).
        top5: f64,
        /// Mean cross-entropy.
        loss: f64,
    },
    /// A detector's mAP.
    Detector {
        /// The net's folder.
        checkpoint: String,
        /// The dataset.
        dataset: String,
        /// Resolution.
        image_size: usize,
        /// Images evaluated.
        images: usize,
        /// mAP at IoU 0.5 (percent).
        map50: f64,
        /// mAP over IoU 0.5:0.95 (percent).
        map: f64,
    },
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Classifier {
                checkpoint,
                dataset,
                split,
                image_size,
                images,
                top1,
                top5,
                loss,
            } => write!(
                f,
                "{checkpoint} on {dataset} {split} ({images} images at {image_size} px): \
                 top-1 {top1:.2}%, top-5 {top5:.2}%, loss {loss:.4}"
            ),
            Self::Detector {
                checkpoint,
                dataset,
                image_size,
                images,
                map50,
                map,
            } => write!(
                f,
                "{checkpoint} on {dataset} ({images} images at {image_size} px): \
                 mAP50 {map50:.2}%, mAP {map:.2}%"
            ),
        }
    }
}

/// Evaluates the net of `o.checkpoint`; defaults come from the run it belongs to.
pub fn evaluate(o: &EvalOptions, observer: &mut dyn Observer) -> Result<EvalReport, OpsError> {
    if let Some(s) = o.image_size {
        check_image_size(s).map_err(|m| OpsError::input("--image-size", m))?;
    }
    let (dir, run_config) = locate(&o.checkpoint)?;
    if let Some(config) = run_config.as_ref().filter(|c| c.detection.is_some()) {
        return evaluate_detector(o, &dir, config, observer);
    }
    let mut data_cfg = match (&run_config, &o.dataset) {
        (Some(c), None) => c.data.clone(),
        (_, Some(dataset)) => DataConfig::evaluation(
            dataset,
            run_config
                .as_ref()
                .map_or(crate::DEFAULT_RESOLUTION, |c| c.data.image_size),
            o.batch_size,
        ),
        (None, None) => {
            return Err(OpsError::input(
                "--dataset",
                format!(
                    "required ({} is not inside a run folder)",
                    o.checkpoint.display()
                ),
            ));
        }
    };
    if o.root.is_some() {
        data_cfg.root = o.root.clone();
    }
    if let Some(s) = o.image_size {
        data_cfg.image_size = s;
    }
    let dataset = data::open(&data_cfg)?;
    let split = match &o.split {
        Some(s) => dataset
            .split(s)
            .map_err(|e| OpsError::input("--split", e))?,
        None => dataset.eval(),
    };
    let device = backend::device(&o.device)?;
    let net = load_net(&dir, &device)?;
    let (spec, what) = (net.spec(), dir.display());
    if spec.classes != dataset.classes.len() {
        return Err(OpsError::input(
            "--checkpoint",
            format!(
                "{what} has {} classes, {} has {}",
                spec.classes,
                dataset.name,
                dataset.classes.len()
            ),
        ));
    }
    // Images are decoded to the dataset's channels; a net that expects others would fail
    // in its first convolution, or, worse, read them wrongly.
    if spec.in_channels != dataset.channels {
        return Err(OpsError::input(
            "--checkpoint",
            format!(
                "{what} takes {}-channel images, {} has {}-channel images",
                spec.in_channels, dataset.name, dataset.channels
            ),
        ));
    }
    let loader = data::eval_loader(
        split.samples.clone(),
        dataset.channels,
        data_cfg.image_size,
        o.batch_size,
        0,
    )?;
    let r = eval::evaluate(&net, &loader, &device, observer, "eval")?;
    Ok(EvalReport::Classifier {
        checkpoint: dir.display().to_string(),
        dataset: dataset.name.clone(),
        split: split.name.clone(),
        image_size: data_cfg.image_size,
        images: r.images,
        top1: r.top1,
        top5: r.top5,
        loss: r.loss,
    })
}

/// The net saved in `dir` with its target (smallest) width active.
pub(crate) fn load_net(dir: &Path, device: &Device) -> Result<Net, OpsError> {
    let mut net = Net::load(dir, device).map_err(|e| OpsError::input("--checkpoint", e))?;
    net.set_active(Active::Min);
    Ok(net)
}

/// A detector of a detection run: mAP50 and mAP on the run's evaluation split (`--root`,
/// `--image-size` apply; `--dataset` and `--split` do not).
fn evaluate_detector(
    o: &EvalOptions,
    dir: &Path,
    config: &RunConfig,
    observer: &mut dyn Observer,
) -> Result<EvalReport, OpsError> {
    if o.dataset.is_some() || o.split.is_some() {
        return Err(OpsError::input(
            "--dataset/--split",
            "a detector is evaluated on its run's evaluation split",
        ));
    }
    let mut data_cfg = config.data.clone();
    if o.root.is_some() {
        data_cfg.root = o.root.clone();
    }
    let size = o.image_size.unwrap_or(data_cfg.image_size);
    let data = det_data::open(&data_cfg)?;
    let device = backend::device(&o.device)?;
    let det = detect::load_detector(dir, &device)?;
    let options = detect::run_decode_options(Some(config));
    let images = data.eval.len();
    let found = detect::detect(
        &det,
        data.eval,
        size,
        o.batch_size,
        &device,
        &options,
        observer,
    )?;
    let s = det_eval::score(&data.gt, &found)?;
    Ok(EvalReport::Detector {
        checkpoint: dir.display().to_string(),
        dataset: data_cfg.dataset,
        image_size: size,
        images,
        map50: s.map50,
        map: s.map,
    })
}
