//! The training loop of one detection run, shaped as the classification loop
//! ([`crate::run`]): epochs of baseline or NetAug steps under the cosine schedule, BN
//! re-calibration and evaluation (mAP50, mAP) of the target detector after each epoch,
//! `checkpoints/{latest,best}`, `metrics.jsonl`, `summary.json` and the exported target
//! detector. Resuming gives the same run as never stopping, for the same reasons.

use std::path::Path;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use netaug_data::detection::{DetBatch, DetLoader, DetTrainTransform, DetTransform};
use netaug_data::{LoaderConfig, Normalize};
use netaug_detect::anchors::{kmeans, yolov3_scaled};
use netaug_detect::assign::{Target, assign};
use netaug_detect::decode::DecodeOptions;
use netaug_detect::geometry::Corners;
use netaug_model::detector::{DetLabels, STRIDES};
use netaug_model::{Active, AugFactors, Detector, Mode, Profile, zoo};

use super::data::{self, DetData};
use super::eval::{predict, score};
use super::loss::{detector_geometry, yolo_loss};
use crate::checkpoint::{self, TrainState};
use crate::config::{Anchors, DetectionConfig, RunConfig};
use crate::error::TrainError;
use crate::layout::TrainOptions;
use crate::ledger::{Ledger, calibrate_phase, open_run, running_loss};
use crate::metrics::{DetEpochMetrics, Status, Summary};
use crate::observer::{Observer, Running};
use crate::sampling::{AugMode, mix, with_sampled};
use crate::schedule::CosineWithWarmup;
use crate::{backend, optim};

/// Anchors per output scale (YOLOv3's 3).
pub const ANCHORS_PER_SCALE: usize = 3;

/// Trains the detection run `config` (it has a `detection:` section) into `out` (the
/// folder locked by [`crate::train`]).
pub(crate) fn train(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    let mut run = DetRun::prepare(config, out, options)?;
    match run.execute(observer) {
        Ok(summary) => Ok(summary),
        Err(e) => Err(run
            .ledger
            .stopped(e, |status, why| run.summary(status, why))),
    }
}

/// The decoding settings of `d`.
pub fn decode_options(d: &DetectionConfig) -> DecodeOptions {
    DecodeOptions {
        score_threshold: d.score_threshold,
        nms_iou: d.nms_iou,
        max_detections: d.max_detections,
    }
}

/// The anchors of a run: the config's list (sorted by area), k-means (1 - IoU) on the training boxes
/// scaled to the training resolution, or YOLOv3's set scaled; k-means falls back to
/// YOLOv3's with fewer than nine distinct box shapes.
pub fn anchors(d: &DetectionConfig, data: &DetData, size: usize) -> Vec<(f32, f32)> {
    let n = ANCHORS_PER_SCALE * STRIDES.len();
    match &d.anchors {
        Anchors::List(list) => {
            // Smallest first, so that each stride gets the anchors of its size.
            let mut a: Vec<(f32, f32)> = list.iter().map(|&[w, h]| (w, h)).collect();
            a.sort_by(|x, y| (x.0 * x.1).total_cmp(&(y.0 * y.1)));
            return a;
        }
        Anchors::Named(name) if name == "kmeans" => {
            let sizes: Vec<(f32, f32)> = data
                .train
                .iter()
                .filter(|s| s.width > 0 && s.height > 0)
                .flat_map(|s| {
                    let (sx, sy) = (size as f32 / s.width as f32, size as f32 / s.height as f32);
                    s.boxes
                        .iter()
                        .map(move |b| ((b.x2 - b.x1) * sx, (b.y2 - b.y1) * sy))
                })
                .collect();
            let found = kmeans(&sizes, n, 100);
            if found.len() == n {
                return found;
            }
            tracing::warn!(
                "k-means found {} anchors in {} training boxes; using YOLOv3's",
                found.len(),
                sizes.len()
            );
        }
        Anchors::Named(_) => {}
    }
    yolov3_scaled(size)
}

/// What one epoch of training steps measured.
struct EpochTotals {
    loss: f64,
    images: usize,
    seconds: f64,
}

struct DetRun {
    config: RunConfig,
    detection: DetectionConfig,
    ledger: Ledger,
    device: Device,
    det: Option<Detector>,
    optimizer: Option<ModuleOptimizer>,
    train: DetLoader,
    eval: DetLoader,
    recal: Option<DetLoader>,
    gt: data::GroundTruth,
    schedule: CosineWithWarmup,
    total_epochs: usize,
    metrics: Vec<DetEpochMetrics>,
    profile: Profile,
    model: String,
}

