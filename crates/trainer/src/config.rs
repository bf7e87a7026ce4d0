//! The run configuration: a YAML file, strict (unknown keys are errors naming their
//! path), with `key.path=value` overrides.
//!
//! Key names are a contract: data.dataset, data.root, data.image_size, data.batch_size,
//! model.name, run.epochs, run.warmup_epochs, run.base_lr, run.seed,
//! netaug.aug_expand_list, netaug.aug_width_mult_list, netaug.stop_aug_w_epoch, device.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

/// A configuration error: the file and the key path or value at fault, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key is unknown or has the wrong type.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `--set`).
        file: String,
        /// Dotted key path (`.` for the root).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The largest run config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The most epochs `run.epochs` or `run.warmup_epochs` may ask for.
pub const MAX_EPOCHS: usize = 1_000_000;

/// The largest input side a run or an evaluation accepts: beyond it one batch of
/// activations would not fit in memory (the paper's largest is 416).
pub const MAX_IMAGE_SIZE: usize = 2048;

/// Checks an input side in pixels: 8 (the smallest the nets' stem takes) to
/// [`MAX_IMAGE_SIZE`]; the message says which bound it broke.
pub fn check_image_size(size: usize) -> Result<(), String> {
    if size < 8 {
        Err(format!("{size} is below 8 pixels"))
    } else if size > MAX_IMAGE_SIZE {
        Err(format!("{size} is above {MAX_IMAGE_SIZE} pixels"))
    } else {
        Ok(())
    }
}

/// A full run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The dataset and its loading.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Optimization.
    pub run: RunSection,
    /// NetAug; absent for a baseline run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netaug: Option<NetAugConfig>,
    /// Knowledge distillation from a teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kd: Option<KdConfig>,
    /// The regularizers the paper compares NetAug with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regularization: Option<RegularizationConfig>,
    /// Detection: a YOLO-style detector on the `model` backbone, trained on a `coco` or
    /// `voc` dataset; absent for classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionConfig>,
    /// Device: `cpu` (default, pure Rust), `tch-cpu`, `tch-cuda[:N]`, `cuda[:N]`; or a
    /// list of one backend's devices, one replica on each (`[tch-cuda:0, tch-cuda:1]`).
    #[serde(default)]
    pub device: crate::backend::Devices,
}

/// `detection:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Anchors: `kmeans` (9 by k-means on the training boxes at `data.image_size`),
    /// `yolov3` (YOLOv3's set scaled from 416 px), or nine `[w, h]` in input pixels,
    /// smallest first.
    #[serde(default = "default_anchors")]
    pub anchors: Anchors,
    /// Multi-scale training: square sides drawn per batch (multiples of 32); empty trains
    /// at `data.image_size` only.
    #[serde(default)]
    pub multi_scale: Vec<usize>,
    /// Smallest random-crop side, as a fraction of the image's side (1 = no crop).
    #[serde(default = "default_min_crop")]
    pub min_crop: f64,
    /// Detections scoring below are dropped (evaluation and `netaug detect`).
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f32,
    /// Per-class NMS IoU.
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f32,
    /// Detections kept per image.
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
}

/// `detection.anchors`: a method's name or the anchors themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Anchors {
    /// Found by a method.
    Method(AnchorMethod),
    /// `[w, h]` pairs in input pixels.
    List(Vec<[f32; 2]>),
}

/// How a detection run finds its anchors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorMethod {
    /// k-means (1 - IoU) on the training boxes at `data.image_size`.
    Kmeans,
    /// YOLOv3's set, scaled from 416 px.
    Yolov3,
}

impl<'de> Deserialize<'de> for Anchors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            List(Vec<[f32; 2]>),
        }
        match Raw::deserialize(d)? {
            Raw::Name(n) => match n.as_str() {
                "kmeans" => Ok(Self::Method(AnchorMethod::Kmeans)),
                "yolov3" => Ok(Self::Method(AnchorMethod::Yolov3)),
                _ => Err(serde::de::Error::custom(format!(
                    "unknown anchors `{n}` (known: kmeans, yolov3, or {ANCHOR_COUNT} [w, h])"
                ))),
            },
            Raw::List(l) => Ok(Self::List(l)),
        }
    }
}

