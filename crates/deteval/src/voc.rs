//! Pascal VOC detection AP as the devkit's `voc_eval.py`: per class, detections in
//! confidence order, a detection is a true positive when its best-overlapping ground
//! truth box (IoU with the devkit's +1 pixel convention) overlaps more than 0.5, is not
//! `difficult` and is not taken yet; detections on difficult boxes count neither way.
//! AP is the VOC2007 11-point interpolation or the VOC2010+ area under the precision
//! envelope.

use std::collections::BTreeMap;

use crate::Detection;
use crate::error::EvalError;

/// A ground-truth box: corners as the annotation writes them (VOC: 1-based pixels).
#[derive(Clone, Debug, PartialEq)]
pub struct VocBox {
    /// Category id (detections use the same ids).
    pub category_id: u64,
    /// x1, y1, x2, y2.
    pub corners: [f64; 4],
    /// `difficult`: ignored.
    pub difficult: bool,
}

/// A VOC ground truth: the categories and every image of the set with its boxes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VocGt {
    /// (category id, name), in report order.
    pub categories: Vec<(u64, String)>,
    /// Image id -> its boxes (images without boxes included: detections there are false).
    pub images: BTreeMap<u64, Vec<VocBox>>,
}

/// Which interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// VOC2007: mean of the best precision at recall >= 0, 0.1, ..., 1.
    ElevenPoint,
    /// VOC2010 and later: area under the monotone precision envelope.
    Area,
}

/// Per-class AP and their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct VocResult {
    /// Mean AP over the classes with ground truth.
    pub map50: f64,
    /// (class name, AP; `None` for a class without non-difficult ground truth).
    pub per_class: Vec<(String, Option<f64>)>,
}

impl VocResult {
    /// `{"map50": .., "per_class": {"aeroplane": .., ...}}` in class order.
    pub fn to_json(&self) -> String {
        let per: Vec<String> = self
            .per_class
            .iter()
            .map(|(n, ap)| {
                format!(
                    "{}:{}",
                    serde_json::Value::from(n.as_str()),
                    ap.map_or(serde_json::Value::Null, serde_json::Value::from)
                )
            })
            .collect();
        format!(
            "{{\"map50\":{},\"per_class\":{{{}}}}}",
            serde_json::Value::from(self.map50),
            per.join(",")
        )
    }
}

/// The devkit's overlap: intersection over union with +1 pixel on every side length.
fn overlap(d: &[f64; 4], g: &[f64; 4]) -> f64 {
    let iw = (d[2].min(g[2]) - d[0].max(g[0]) + 1.0).max(0.0);
    let ih = (d[3].min(g[3]) - d[1].max(g[1]) + 1.0).max(0.0);
    let inter = iw * ih;
    let union = (d[2] - d[0] + 1.0) * (d[3] - d[1] + 1.0)
        + (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0)
        - inter;
    inter / union
}

/// AP from cumulative recall and precision.
pub fn average_precision(rec: &[f64], prec: &[f64], metric: Metric) -> f64 {
    match metric {
        Metric::ElevenPoint => (0..11)
            .map(|i| {
                let t = i as f64 * 0.1;
                rec.iter()
                    .zip(prec)
                    .filter(|(r, _)| **r >= t)
                    .map(|(_, p)| *p)
                    .fold(0.0, f64::max)
                    / 11.0
            })
            .sum(),
        Metric::Area => {
            let mut mrec = vec![0.0];
            mrec.extend_from_slice(rec);
            mrec.push(1.0);
            let mut mpre = vec![0.0];
            mpre.extend_from_slice(prec);
            mpre.push(0.0);
            for i in (1..mpre.len()).rev() {
                mpre[i - 1] = mpre[i - 1].max(mpre[i]);
            }
            (0..mrec.len() - 1)
                .filter(|&i| mrec[i + 1] != mrec[i])
                .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
                .sum()
        }
    }
}

