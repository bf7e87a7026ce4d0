//! `detect`: a saved detector on a folder of images or on its run's evaluation split,
//! written as a COCO results JSON (`[{image_id, category_id, bbox: [x, y, w, h], score}]`)
//! that `det-eval` and pycocotools read.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use netaug_data::detection::{DetLoader, DetSample, DetTransform};
use netaug_data::{LoaderConfig, Normalize};
use netaug_detect::decode::DecodeOptions;
use netaug_deteval::Detection;
use netaug_model::{Active, Detector};
use netaug_trainer::backend::{self, DeviceName};
use netaug_trainer::config::check_image_size;
use netaug_trainer::detection::{data, eval, task::decode_options};
use netaug_trainer::{Observer, RunConfig};
use serde::Serialize;

use crate::OpsError;
use crate::run_folder::locate;

/// The input side of a detector that no run folder describes.
pub const DEFAULT_DETECT_SIZE: usize = 416;

/// What to detect on, and how.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct DetectOptions {
    /// A detection run folder, checkpoint folder or exported detector folder.
    #[cfg_attr(feature = "clap", arg(long))]
    pub checkpoint: PathBuf,
    /// Images to detect on: every .jpg/.jpeg/.png in this folder (image_id: the file
    /// name's number, e.g. 000000139.jpg -> 139, else its 1-based position in name
    /// order). Default: the run's evaluation split.
    #[cfg_attr(feature = "clap", arg(long))]
    pub images: Option<PathBuf>,
    /// The results file to write.
    #[cfg_attr(feature = "clap", arg(long))]
    pub out: PathBuf,
    /// Input side in pixels (default: the run's data.image_size, else 416).
    #[cfg_attr(feature = "clap", arg(long))]
    pub image_size: Option<usize>,
    /// Drop detections scoring below (default: the run's, else 0.005).
    #[cfg_attr(feature = "clap", arg(long))]
    pub score_threshold: Option<f32>,
    /// Per-class NMS IoU (default: the run's, else 0.45).
    #[cfg_attr(feature = "clap", arg(long))]
    pub nms_iou: Option<f32>,
    /// Detections per image (default: the run's, else 100).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_detections: Option<usize>,
    /// Batch size.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 32))]
    pub batch_size: usize,
    /// Device (tch-cuda and cuda take a GPU index: cuda:1).
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu", value_parser = crate::values::DeviceParser))]
    pub device: DeviceName,
}

/// What `detect` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct DetectReport {
    /// The detector's folder.
    pub checkpoint: PathBuf,
    /// Detections written.
    pub detections: usize,
    /// Images detected on.
    pub images: usize,
    /// Input side.
    pub image_size: usize,
    /// The results file.
    pub out: PathBuf,
}

impl fmt::Display for DetectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} detections on {} images at {} px -> {}",
            self.checkpoint.display(),
            self.detections,
            self.images,
            self.image_size,
            self.out.display()
        )
    }
}

/// Runs the detector of `o.checkpoint` and writes its detections to `o.out`.
pub fn run(o: &DetectOptions, observer: &mut dyn Observer) -> Result<DetectReport, OpsError> {
    let (dir, run_config) = locate(&o.checkpoint)?;
    let device = backend::device(&o.device)?;
    let det = load_detector(&dir, &device)?;
    let size = o
        .image_size
        .or(run_config.as_ref().map(|c| c.data.image_size))
        .unwrap_or(DEFAULT_DETECT_SIZE);
    check_image_size(size).map_err(|m| OpsError::input("--image-size", m))?;
    if o.batch_size == 0 {
        return Err(OpsError::Input("--batch-size must be at least 1".into()));
    }
    let mut options = run_decode_options(run_config.as_ref());
    if let Some(t) = o.score_threshold {
        options.score_threshold = t;
    }
    if let Some(t) = o.nms_iou {
        options.nms_iou = t;
    }
    if let Some(m) = o.max_detections {
        options.max_detections = m;
    }
    let samples = match (&o.images, &run_config) {
        (Some(folder), _) => folder_samples(folder)?,
        (None, Some(c)) => data::open(&c.data)?.eval,
        (None, None) => {
            return Err(OpsError::input(
                "--images",
                format!(
                    "required ({} is not inside a run folder)",
                    o.checkpoint.display()
                ),
            ));
        }
    };
    let images = samples.len();
    let found = detect(
        &det,
        samples,
        size,
        o.batch_size,
        &device,
        &options,
        observer,
    )?;
    write_results(&o.out, &found)?;
    Ok(DetectReport {
        checkpoint: dir,
        detections: found.len(),
        images,
        image_size: size,
        out: o.out.clone(),
    })
}

/// The decoding options of a detection run, or the decoder's defaults.
pub(crate) fn run_decode_options(config: Option<&RunConfig>) -> DecodeOptions {
    config
        .and_then(|c| c.detection.as_ref())
        .map_or_else(DecodeOptions::default, decode_options)
}

/// Loads the detector in `dir`, its target active; a classification net there is input
/// at fault.
pub(crate) fn load_detector(dir: &Path, device: &Device) -> Result<Detector, OpsError> {
    let mut det = Detector::load(dir, device).map_err(|e| {
        OpsError::input(
            "--checkpoint",
            format!("{}: not a saved detector ({e})", dir.display()),
        )
    })?;
    det.set_active(Active::Min);
    Ok(det)
}

/// The detections of `det` on `samples` at `size` pixels.
pub(crate) fn detect(
    det: &Detector,
    samples: Vec<DetSample>,
    size: usize,
    batch_size: usize,
    device: &Device,
    options: &DecodeOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<Detection>, OpsError> {
    let loader = DetLoader::new(
        samples,
        DetTransform::Eval(size),
        Normalize::imagenet(),
        LoaderConfig::eval(batch_size),
    )
    .map_err(|e| OpsError::Input(e.to_string()))?;
    Ok(eval::predict(det, &loader, device, options, observer)?)
}

/// Every image file of `folder`, in name order, with its image id: the file name's number
/// (000000139.jpg -> 139), else its 1-based position.
fn folder_samples(folder: &Path) -> Result<Vec<DetSample>, OpsError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| OpsError::input("--images", format!("{}: {e}", folder.display())))?;
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
        return Err(OpsError::input(
            "--images",
            format!("{}: no .jpg, .jpeg or .png files", folder.display()),
        ));
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

/// One detection as pycocotools reads it.
#[derive(Serialize)]
struct CocoResult<'a> {
    image_id: u64,
    category_id: u64,
    bbox: &'a [f64; 4],
    score: f64,
}

/// Writes `detections` as a COCO results JSON (whole or not at all).
fn write_results(path: &Path, detections: &[Detection]) -> Result<(), OpsError> {
    let list: Vec<CocoResult> = detections
        .iter()
        .map(|d| CocoResult {
            image_id: d.image_id,
            category_id: d.category_id,
            bbox: &d.bbox,
            score: d.score,
        })
        .collect();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| OpsError::write(parent, e))?;
    }
    let text = serde_json::to_string(&list).expect("detections serialize");
    netaug_fs::write_file(path, text.as_bytes()).map_err(|e| OpsError::write(path, e))
}