impl DetRun {
    fn prepare(config: &RunConfig, out: &Path, options: &TrainOptions) -> Result<Self, TrainError> {
        let started = Instant::now();
        let detection = config
            .detection
            .clone()
            .ok_or_else(|| TrainError::setting("detection", "missing"))?;
        let device = backend::device(&config.device)?.autodiff();
        let data = data::open(&config.data)?;
        let classes = data.categories.len();
        let model = config
            .model_name()
            .map_err(|m| TrainError::setting("model.width", m))?;
        let spec = zoo::spec(&model, classes.max(1), 3)
            .map_err(|e| TrainError::setting("model.name", e.to_string()))?;
        let factors = match &config.netaug {
            Some(n) => AugFactors::new(n.aug_expand_list.clone(), n.aug_width_mult_list.clone())?,
            None => AugFactors::none(),
        };
        let init = config
            .init_kind()
            .map_err(|(k, m)| TrainError::setting(k, m))?;
        let size = config.data.image_size;
        let labels = DetLabels {
            anchors: anchors(&detection, &data, size),
            categories: data.categories.clone(),
        };

        let norm = Normalize::imagenet();
        let mut transform = DetTrainTransform::new(size);
        transform.min_scale = detection.min_crop;
        if !detection.multi_scale.is_empty() {
            transform.sizes = detection.multi_scale.clone();
        }
        let mut train_cfg = LoaderConfig::train(config.data.batch_size, config.run.seed);
        train_cfg.workers = config.data.workers;
        let mut eval_cfg = LoaderConfig::eval(config.data.batch_size);
        eval_cfg.workers = config.data.workers;
        let recal = match &config.netaug {
            Some(n) if n.bn_recal_images > 0 => {
                // Calibrated at the evaluation size, on augmented training images.
                let mut t = transform.clone();
                t.sizes = vec![size];
                Some(DetLoader::new(
                    crate::data::subset(&data.train, Some(n.bn_recal_images)),
                    DetTransform::Train(t),
                    norm.clone(),
                    eval_cfg.clone(),
                )?)
            }
            _ => None,
        };
        let train = DetLoader::new(
            data.train,
            DetTransform::Train(transform),
            norm.clone(),
            train_cfg,
        )?;
        let steps = train.batches();
        if steps == 0 {
            return Err(TrainError::setting(
                "data.batch_size",
                format!(
                    "{} is larger than the {} training images",
                    config.data.batch_size,
                    train.len()
                ),
            ));
        }
        let eval = DetLoader::new(data.eval, DetTransform::Eval(size), norm, eval_cfg)?;

        let mut det = Detector::new(
            &spec,
            &factors,
            classes,
            ANCHORS_PER_SCALE,
            init,
            config.run.seed,
            &device,
        );
        det.set_labels(labels)?;
        let mut optimizer = optim::optimizer(config.run.weight_decay);
        let mut state = TrainState::default();
        let mut metrics = Vec::new();

        if let Some(r) = open_run(config, out, options.resume)? {
            det = Detector::load(&r.dir, &device)?;
            optimizer = checkpoint::load_optimizer(&r.dir, optimizer)?;
            (state, metrics) = (r.state, r.metrics);
        }
        det.set_active(Active::Min);
        let profile = det.profile(size);
        let schedule = CosineWithWarmup::for_run(config, steps);
        Ok(Self {
            config: config.clone(),
            detection,
            ledger: Ledger::new(out.to_path_buf(), state, started),
            device,
            det: Some(det),
            optimizer: Some(optimizer),
            train,
            eval,
            recal,
            gt: data.gt,
            schedule,
            total_epochs: config.run.warmup_epochs + config.run.epochs,
            metrics,
            profile,
            model,
        })
    }

    fn execute(&mut self, observer: &mut dyn Observer) -> Result<Summary, TrainError> {
        for epoch in self.ledger.state.epochs_done..self.total_epochs {
            self.epoch(epoch, observer)?;
        }
        let exported = match self.ledger.export_source(self.config.run.export_from) {
            Some(dir) => Detector::load(&dir, &self.device)?.export(),
            None => {
                let det = self.det.as_mut().expect("the loop owns the detector");
                det.set_active(Active::Min);
                det.export()
            }
        };
        self.ledger.export(&exported)?;
        let summary = self.summary(Status::Done, None);
        self.ledger.write_summary(&summary)?;
        Ok(summary)
    }

