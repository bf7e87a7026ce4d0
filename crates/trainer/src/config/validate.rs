//! The checks the types cannot make: ranges, names and combinations of sections, each
//! refused with the dotted key at fault.

use super::RunConfig;
use super::schema::*;

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

/// Loader threads a config may ask for, at most (0 is one per core).
pub const MAX_WORKERS: usize = 256;

/// A value no config may hold: its key and why.
pub(super) type Invalid = (&'static str, String);

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
            ("data.train_subset", self.train_subset),
            ("data.eval_subset", self.eval_subset),
        ] {
            if let Some(n) = n {
                positive(key, n)?;
            }
        }
        if self.workers > MAX_WORKERS {
            return Err((
                "data.workers",
                format!("{} is above {MAX_WORKERS} loader threads", self.workers),
            ));
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

/// The largest NetAug factor a config may ask for: the paper's lists stop at 3.0, and a
/// supernet this many times as wide already holds 256 times the weights of a layer.
pub const MAX_AUG_FACTOR: f64 = 16.0;

impl NetAugConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, list) in [
            ("netaug.aug_expand_list", &self.aug_expand_list),
            ("netaug.aug_width_mult_list", &self.aug_width_mult_list),
        ] {
            if let Some(f) = list.iter().find(|f| **f > MAX_AUG_FACTOR) {
                return Err((key, format!("{f} is above {MAX_AUG_FACTOR}")));
            }
        }
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
    /// Checks the values the types cannot: each section's ranges and names, then the
    /// combinations of sections.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
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
}