/// Anchors a detector takes: three per stride.
pub const ANCHOR_COUNT: usize = 9;

/// The detection datasets (`data.dataset` with a `detection:` section).
pub const DETECTION_DATASETS: [&str; 2] = ["coco", "voc"];

/// `data:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset name (see `netaug data info`).
    pub dataset: String,
    /// Dataset root (optional for fashion-mnist).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Input resolution in pixels.
    pub image_size: usize,
    /// Global batch size.
    pub batch_size: usize,
    /// Loader threads; 0 = one per core.
    #[serde(default)]
    pub workers: usize,
    /// Train on the first N images of a fixed shuffle of the training split.
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N images of the evaluation split.
    #[serde(default)]
    pub eval_subset: Option<usize>,
    /// Hold N images of the training split out (fixed, seeded, stratified by class) as
    /// the validation set that every choice reads (best epoch, export, learning rate);
    /// the evaluation split is then the test set, reported beside it and never chosen on.
    /// Classification only.
    #[serde(default)]
    pub val_split: Option<usize>,
    /// After each epoch, the top-1 of the target net on a fixed sample of N of the images
    /// it trains on, without augmentation (the eval transform): how well it fits its
    /// training data. Classification only.
    #[serde(default)]
    pub train_eval_images: Option<usize>,
    /// Smallest crop area of the random-resized crop, as a fraction of the image.
    #[serde(default = "default_min_scale")]
    pub min_scale: f64,
}

/// `model:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Zoo name (`tinymbv2`, `mbv2-0.35`, ...).
    pub name: String,
    /// Width multiplier for the families that take one (`mbv2` + 0.35 = `mbv2-0.35`).
    #[serde(default)]
    pub width: Option<f64>,
    /// Dropout before the classifier (the transfer recipe's 0.1-0.2).
    #[serde(default)]
    pub dropout: f64,
    /// Start from these weights: a run dir, a checkpoint or exported net dir, or an
    /// official NetAug PyTorch `.pth`/`.pt`; the classifier is re-initialized when the
    /// class count differs.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
}

/// `run:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Training epochs after warm-up.
    pub epochs: usize,
    /// Linear warm-up epochs.
    #[serde(default = "default_warmup")]
    pub warmup_epochs: usize,
    /// Learning rate per 128 images (scaled linearly with the batch size).
    #[serde(default = "default_lr")]
    pub base_lr: f64,
    /// Learning rate the warm-up starts from; default the rate of one official GPU's batch
    /// (`base_lr` at up to 128 images), as the official scheduler. 0 ramps up from 0.
    #[serde(default)]
    pub warmup_lr: Option<f64>,
    /// Which checkpoint the exported net comes from: `best` (highest validation top-1 or
    /// mAP50, as the official code) or `last`.
    #[serde(default)]
    pub export_from: ExportFrom,
    /// Weight decay (not applied to BN parameters and biases).
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Label smoothing.
    #[serde(default = "default_smoothing")]
    pub label_smoothing: f64,
    /// Seed of the init, the data order and the sampling.
    #[serde(default)]
    pub seed: u64,
    /// Weight init: `he_fout` or `kaiming_uniform`; default as the official code
    /// (kaiming_uniform with NetAug, he_fout without).
    #[serde(default)]
    pub init: Option<netaug_model::InitKind>,
    /// Steps between reads of the running loss from the device (NaN checks, progress).
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Replicas a step's batch is split over (data parallelism in one process): each
    /// runs forward and backward on its share on threads of its own, their gradients are
    /// averaged and one optimizer step follows. `data.batch_size` stays the global batch.
    #[serde(default = "default_replicas", skip_serializing_if = "is_one")]
    pub replicas: usize,
}

/// The checkpoint a run's exported net comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFrom {
    /// The epoch with the best validation metric (official).
    #[default]
    Best,
    /// The last epoch.
    Last,
}

/// `kd:` section: soft targets from a teacher network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdConfig {
    /// The teacher: a run dir, checkpoint dir or exported net dir of any zoo net.
    pub teacher: PathBuf,
    /// Softmax temperature of both teacher and student.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight of the distillation term; the hard loss gets `1 - weight`.
    #[serde(default = "default_kd_weight")]
    pub weight: f64,
    /// With NetAug, distil the augmented net too (default: the target net only).
    #[serde(default)]
    pub on_augmented: bool,
}

