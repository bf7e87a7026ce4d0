//! Detection inference and scoring: the active detector on an evaluation loader, its
//! outputs decoded (score threshold, per-class NMS, max detections) and mapped back to
//! the original images' pixels as COCO results, then scored with netaug-deteval.

use burn::tensor::{Device, Tensor, TensorData};
use netaug_data::detection::DetLoader;
use netaug_detect::decode::{DecodeOptions, ScaleOutput, decode};
use netaug_deteval::Detection;
use netaug_deteval::voc::Metric;
use netaug_model::{Detector, Mode};

use super::data::GroundTruth;
use super::loss::detector_geometry;
use crate::error::TrainError;
use crate::observer::Observer;

/// mAP of a detector on an evaluation split (percent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetScore {
    /// mAP at IoU 0.5 (COCO: AP50; VOC: the devkit's 11-point mAP).
    pub map50: f64,
    /// mAP over IoU 0.5:0.95 (pycocotools' AP).
    pub map: f64,
}

/// The detections of the active sub-network of `det` (BN in eval mode) on every image of
/// `loader`, in the images' own pixels, category ids from the detector's labels.
pub fn predict(
    det: &Detector,
    loader: &DetLoader,
    device: &Device,
    options: &DecodeOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<Detection>, TrainError> {
    let geometry = detector_geometry(&det.labels().anchors);
    let classes = det.classes();
    let categories = &det.labels().categories;
    let mut found = Vec::new();
    observer.phase("detect", loader.batches());
    for (b, batch) in loader.epoch(0).enumerate() {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                observer.finish_phase();
                return Err(e.into());
            }
        };
        let [n, _, h, w] = batch.shape;
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
        let outputs = det.forward(x.detach(), Mode::Eval);
        // One read per scale for the whole batch.
        let host: Vec<(Vec<f32>, [usize; 4])> = outputs
            .into_iter()
            .map(|t| {
                let dims = t.dims();
                let data = t.into_data().convert::<f32>().try_to_vec::<f32>();
                data.map(|d| (d, dims))
                    .map_err(|e| TrainError::setting("device", format!("{e:?}")))
            })
            .collect::<Result<_, _>>()?;
        for i in 0..n {
            let scales: Vec<ScaleOutput> = host
                .iter()
                .zip(&geometry)
                .map(|((data, [_, c, rows, cols]), geo)| {
                    let per_image = c * rows * cols;
                    ScaleOutput {
                        stride: geo.stride,
                        anchors: geo.anchors,
                        rows: *rows,
                        cols: *cols,
                        data: &data[i * per_image..(i + 1) * per_image],
                    }
                })
                .collect();
            let (ow, oh) = batch.original[i];
            let (sx, sy) = (ow as f64 / w as f64, oh as f64 / h as f64);
            for d in decode(&scales, classes, (w, h), options) {
                let (x1, y1) = (d.bbox.x1 as f64 * sx, d.bbox.y1 as f64 * sy);
                let (x2, y2) = (d.bbox.x2 as f64 * sx, d.bbox.y2 as f64 * sy);
                found.push(Detection {
                    image_id: batch.ids[i],
                    category_id: categories.get(d.class).map_or(d.class as u64 + 1, |c| c.id),
                    bbox: [x1, y1, x2 - x1, y2 - y1],
                    score: d.score as f64,
                });
            }
        }
        observer.advance(b + 1, None);
    }
    observer.finish_phase();
    Ok(found)
}

/// mAP50 and mAP of `detections` against `gt`.
pub fn score(gt: &GroundTruth, detections: &[Detection]) -> Result<DetScore, TrainError> {
    let eval = |e: netaug_deteval::EvalError| TrainError::file("evaluation", e);
    let coco = match gt {
        GroundTruth::Coco(c) | GroundTruth::Voc { coco: c, .. } => {
            netaug_deteval::coco::evaluate(c, detections).map_err(eval)?
        }
    };
    // pycocotools reports -1 where nothing could be averaged.
    let pct = |v: f64| if v < 0.0 { 0.0 } else { 100.0 * v };
    let map50 = match gt {
        GroundTruth::Coco(_) => pct(coco.0[1]),
        GroundTruth::Voc { voc, .. } => {
            let r = netaug_deteval::voc::evaluate(voc, detections, Metric::ElevenPoint)
                .map_err(eval)?;
            pct(r.map50)
        }
    };
    Ok(DetScore {
        map50,
        map: pct(coco.0[0]),
    })
}
