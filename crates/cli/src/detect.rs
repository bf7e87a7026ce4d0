//! `netaug detect`: a saved detector on a folder of images or on its run's evaluation
//! split, written as a COCO results JSON (`[{image_id, category_id, bbox: [x, y, w, h],
//! score}]`) that `netaug det-eval` and pycocotools read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use netaug_data::detection::{DetLoader, DetSample, DetTransform};
use netaug_data::{LoaderConfig, Normalize};
use netaug_detect::decode::DecodeOptions;
use netaug_deteval::Detection;
use netaug_model::{Active, Detector};
use netaug_trainer::backend;
use netaug_trainer::checkpoint::resolve_net;
use netaug_trainer::detection::{data, eval, task::decode_options};
use serde_json::json;

use crate::progress::Bars;
use crate::run_folder::run_config_of;
use crate::{UsageError, classify};

/// `netaug detect` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A detection run folder, checkpoint folder or exported detector folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Images to detect on: every .jpg/.jpeg/.png in this folder (image_id: the file
    /// name's number, e.g. 000000139.jpg -> 139, else its 1-based position in name
    /// order). Default: the run's evaluation split.
    #[arg(long)]
    images: Option<PathBuf>,
    /// The results file to write.
    #[arg(long)]
    out: PathBuf,
    /// Input side in pixels (default: the run's data.image_size, else 416).
    #[arg(long)]
    image_size: Option<usize>,
    /// Drop detections scoring below (default: the run's, else 0.005).
    #[arg(long)]
    score_threshold: Option<f32>,
    /// Per-class NMS IoU (default: the run's, else 0.45).
    #[arg(long)]
    nms_iou: Option<f32>,
    /// Detections per image (default: the run's, else 100).
    #[arg(long)]
    max_detections: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[arg(long, default_value = "cpu", value_parser = crate::values::DeviceParser)]
    device: netaug_trainer::backend::DeviceName,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `netaug detect`.
pub fn run(args: Args) -> Result<()> {
    let dir = resolve_net(&args.checkpoint).map_err(classify)?;
    let run_config =
        run_config_of(&dir).map_err(|e| classify(netaug_trainer::TrainError::from(e)))?;
    let device = backend::device(&args.device).map_err(classify)?;
    let mut det = load_detector(&dir, &device)?;
    det.set_active(Active::Min);
    let size = args
        .image_size
        .or(run_config.as_ref().map(|c| c.data.image_size))
        .unwrap_or(416);
    netaug_trainer::config::check_image_size(size)
        .map_err(|m| UsageError(format!("--image-size: {m}")))?;
    if args.batch_size == 0 {
        return Err(UsageError("--batch-size must be at least 1".into()).into());
    }
    let mut options = run_config
        .as_ref()
        .and_then(|c| c.detection.as_ref())
        .map_or_else(DecodeOptions::default, decode_options);
    if let Some(t) = args.score_threshold {
        options.score_threshold = t;
    }
    if let Some(t) = args.nms_iou {
        options.nms_iou = t;
    }
    if let Some(m) = args.max_detections {
        options.max_detections = m;
    }
    let samples = match (&args.images, &run_config) {
        (Some(folder), _) => folder_samples(folder)?,
        (None, Some(c)) => data::open(&c.data).map_err(classify)?.eval,
        (None, None) => {
            return Err(UsageError(format!(
                "--images: required ({} is not inside a run folder)",
                args.checkpoint.display()
            ))
            .into());
        }
    };
    let n_images = samples.len();
    let detections = detect(
        &det,
        samples,
        size,
        args.batch_size,
        &device,
        &options,
        args.quiet,
    )?;
    write_results(&args.out, &detections)?;
    outln!(
        "{}: {} detections on {n_images} images at {size} px -> {}",
        dir.display(),
        detections.len(),
        args.out.display()
    )?;
    Ok(())
}

/// Loads the detector in `dir`; a classification net there is a usage error.
pub fn load_detector(dir: &Path, device: &burn::tensor::Device) -> Result<Detector> {
    Detector::load(dir, device).map_err(|e| {
        UsageError(format!(
            "--checkpoint: {}: not a saved detector ({e})",
            dir.display()
        ))
        .into()
    })
}

/// The detections of `det` on `samples` at `size` pixels.
pub fn detect(
    det: &Detector,
    samples: Vec<DetSample>,
    size: usize,
    batch_size: usize,
    device: &burn::tensor::Device,
    options: &DecodeOptions,
    quiet: bool,
) -> Result<Vec<Detection>> {
    let loader = DetLoader::new(
        samples,
        DetTransform::Eval(size),
        Normalize::imagenet(),
        LoaderConfig::eval(batch_size),
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let mut bars = Bars::new(quiet);
    eval::predict(det, &loader, device, options, &mut bars).map_err(classify)
}

/// Every image file of `folder`, in name order, with its image id.
fn folder_samples(folder: &Path) -> Result<Vec<DetSample>> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| UsageError(format!("--images: {}: {e}", folder.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(UsageError(format!(
            "--images: {}: no .jpg, .jpeg or .png files",
            folder.display()
        ))
        .into());
    }
    Ok(files
        .into_iter()
        .enumerate()
        .map(|(i, image)| {
            let digits: String = image
                .file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .chars()
                        .filter(char::is_ascii_digit)
                        .collect()
                })
                .unwrap_or_default();
            DetSample {
                id: digits.parse().unwrap_or(i as u64 + 1),
                image,
                width: 0,
                height: 0,
                boxes: Vec::new(),
            }
        })
        .collect())
}

/// Writes `detections` as a COCO results JSON.
fn write_results(path: &Path, detections: &[Detection]) -> Result<()> {
    let list: Vec<_> = detections
        .iter()
        .map(|d| {
            json!({
                "image_id": d.image_id,
                "category_id": d.category_id,
                "bbox": d.bbox,
                "score": d.score,
            })
        })
        .collect();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, serde_json::to_string(&list)?)
        .with_context(|| format!("writing {}", path.display()))
}