/// `regularization:` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularizationConfig {
    /// Dropout before the classifier.
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Mixup with Beta(alpha, alpha).
    #[serde(default)]
    pub mixup: Option<f64>,
    /// AutoAugment (ImageNet policy).
    #[serde(default)]
    pub autoaugment: bool,
    /// RandAugment `{ops, magnitude}`.
    #[serde(default)]
    pub randaugment: Option<RandAugmentConfig>,
    /// DropBlock `{prob, size}` on the last two stages.
    #[serde(default)]
    pub dropblock: Option<netaug_model::DropBlock>,
}

/// RandAugment settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandAugmentConfig {
    /// Operations per image.
    #[serde(default = "default_ra_ops")]
    pub ops: usize,
    /// Magnitude bin, 0..=30.
    #[serde(default = "default_ra_magnitude")]
    pub magnitude: usize,
}

/// `netaug:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetAugConfig {
    /// Expand-ratio factors, first 1.0.
    pub aug_expand_list: Vec<f64>,
    /// Width factors, first 1.0.
    pub aug_width_mult_list: Vec<f64>,
    /// Weight of the augmented loss.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Stop width augmentation for the last N epochs.
    #[serde(default)]
    pub stop_aug_w_epoch: usize,
    /// Stop expand augmentation for the last N epochs.
    #[serde(default)]
    pub stop_aug_e_epoch: usize,
    /// Stop NetAug altogether (plain steps of the target net) for the last N epochs.
    #[serde(default)]
    pub stop_netaug_epoch: usize,
    /// Sort channels by importance at the start of each width-augmented epoch.
    #[serde(default = "default_true")]
    pub sort_channels: bool,
    /// Images used to re-estimate BN statistics before evaluation (official: 16,000, or
    /// every training image if fewer), in full batches.
    #[serde(default = "default_recal")]
    pub bn_recal_images: usize,
}

fn default_anchors() -> Anchors {
    Anchors::Method(AnchorMethod::Kmeans)
}
fn default_min_crop() -> f64 {
    0.5
}
fn default_score_threshold() -> f32 {
    0.005
}
fn default_nms_iou() -> f32 {
    0.45
}
fn default_max_detections() -> usize {
    100
}
fn default_min_scale() -> f64 {
    0.08
}
fn default_log_every() -> usize {
    20
}
fn default_replicas() -> usize {
    1
}
// One replica is left out of saved configs, so that runs written before replicas existed
// keep their run ids.
fn is_one(n: &usize) -> bool {
    *n == 1
}
fn default_temperature() -> f64 {
    1.0
}
fn default_kd_weight() -> f64 {
    0.5
}
fn default_ra_ops() -> usize {
    2
}
fn default_ra_magnitude() -> usize {
    9
}
fn default_warmup() -> usize {
    5
}
fn default_lr() -> f64 {
    0.025
}
fn default_wd() -> f64 {
    4e-5
}
fn default_smoothing() -> f64 {
    0.1
}
fn default_alpha() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_recal() -> usize {
    16_000
}