/// Detection boxes are COCO `[x, y, w, h]`; their corners are `x, y, x + w, y + h`.
pub fn evaluate(gt: &VocGt, dets: &[Detection], metric: Metric) -> Result<VocResult, EvalError> {
    if let Some(d) = dets.iter().find(|d| !gt.images.contains_key(&d.image_id)) {
        return Err(EvalError::Mismatch(format!(
            "detections name image {} that is not in the ground-truth image set",
            d.image_id
        )));
    }
    let mut per_class = Vec::new();
    let mut aps = Vec::new();
    for (cat, name) in &gt.categories {
        // Each image's boxes of this class and whether each is taken.
        let mut taken: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
        let mut positives = 0usize;
        for (img, boxes) in &gt.images {
            let n = boxes.iter().filter(|b| b.category_id == *cat).count();
            positives += boxes
                .iter()
                .filter(|b| b.category_id == *cat && !b.difficult)
                .count();
            taken.insert(*img, vec![false; n]);
        }
        let mut mine: Vec<&Detection> = dets.iter().filter(|d| d.category_id == *cat).collect();
        // Stable: ties keep file order.
        mine.sort_by(|a, b| b.score.total_cmp(&a.score));
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let (mut rec, mut prec) = (Vec::new(), Vec::new());
        for d in mine {
            let corners = [
                d.bbox[0],
                d.bbox[1],
                d.bbox[0] + d.bbox[2],
                d.bbox[1] + d.bbox[3],
            ];
            let boxes: Vec<&VocBox> = gt.images[&d.image_id]
                .iter()
                .filter(|b| b.category_id == *cat)
                .collect();
            // The first box with the largest overlap (numpy argmax).
            let mut best: Option<(usize, f64)> = None;
            for (j, b) in boxes.iter().enumerate() {
                let o = overlap(&corners, &b.corners);
                if best.is_none_or(|(_, v)| o > v) {
                    best = Some((j, o));
                }
            }
            match best {
                Some((j, o)) if o > 0.5 => {
                    if !boxes[j].difficult {
                        let t = taken.get_mut(&d.image_id).expect("every image is listed");
                        if t[j] {
                            fp += 1.0;
                        } else {
                            t[j] = true;
                            tp += 1.0;
                        }
                    }
                }
                _ => fp += 1.0,
            }
            rec.push(tp / positives as f64);
            prec.push(tp / (tp + fp).max(f64::EPSILON));
        }
        if positives == 0 {
            per_class.push((name.clone(), None));
            continue;
        }
        let ap = average_precision(&rec, &prec, metric);
        aps.push(ap);
        per_class.push((name.clone(), Some(ap)));
    }
    let map50 = if aps.is_empty() {
        0.0
    } else {
        aps.iter().sum::<f64>() / aps.len() as f64
    };
    Ok(VocResult { map50, per_class })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_points_and_area_on_a_hand_case() {
        // Two positives; detections: TP, FP, TP. rec 0.5, 0.5, 1; prec 1, 0.5, 2/3.
        let rec = [0.5, 0.5, 1.0];
        let prec = [1.0, 0.5, 2.0 / 3.0];
        // Area: envelope 1 up to recall 0.5, 2/3 up to 1 -> 0.5 + 0.5 * 2/3.
        let area = average_precision(&rec, &prec, Metric::Area);
        assert!((area - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{area}");
        // 11-point: recall >= 0..0.5 (6 points) best precision 1; 0.6..1 (5 points) 2/3.
        let eleven = average_precision(&rec, &prec, Metric::ElevenPoint);
        assert!(
            (eleven - (6.0 + 5.0 * 2.0 / 3.0) / 11.0).abs() < 1e-12,
            "{eleven}"
        );
    }

    #[test]
    fn overlap_counts_inclusive_pixels() {
        // Two 10x10-pixel boxes (1..10) sharing 5 columns: 50 / 150.
        let o = overlap(&[1.0, 1.0, 10.0, 10.0], &[6.0, 1.0, 15.0, 10.0]);
        assert!((o - 50.0 / 150.0).abs() < 1e-12);
    }
}
