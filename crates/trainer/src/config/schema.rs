//! The config's sections and their keys, as serde reads and writes them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::defaults::*;

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

/// The anchors of a `detection` section that names none: k-means on its training boxes.
fn default_anchors() -> Anchors {
    Anchors::Method(AnchorMethod::Kmeans)
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

impl DataConfig {
    /// The data section for evaluating on `dataset` at `image_size`: every other setting
    /// at its default.
    pub fn evaluation(dataset: &str, image_size: usize, batch_size: usize) -> Self {
        Self {
            dataset: dataset.to_string(),
            root: None,
            image_size,
            batch_size,
            workers: 0,
            train_subset: None,
            eval_subset: None,
            val_split: None,
            train_eval_images: None,
            min_scale: default_min_scale(),
        }
    }
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