    fn epoch(&mut self, epoch: usize, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let epoch_start = Instant::now();
        let mode = self
            .config
            .netaug
            .as_ref()
            .and_then(|n| AugMode::of(n, epoch, self.total_epochs));
        let mut det = self.det.take().expect("the loop owns the detector");
        if mode == Some(AugMode::Random)
            && self.config.netaug.as_ref().is_some_and(|n| n.sort_channels)
        {
            det.sort_channels();
        }
        let (mut det, result) = self.train_epoch(det, epoch, mode, observer);
        let totals = match result {
            Ok(t) => t,
            Err(e) => {
                self.det = Some(det);
                return Err(e);
            }
        };
        det.set_active(Active::Min);
        let scored = self.recalibrate(&det, observer).and_then(|()| {
            let options = decode_options(&self.detection);
            let found = predict(&det, &self.eval, &self.device, &options, observer)?;
            score(&self.gt, &found)
        });
        self.det = Some(det);
        let val = scored?;

        self.ledger.record_training(totals.images, totals.seconds);
        let m = DetEpochMetrics {
            epoch: epoch + 1,
            train_loss: totals.loss,
            val_map50: val.map50,
            val_map: val.map,
            lr: self.schedule.at(self.ledger.state.step.saturating_sub(1)),
            seconds: epoch_start.elapsed().as_secs_f64(),
            images_per_second: totals.images as f64 / totals.seconds.max(1e-9),
        };
        self.metrics.push(m.clone());
        let det = self.det.as_ref().expect("the loop owns the detector");
        self.ledger.end_epoch(
            epoch,
            &self.metrics,
            m.val_map50,
            |s| &mut s.best_val_map50,
            det,
            self.optimizer.as_ref(),
        )?;
        observer.det_epoch(&m, self.total_epochs);
        Ok(())
    }

    /// One epoch of steps; the detector comes back with the result.
    fn train_epoch(
        &mut self,
        mut det: Detector,
        epoch: usize,
        mode: Option<AugMode>,
        observer: &mut dyn Observer,
    ) -> (Detector, Result<EpochTotals, TrainError>) {
        let device = self.device.clone();
        let seed = self.config.run.seed;
        let log_every = self.config.run.log_every;
        let steps = self.train.batches();
        let anchors = det.labels().anchors.clone();
        let geometry = detector_geometry(&anchors);
        let classes = det.classes();
        let mut loss_sum = Tensor::<1>::zeros([1], &device.clone().inner());
        let mut images = 0usize;
        let start = Instant::now();
        observer.phase(&format!("epoch {}/{}", epoch + 1, self.total_epochs), steps);
        for (i, batch) in self.train.epoch(epoch as u64).enumerate() {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    observer.finish_phase();
                    return (det, Err(e.into()));
                }
            };
            let step_seed = mix(seed, self.ledger.state.step as u64);
            device.seed(step_seed);
            let n = batch.ids.len();
            let targets = targets_of(&batch, &anchors);
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), &device);

            det.set_active(Active::Min);
            let target_loss = yolo_loss(
                &det.forward(x.clone(), Mode::Train),
                &geometry,
                &targets,
                classes,
            );
            let total = match (mode, &self.config.netaug) {
                (Some(mode), Some(n)) => {
                    with_sampled(mode, step_seed, |a| {
                        det.set_active(a);
                    });
                    let aug = yolo_loss(&det.forward(x, Mode::Train), &geometry, &targets, classes);
                    det.set_active(Active::Min);
                    target_loss.clone() + aug.mul_scalar(n.alpha)
                }
                _ => target_loss.clone(),
            };
            let grads = GradientsParams::from_grads(total.backward(), &det);
            let lr = self.schedule.at(self.ledger.state.step);
            let optimizer = self
                .optimizer
                .as_mut()
                .expect("the loop owns the optimizer");
            det = optimizer.step(lr, det, grads);
            loss_sum = loss_sum + target_loss.inner().mul_scalar(n as f64);
            images += n;
            self.ledger.state.step += 1;
            let running = if (i + 1) % log_every == 0 || i + 1 == steps {
                let loss = match running_loss(&loss_sum, images, epoch + 1, i + 1) {
                    Ok(loss) => loss,
                    Err(e) => {
                        observer.finish_phase();
                        return (det, Err(e));
                    }
                };
                Some(Running {
                    loss,
                    top1: None,
                    images_per_second: images as f64 / start.elapsed().as_secs_f64().max(1e-9),
                })
            } else {
                None
            };
            observer.advance(i + 1, running);
            if let Some(signal) = crate::interrupt::requested() {
                observer.finish_phase();
                return (det, Err(TrainError::Interrupted(signal)));
            }
        }
        observer.finish_phase();
        let seconds = start.elapsed().as_secs_f64();
        let loss = loss_sum.into_scalar::<f64>() / images.max(1) as f64;
        (
            det,
            Ok(EpochTotals {
                loss,
                images,
                seconds,
            }),
        )
    }

    /// Re-estimates the target detector's BN statistics on the fixed training subset.
    fn recalibrate(&self, det: &Detector, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let Some(loader) = &self.recal else {
            return Ok(());
        };
        let device = self.device.clone();
        calibrate_phase(
            observer,
            loader.batches(),
            loader.epoch(u64::MAX),
            |b| Tensor::<4>::from_data(TensorData::new(b.images, b.shape), &device),
            |batches| {
                det.calibrate_bn(batches);
            },
        )
    }

    fn summary(&self, status: Status, error: Option<String>) -> Summary {
        let last = self.metrics.last();
        Summary {
            run_id: self
                .ledger
                .out
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            dataset: self.config.data.dataset.clone(),
            model: self.model.clone(),
            resolution: self.config.data.image_size,
            method: self.config.method(),
            epochs: self.total_epochs,
            train_images: Some(self.train.len() as u64),
            seed: self.config.run.seed,
            device: self.config.device.clone(),
            params: self.profile.params,
            macs: self.profile.macs,
            best_val_top1: None,
            best_epoch: self.ledger.state.best_epoch,
            final_val_top1: None,
            final_val_top5: None,
            best_val_map50: Some(self.ledger.state.best_val_map50),
            final_val_map50: Some(last.map_or(0.0, |m| m.val_map50)),
            final_val_map: Some(last.map_or(0.0, |m| m.val_map)),
            wall_seconds: self.ledger.wall_seconds(),
            images_per_second: self.ledger.images_per_second(),
            status,
            error,
        }
    }
}