/// A value no config may hold: its key and why.
type Invalid = (&'static str, String);

/// `Err` naming `key` when `v` is 0.
fn positive(key: &'static str, v: usize) -> Result<(), Invalid> {
    if v == 0 {
        Err((key, "must be at least 1".to_string()))
    } else {
        Ok(())
    }
}

impl DataConfig {
    fn validate(&self) -> Result<(), Invalid> {
        check_image_size(self.image_size).map_err(|m| ("data.image_size", m))?;
        positive("data.batch_size", self.batch_size)?;
        for (key, n) in [
            ("data.val_split", self.val_split),
            ("data.train_eval_images", self.train_eval_images),
        ] {
            if let Some(n) = n {
                positive(key, n)?;
            }
        }
        if !(self.min_scale > 0.0 && self.min_scale <= 1.0) {
            return Err((
                "data.min_scale",
                format!("{} is not in (0, 1]", self.min_scale),
            ));
        }
        Ok(())
    }
}

impl RunSection {
    fn validate(&self) -> Result<(), Invalid> {
        // Bounded so that epoch and step counts never wrap (a million epochs is past any
        // run, and times any epoch's steps still fits in 64 bits).
        for (key, n) in [
            ("run.epochs", self.epochs),
            ("run.warmup_epochs", self.warmup_epochs),
        ] {
            if n > MAX_EPOCHS {
                return Err((key, format!("{n} is more than {MAX_EPOCHS} epochs")));
            }
        }
        positive("run.epochs", self.epochs + self.warmup_epochs)?;
        positive("run.log_every", self.log_every)?;
        positive("run.replicas", self.replicas)?;
        if !(self.base_lr.is_finite() && self.base_lr > 0.0) {
            return Err((
                "run.base_lr",
                format!("{} is not a positive number", self.base_lr),
            ));
        }
        if let Some(w) = self.warmup_lr
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(("run.warmup_lr", format!("{w} is not a number >= 0")));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(("run.label_smoothing", "must be in [0, 1)".into()));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(("run.weight_decay", "must be at least 0".into()));
        }
        Ok(())
    }
}

impl NetAugConfig {
    fn validate(&self) -> Result<(), Invalid> {
        netaug_model::AugFactors::new(
            self.aug_expand_list.clone(),
            self.aug_width_mult_list.clone(),
        )
        .map_err(|e| ("netaug", e.to_string()))?;
        if self.alpha.is_nan() || self.alpha < 0.0 {
            return Err(("netaug.alpha", "must be at least 0".into()));
        }
        Ok(())
    }
}

impl KdConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return Err(("kd.temperature", "must be positive".into()));
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(("kd.weight", "must be in [0, 1]".into()));
        }
        Ok(())
    }
}

impl RegularizationConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.autoaugment && self.randaugment.is_some() {
            return Err((
                "regularization",
                "autoaugment and randaugment exclude each other".into(),
            ));
        }
        if self.mixup.is_some_and(|a| a.is_nan() || a <= 0.0) {
            return Err(("regularization.mixup", "alpha must be positive".into()));
        }
        if self.randaugment.is_some_and(|ra| ra.magnitude > 30) {
            return Err((
                "regularization.randaugment.magnitude",
                "must be 0..=30".into(),
            ));
        }
        Ok(())
    }
}

impl DetectionConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if let Anchors::List(l) = &self.anchors
            && (l.len() != ANCHOR_COUNT || l.iter().flatten().any(|v| !(v.is_finite() && *v > 0.0)))
        {
            return Err((
                "detection.anchors",
                format!("expected {ANCHOR_COUNT} [w, h] pairs of positive sizes, got {l:?}"),
            ));
        }
        if let Some(s) = self.multi_scale.iter().find(|&&s| s == 0 || s % 32 != 0) {
            return Err((
                "detection.multi_scale",
                format!("{s} is not a positive multiple of 32"),
            ));
        }
        if !(self.min_crop > 0.0 && self.min_crop <= 1.0) {
            return Err((
                "detection.min_crop",
                format!("{} is not in (0, 1]", self.min_crop),
            ));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return Err((
                "detection.nms_iou",
                format!("{} is not in (0, 1]", self.nms_iou),
            ));
        }
        if !(0.0..1.0).contains(&self.score_threshold) {
            return Err((
                "detection.score_threshold",
                format!("{} is not in [0, 1)", self.score_threshold),
            ));
        }
        if self.max_detections == 0 {
            return Err(("detection.max_detections", "must be at least 1".into()));
        }
        Ok(())
    }
}

impl RunConfig {
    /// The learning rate the warm-up starts from: `run.warmup_lr`, else the rate of one
    /// official GPU's batch of up to 128 images (the official scheduler warms up from one
    /// GPU's rate to that of all GPUs; at batch 128 or less the warm-up is flat).
    pub fn warmup_lr(&self) -> f64 {
        let one_gpu = self.data.batch_size.min(128) as f64 / 128.0;
        self.run.warmup_lr.unwrap_or(self.run.base_lr * one_gpu)
    }

