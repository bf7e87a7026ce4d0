//! Detection as a [`Task`]: COCO or Pascal VOC (or any set in their layouts), a
//! YOLOv3-style detector on a zoo backbone, the YOLOv3 loss, and mAP50 / mAP@[.5:.95]
//! evaluation of the target detector; the anchors of a run and its decoding settings.

use burn::tensor::{Device, Tensor, TensorData};
use netaug_data::DataError;
use netaug_data::detection::{DetBatch, DetLoader, DetTrainTransform, DetTransform};
use netaug_data::{LoaderConfig, Normalize};
use netaug_detect::anchors::{kmeans, yolov3_scaled};
use netaug_detect::assign::{Target, assign};
use netaug_detect::decode::DecodeOptions;
use netaug_detect::geometry::Corners;
use netaug_model::detector::{DetLabels, STRIDES};
use netaug_model::{Detector, Mode, zoo};

use super::data::{self, DetData};
use super::eval::{DetScore, predict, score};
use super::loss::{detector_geometry, yolo_loss};
use crate::config::{AnchorMethod, Anchors, DetectionConfig, RunConfig};
use crate::error::TrainError;
use crate::metrics::{DetEpochMetrics, Metrics, Selection};
use crate::observer::Observer;
use crate::task::{Calibration, EpochTotals, Scored, Task, supernet_settings};

/// Anchors per output scale (YOLOv3's 3).
pub const ANCHORS_PER_SCALE: usize = 3;

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
        Anchors::Method(AnchorMethod::Kmeans) => {
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
        Anchors::Method(AnchorMethod::Yolov3) => {}
    }
    yolov3_scaled(size)
}

/// A detection run's data, ground truth and the anchors its steps assign boxes to.
pub(crate) struct Detection {
    detection: DetectionConfig,
    train: DetLoader,
    eval: DetLoader,
    recal: Option<DetLoader>,
    gt: data::GroundTruth,
    anchors: Vec<(f32, f32)>,
    classes: usize,
}

/// A training batch on the device, with its YOLOv3 targets.
pub(crate) struct Input {
    images: Tensor<4>,
    targets: Vec<Vec<Target>>,
}

impl Task for Detection {
    type Net = Detector;
    type Batch = DetBatch;
    type Input = Input;
    type Scores = DetScore;
    type Line = DetEpochMetrics;

    fn open(config: &RunConfig, device: &Device) -> Result<(Self, Detector), TrainError> {
        let detection = config
            .detection
            .clone()
            .ok_or_else(|| TrainError::setting("detection", "missing"))?;
        let data = data::open(&config.data)?;
        let classes = data.categories.len();
        let (model, factors, init) = supernet_settings(config)?;
        let spec = zoo::spec(&model, classes.max(1), 3)
            .map_err(|e| TrainError::setting("model.name", e.to_string()))?;
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
        let eval = DetLoader::new(data.eval, DetTransform::Eval(size), norm, eval_cfg)?;

        let mut det = Detector::new(
            &spec,
            &factors,
            classes,
            ANCHORS_PER_SCALE,
            init,
            config.run.seed,
            device,
        );
        det.set_labels(labels)?;
        let task = Self {
            detection,
            train,
            eval,
            recal,
            gt: data.gt,
            anchors: Vec::new(),
            classes,
        };
        Ok((task, det))
    }

    fn configure(&mut self, det: &mut Detector) -> Result<(), TrainError> {
        // The anchors the detector was built (or saved) with are the ones targets use.
        self.anchors = det.labels().anchors.clone();
        self.classes = det.classes();
        Ok(())
    }

    fn steps(&self) -> usize {
        self.train.batches()
    }

    fn train_images(&self) -> usize {
        self.train.len()
    }

    fn batches(&self, epoch: usize) -> impl Iterator<Item = Result<DetBatch, DataError>> {
        self.train.epoch(epoch as u64)
    }

    fn input(&self, batch: DetBatch, device: &Device) -> (Input, usize) {
        let n = batch.ids.len();
        let targets = targets_of(&batch, &self.anchors);
        let images = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
        (Input { images, targets }, n)
    }

    fn loss(&self, det: &Detector, input: &Input, _augmented: bool) -> Scored {
        let outputs = det.forward(input.images.clone(), Mode::Train);
        Scored {
            loss: yolo_loss(
                &outputs,
                &detector_geometry(&self.anchors),
                &input.targets,
                self.classes,
            ),
            hits: None,
        }
    }

    fn calibration(&self, device: &Device) -> Option<(usize, Calibration<'_>)> {
        let loader = self.recal.as_ref()?;
        let device = device.clone();
        let batches = loader.epoch(u64::MAX).map(move |b| {
            b.map(|b| Tensor::<4>::from_data(TensorData::new(b.images, b.shape), &device))
        });
        Some((loader.batches(), Box::new(batches)))
    }

    fn evaluate(
        &self,
        det: &Detector,
        device: &Device,
        observer: &mut dyn Observer,
    ) -> Result<DetScore, TrainError> {
        let options = decode_options(&self.detection);
        let found = predict(det, &self.eval, device, &options, observer)?;
        score(&self.gt, &found)
    }

    fn line(
        &self,
        epoch: usize,
        train: &EpochTotals,
        val: DetScore,
        lr: f64,
        seconds: f64,
    ) -> DetEpochMetrics {
        DetEpochMetrics {
            epoch,
            train_loss: train.loss,
            val_map50: val.map50,
            val_map: val.map,
            lr,
            seconds,
            images_per_second: train.images_per_second(),
        }
    }

    const SELECTION: Selection = Selection::higher("val_map50");

    fn final_metrics(last: Option<&DetEpochMetrics>) -> Metrics {
        Metrics::from([
            ("final_val_map50".into(), last.map_or(0.0, |l| l.val_map50)),
            ("final_val_map".into(), last.map_or(0.0, |l| l.val_map)),
        ])
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