/// The YOLOv3 targets of each image of `batch`.
pub fn targets_of(batch: &DetBatch, anchors: &[(f32, f32)]) -> Vec<Vec<Target>> {
    let size = (batch.shape[3], batch.shape[2]);
    batch
        .boxes
        .iter()
        .map(|boxes| {
            let b: Vec<(Corners, usize)> = boxes
                .iter()
                .map(|b| {
                    let c = Corners {
                        x1: b.x1,
                        y1: b.y1,
                        x2: b.x2,
                        y2: b.y2,
                    };
                    (c, b.class as usize)
                })
                .collect();
            assign(&b, anchors, &STRIDES, size)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netaug_data::detection::{BBox, DetSample};

    fn config(anchors: &str) -> DetectionConfig {
        let text = format!(
            "data: {{dataset: coco, root: /x, image_size: 64, batch_size: 8}}
model: {{name: tinymbv2}}
run: {{epochs: 1}}
detection: {{anchors: {anchors}}}
"
        );
        RunConfig::parse(&text, "t.yaml", &[])
            .unwrap()
            .detection
            .unwrap()
    }

    #[test]
    fn anchors_come_from_the_list_k_means_or_yolov3() {
        // Nine box shapes at 128 px, scaled to 64 px by k-means.
        let boxes = (1..=9)
            .map(|i| BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 8.0 * i as f32,
                y2: 6.0 * i as f32,
                class: 0,
                difficult: false,
                crowd: false,
            })
            .collect();
        let data = DetData {
            categories: Vec::new(),
            train: vec![DetSample {
                image: "x.png".into(),
                id: 1,
                width: 128,
                height: 128,
                boxes,
            }],
            eval: Vec::new(),
            gt: data::GroundTruth::Coco(Default::default()),
        };
        let k = anchors(&config("kmeans"), &data, 64);
        let want: Vec<(f32, f32)> = (1..=9).map(|i| (4.0 * i as f32, 3.0 * i as f32)).collect();
        assert_eq!(k, want);
        assert_eq!(anchors(&config("yolov3"), &data, 64), yolov3_scaled(64));
        let list = "[[9,9],[1,1],[2,2],[3,3],[4,4],[5,5],[6,6],[7,7],[8,8]]";
        let l = anchors(&config(list), &data, 64);
        assert_eq!(l, (1..=9).map(|i| (i as f32, i as f32)).collect::<Vec<_>>());
    }
}