    /// Reads `path` and applies `overrides` (`key.path=value`, the value parsed as YAML).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        // YAML values take ~80x their text in memory: a config the size of a dataset
        // would take the machine's memory before it is refused for its content.
        if let Ok(m) = std::fs::metadata(path)
            && m.len() > MAX_CONFIG_BYTES
        {
            return Err(ConfigError::Invalid {
                file: path.display().to_string(),
                key: ".".into(),
                message: format!(
                    "{} bytes; a run config is at most {MAX_CONFIG_BYTES} (is this a config?)",
                    m.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses YAML `text` (named `file` in errors) and applies `overrides`.
    pub fn parse(text: &str, file: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        // Editors on Windows save UTF-8 with a byte-order mark, which YAML would read as
        // content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: ".".into(),
            message: e.to_string(),
        })?;
        for o in overrides {
            set(&mut value, o)?;
        }
        let config: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let (key, message) = (e.path().to_string(), e.inner().to_string());
            ConfigError::Invalid {
                file: blame(file, overrides, &key, &message),
                key,
                message,
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                file: blame(file, overrides, key, &message),
                key: key.into(),
                message,
            })?;
        Ok(config)
    }

    /// Checks the values the types cannot: each section's ranges and names, then the
    /// combinations of sections.
    fn validate(&self) -> Result<(), Invalid> {
        self.data.validate()?;
        self.run.validate()?;
        netaug_model::zoo::spec(&self.model_name().map_err(|m| ("model.width", m))?, 1, 1)
            .map_err(|e| ("model.name", e.to_string()))?;
        if let Some(n) = &self.netaug {
            n.validate()?;
        }
        if let Some(kd) = &self.kd {
            kd.validate()?;
        }
        if let Some(r) = &self.regularization {
            r.validate()?;
        }
        self.stochastic()
            .validate()
            .map_err(|m| ("regularization", m))?;
        self.validate_replicas()?;
        let detection_set = DETECTION_DATASETS.contains(&self.data.dataset.as_str());
        match &self.detection {
            Some(d) => {
                if !detection_set {
                    return Err((
                        "data.dataset",
                        format!(
                            "`{}` is not a detection dataset (detection: {})",
                            self.data.dataset,
                            DETECTION_DATASETS.join(", ")
                        ),
                    ));
                }
                d.validate()?;
                for (key, set) in [
                    ("data.val_split", self.data.val_split.is_some()),
                    (
                        "data.train_eval_images",
                        self.data.train_eval_images.is_some(),
                    ),
                ] {
                    if set {
                        return Err((
                            key,
                            "classification only (detection runs validate on the dataset's val split)"
                                .into(),
                        ));
                    }
                }
                if self.kd.is_some() || self.regularization.is_some() {
                    return Err((
                        "detection",
                        "detection runs take no kd or regularization section".into(),
                    ));
                }
            }
            None if detection_set => {
                return Err((
                    "detection",
                    format!(
                        "dataset `{}` is a detection set: add a `detection:` section",
                        self.data.dataset
                    ),
                ));
            }
            None => {}
        }
        Ok(())
    }

    /// The device of each replica: the device list, or `run.replicas` times the device.
    pub fn replica_devices(&self) -> Vec<crate::backend::DeviceName> {
        match self.device.names() {
            [one] => vec![*one; self.run.replicas],
            many => many.to_vec(),
        }
    }

    /// What a step split over replicas cannot do yet, refused with the key at fault.
    fn validate_replicas(&self) -> Result<(), Invalid> {
        let listed = self.device.names().len();
        if listed > 1 && self.run.replicas != 1 && self.run.replicas != listed {
            return Err((
                "run.replicas",
                format!(
                    "{} replicas, but device lists {listed} devices (one replica each); \
                     drop run.replicas",
                    self.run.replicas
                ),
            ));
        }
        let n = self.replica_devices().len();
        if n == 1 {
            return Ok(());
        }
        if !self.data.batch_size.is_multiple_of(n) {
            return Err((
                if listed > 1 { "device" } else { "run.replicas" },
                format!(
                    "{n} replicas cannot split data.batch_size {} evenly",
                    self.data.batch_size
                ),
            ));
        }
        let refused = [
            (
                "detection",
                self.detection.is_some(),
                "detection runs train on one replica",
            ),
            (
                "regularization.mixup",
                self.regularization
                    .as_ref()
                    .is_some_and(|r| r.mixup.is_some()),
                "mixup pairs images across the whole batch; it trains on one replica",
            ),
            (
                "regularization",
                {
                    let s = self.stochastic();
                    s.dropout > 0.0 || s.dropblock.is_some()
                },
                "dropout and DropBlock draw from the device's generator, which replicas \
                 would share; they train on one replica",
            ),
        ];
        match refused.into_iter().find(|(_, on, _)| *on) {
            Some((key, _, why)) => Err((key, format!("{why} ({n} replicas)"))),
            None => Ok(()),
        }
    }

    /// The zoo name: `model.name`, with `-<width>` appended when `model.width` is given.
    pub fn model_name(&self) -> Result<String, String> {
        match self.model.width {
            None => Ok(self.model.name.clone()),
            Some(w) if self.model.name.contains('-') => Err(format!(
                "`{}` already names a width; drop model.width ({w})",
                self.model.name
            )),
            Some(w) => Ok(format!("{}-{w}", self.model.name)),
        }
    }

    /// The weight init: `run.init`, or the official default for the method.
    pub fn init_kind(&self) -> netaug_model::InitKind {
        use netaug_model::InitKind;
        match self.run.init {
            Some(kind) => kind,
            None if self.netaug.is_some() => InitKind::KaimingUniform,
            None => InitKind::HeFout,
        }
    }

    /// The network's training-time regularizers (dropout from `regularization` or `model`).
    pub fn stochastic(&self) -> netaug_model::Stochastic {
        let reg = self.regularization.clone().unwrap_or_default();
        netaug_model::Stochastic {
            dropout: reg.dropout.unwrap_or(self.model.dropout),
            dropblock: reg.dropblock,
        }
    }

    /// The method's name as the paper's tables: baseline, netaug, kd, kd+netaug, or the
    /// regularizers in use (dropout, mixup, autoaugment, randaugment, dropblock, joined by +).
    pub fn method(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if self.kd.is_some() {
            parts.push("kd");
        }
        if self.netaug.is_some() {
            parts.push("netaug");
        }
        if let Some(r) = &self.regularization {
            let named = [
                ("dropout", r.dropout.is_some()),
                ("mixup", r.mixup.is_some()),
                ("autoaugment", r.autoaugment),
                ("randaugment", r.randaugment.is_some()),
                ("dropblock", r.dropblock.is_some()),
            ];
            parts.extend(named.iter().filter(|(_, on)| *on).map(|(n, _)| *n));
        }
        if parts.is_empty() {
            "baseline".into()
        } else {
            parts.join("+")
        }
    }

    /// The resolved configuration as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("configs serialize")
    }
}

/// Applies one `a.b.c=value` override, creating missing sections; `null` removes a key.
pub fn set(root: &mut Value, assignment: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Invalid {
        file: "--set".into(),
        key: assignment.split('=').next().unwrap_or_default().to_string(),
        message,
    };
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value".into()))?;
    let parsed: Value = serde_yaml_ng::from_str(raw).map_err(|e| bad(e.to_string()))?;
    set_value(root, key, parsed).map_err(bad)
}

/// Where an error at `key` comes from: the last `--set` that wrote the key or a section
/// holding it, or that removed the field the message names (`run: missing field
/// `epochs``); else the file.
fn blame(file: &str, overrides: &[String], key: &str, message: &str) -> String {
    let within = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
    };
    let related = |o: &&String| {
        let set = o.split('=').next().unwrap_or_default();
        let leaf = set.rsplit('.').next().unwrap_or(set);
        within(key, set) || (within(set, key) && message.contains(&format!("`{leaf}`")))
    };
    match overrides.iter().rev().find(related) {
        Some(o) => format!("--set {o}"),
        None => file.into(),
    }
}

/// Sets dotted `key` of `root` to `value`, creating missing sections; `null` removes it.
pub fn set_value(root: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key segment".into());
    }
    let mut node = root;
    for part in &parts[..parts.len() - 1] {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        node = map
            .entry(Value::String(part.to_string()))
            .or_insert(Value::Mapping(Mapping::new()));
    }
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    let map = node.as_mapping_mut().expect("just made a mapping");
    let last = Value::String(parts[parts.len() - 1].to_string());
    if value.is_null() {
        map.remove(&last);
    } else {
        map.insert(last, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_starts_from_one_official_gpus_rate() {
        let at = |batch: usize, extra: &str| {
            let text = BASE.replace("batch_size: 64", &format!("batch_size: {batch}"));
            let c = RunConfig::parse(&text, "r.yaml", &[extra.to_string()]).unwrap();
            (
                c.warmup_lr(),
                crate::schedule::CosineWithWarmup::for_run(&c, 10).lr,
            )
        };
        // base_lr 0.025 per 128 images: at 512 the warm-up climbs from 0.025 to 0.1 ...
        assert_eq!(at(512, "run.base_lr=0.025"), (0.025, 0.1));
        // ... at 128 or less it is flat, as on one official GPU ...
        assert_eq!(at(128, "run.base_lr=0.025"), (0.025, 0.025));
        assert_eq!(at(64, "run.base_lr=0.025"), (0.0125, 0.0125));
        // ... and `warmup_lr: 0` ramps up from 0; a negative start is refused.
        assert_eq!(at(512, "run.warmup_lr=0").0, 0.0);
        let bad = RunConfig::parse(BASE, "r.yaml", &["run.warmup_lr=-1".into()]);
        assert!(bad.unwrap_err().to_string().contains("run.warmup_lr"));
    }

    const BASE: &str = "
data: {dataset: fashion-mnist, image_size: 32, batch_size: 64}
model: {name: tinymbv2}
run: {epochs: 3, seed: 1}
netaug:
  aug_expand_list: [1.0, 1.6]
  aug_width_mult_list: [1.0, 1.8]
  stop_aug_w_epoch: 1
";

    #[test]
    fn parses_with_defaults() {
        let c = RunConfig::parse(BASE, "t.yaml", &[]).unwrap();
        assert_eq!(c.run.base_lr, 0.025);
        assert_eq!(c.run.warmup_epochs, 5);
        assert_eq!(c.device.to_string(), "cpu");
        let n = c.netaug.unwrap();
        assert_eq!(
            (n.alpha, n.stop_aug_w_epoch, n.sort_channels),
            (1.0, 1, true)
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_path_and_file() {
        let e = RunConfig::parse(&BASE.replace("seed: 1", "sead: 1"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml: run.sead: unknown field `sead`"),
            "{e}"
        );
        let e = RunConfig::parse(&BASE.replace("epochs: 3", "epochs: three"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml: run.epochs:"), "{e}");
        let e = RunConfig::parse(&BASE.replace("[1.0, 1.6]", "[1.0, x]"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("netaug.aug_expand_list[1]"), "{e}");
    }

    #[test]
    fn errors_a_set_caused_name_the_set() {
        let bad = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::parse(BASE, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        // An empty value removes the key: the missing field is the --set's doing.
        let e = bad(&["run.epochs="]);
        assert!(
            e.starts_with("--set run.epochs=: run: missing field `epochs`"),
            "{e}"
        );
        let e = bad(&["data.image_size=4"]);
        assert!(
            e.starts_with("--set data.image_size=4: data.image_size:"),
            "{e}"
        );
        let e = bad(&["run={epochs: 0, warmup_epochs: 0}"]);
        assert!(
            e.starts_with("--set run={epochs: 0, warmup_epochs: 0}: run.epochs: must be"),
            "{e}"
        );
        // A --set elsewhere in the section is not blamed for the file's error.
        let sets = vec!["run.seed=3".to_string()];
        let e = RunConfig::parse(&BASE.replace("epochs: 3", "epochs: x"), "t.yaml", &sets)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.yaml: run.epochs:"), "{e}");
        // Huge epoch counts name their own key, not a wrapped sum.
        let e = bad(&["run.warmup_epochs=18446744073709551615"]);
        assert!(
            e.contains("run.warmup_epochs: 18446744073709551615 is more than"),
            "{e}"
        );
    }

    #[test]
    fn a_config_file_over_a_mebibyte_is_refused_before_it_is_parsed() {
        let path = std::env::temp_dir().join(format!("netaug-big-{}.yaml", std::process::id()));
        let list = "1.0, ".repeat(300_000);
        std::fs::write(&path, format!("{BASE}x: [{list}]\n")).unwrap();
        let e = RunConfig::load(&path, &[]).unwrap_err().to_string();
        assert!(e.contains("a run config is at most 1048576"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_byte_order_mark_is_read_past() {
        let with_bom = format!("\u{feff}{BASE}");
        assert_eq!(
            RunConfig::parse(&with_bom, "t.yaml", &[]).unwrap(),
            RunConfig::parse(BASE, "t.yaml", &[]).unwrap()
        );
    }

    #[test]
    fn image_sizes_outside_8_to_2048_are_refused() {
        let bad = |size: &str| {
            let sets = vec![format!("data.image_size={size}")];
            RunConfig::parse(BASE, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("0").contains("data.image_size: 0 is below 8 pixels"));
        assert!(bad("100000").contains("data.image_size: 100000 is above 2048 pixels"));
        for ok in ["8", "2048"] {
            let sets = vec![format!("data.image_size={ok}")];
            assert!(RunConfig::parse(BASE, "t.yaml", &sets).is_ok(), "{ok}");
        }
    }

    #[test]
    fn detection_sections_are_checked() {
        let det = BASE.replace("fashion-mnist", "coco") + "detection: {multi_scale: [64, 96]}\n";
        let c = RunConfig::parse(&det, "t.yaml", &[]).unwrap();
        let d = c.detection.unwrap();
        assert_eq!(
            (d.anchors, d.min_crop, d.max_detections),
            (Anchors::Method(AnchorMethod::Kmeans), 0.5, 100)
        );
        let bad = |sets: &[&str], text: &str| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::parse(text, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&["detection.multi_scale=[70]"], &det).contains("detection.multi_scale: 70"));
        assert!(bad(&["detection.anchors=x"], &det).contains("unknown anchors `x`"));
        assert!(bad(&["detection.anchors=[[1, 2]]"], &det).contains("expected 9 [w, h]"));
        let nine =
            "detection.anchors=[[4,5],[6,7],[8,9],[10,11],[12,13],[14,15],[16,17],[18,19],[20,21]]";
        let c = RunConfig::parse(&det, "t.yaml", &[nine.into()]).unwrap();
        let d = c.detection.clone().unwrap();
        assert_eq!(
            d.anchors,
            Anchors::List(
                (0..9)
                    .map(|i| [4.0 + 2.0 * i as f32, 5.0 + 2.0 * i as f32])
                    .collect()
            )
        );
        assert_eq!(RunConfig::parse(&c.to_yaml(), "r.yaml", &[]).unwrap(), c);
        assert!(bad(&["detection.min_crop=0"], &det).contains("detection.min_crop"));
        assert!(bad(&["data.dataset=fashion-mnist"], &det).contains("not a detection dataset"));
        let e = bad(&[], &BASE.replace("fashion-mnist", "voc"));
        assert!(e.contains("add a `detection:` section"), "{e}");
        let yaml = RunConfig::parse(&det, "t.yaml", &[]).unwrap().to_yaml();
        let again = RunConfig::parse(&yaml, "r.yaml", &[]).unwrap();
        assert!(again.detection.is_some());
    }

    #[test]
    fn overrides_set_create_and_remove_keys() {
        let sets = [
            "run.base_lr=0.1",
            "data.root=/x",
            "netaug=null",
            "device=tch-cpu",
        ]
        .map(String::from);
        let c = RunConfig::parse(BASE, "t.yaml", &sets).unwrap();
        assert_eq!(c.run.base_lr, 0.1);
        assert_eq!(c.data.root.as_deref(), Some(Path::new("/x")));
        assert!(c.netaug.is_none());
        assert_eq!(c.device.to_string(), "tch-cpu");
        let e = RunConfig::parse(BASE, "t.yaml", &["run.bogus=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.bogus: unknown field `bogus`"), "{e}");
        assert!(RunConfig::parse(BASE, "t.yaml", &["novalue".into()]).is_err());
        // The resolved YAML reads back to the same config.
        let again = RunConfig::parse(&c.to_yaml(), "r.yaml", &[]).unwrap();
        assert_eq!(again, c);
    }
}
