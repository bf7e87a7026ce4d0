//! From the head's raw outputs to detections: per cell and anchor, the box is
//! ((sigmoid(tx) + gx) * stride, (sigmoid(ty) + gy) * stride, exp(tw) * anchor_w,
//! exp(th) * anchor_h) and the score of class c is sigmoid(objectness) * sigmoid(class c)
//! (YOLOv3's independent logistic classes); then a score threshold, per-class greedy NMS
//! and the best `max_detections`.

use crate::geometry::Corners;

/// One output scale: `data` is laid out [anchor][5 + classes][rows][cols] (tx, ty, tw, th,
/// objectness, class logits), as the head's tensor for one image.
#[derive(Clone, Copy, Debug)]
pub struct ScaleOutput<'a> {
    /// Pixels per cell.
    pub stride: usize,
    /// The anchors (w, h) of this scale.
    pub anchors: &'a [(f32, f32)],
    /// Grid rows.
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
    /// The raw outputs.
    pub data: &'a [f32],
}

/// A scored box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// The box in input pixels.
    pub bbox: Corners,
    /// Objectness times class probability.
    pub score: f32,
    /// Class index.
    pub class: usize,
}

/// Decoding settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Scores below are dropped before NMS.
    pub score_threshold: f32,
    /// A box overlapping a better one of its class by more than this is suppressed.
    pub nms_iou: f32,
    /// At most this many detections per image, best first.
    pub max_detections: usize,
}

impl Default for DecodeOptions {
    /// The usual evaluation settings: every box above 0.005, NMS at 0.45, 100 per image.
    fn default() -> Self {
        Self {
            score_threshold: 0.005,
            nms_iou: 0.45,
            max_detections: 100,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Detections of one image of `size` (w, h); boxes are clipped to the image.
pub fn decode(
    scales: &[ScaleOutput],
    classes: usize,
    size: (usize, usize),
    options: &DecodeOptions,
) -> Vec<Detection> {
    let mut found = Vec::new();
    for s in scales {
        let plane = s.rows * s.cols;
        let per_anchor = (5 + classes) * plane;
        for (a, &(aw, ah)) in s.anchors.iter().enumerate() {
            let base = a * per_anchor;
            if s.data.len() < base + per_anchor {
                break;
            }
            let at = |k: usize, cell: usize| s.data[base + k * plane + cell];
            for gy in 0..s.rows {
                for gx in 0..s.cols {
                    let cell = gy * s.cols + gx;
                    let obj = sigmoid(at(4, cell));
                    if obj < options.score_threshold {
                        continue;
                    }
                    let cx = (sigmoid(at(0, cell)) + gx as f32) * s.stride as f32;
                    let cy = (sigmoid(at(1, cell)) + gy as f32) * s.stride as f32;
                    // Clamped so that a wild logit cannot make an infinite box.
                    let w = at(2, cell).min(10.0).exp() * aw;
                    let h = at(3, cell).min(10.0).exp() * ah;
                    let b = Corners::from_center(cx, cy, w, h);
                    let bbox = Corners {
                        x1: b.x1.clamp(0.0, size.0 as f32),
                        y1: b.y1.clamp(0.0, size.1 as f32),
                        x2: b.x2.clamp(0.0, size.0 as f32),
                        y2: b.y2.clamp(0.0, size.1 as f32),
                    };
                    for c in 0..classes {
                        let score = obj * sigmoid(at(5 + c, cell));
                        if score >= options.score_threshold && bbox.area() > 0.0 {
                            found.push(Detection {
                                bbox,
                                score,
                                class: c,
                            });
                        }
                    }
                }
            }
        }
    }
    nms(found, options.nms_iou, options.max_detections)
}

/// Per-class greedy NMS, then the best `max` (ties keep the input order).
pub fn nms(mut dets: Vec<Detection>, iou: f32, max: usize) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.len() >= max {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class == d.class && k.bbox.iou(&d.bbox) > iou);
        if !suppressed {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn one_confident_cell_decodes_to_its_box() {
        // 1 anchor (20x20), 2x2 grid, stride 16, 2 classes; only cell (gx 1, gy 0) is on.
        let (rows, cols, classes) = (2, 2, 2);
        let plane = rows * cols;
        let mut data = vec![-20.0f32; (5 + classes) * plane];
        let cell = 1;
        data[cell] = 0.0; // sigmoid 0.5: centre of the cell
        data[plane + cell] = 0.0;
        data[2 * plane + cell] = (2.0f32).ln(); // twice the anchor
        data[3 * plane + cell] = 0.0;
        data[4 * plane + cell] = logit(0.9);
        data[6 * plane + cell] = logit(0.8); // class 1
        let anchors = [(20.0, 20.0)];
        let out = decode(
            &[ScaleOutput {
                stride: 16,
                anchors: &anchors,
                rows,
                cols,
                data: &data,
            }],
            classes,
            (64, 64),
            &DecodeOptions::default(),
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].class, 1);
        assert!((out[0].score - 0.72).abs() < 1e-4);
        let b = out[0].bbox;
        assert!(
            (b.x1 - 4.0).abs() < 1e-3 && (b.x2 - 44.0).abs() < 1e-3,
            "{b:?}"
        );
        assert!(
            (b.y1 - 0.0).abs() < 1e-3 && (b.y2 - 18.0).abs() < 1e-3,
            "clipped: {b:?}"
        );
    }

    #[test]
    fn nms_suppresses_within_a_class_only_and_caps_the_count() {
        let b = |x: f32| Corners {
            x1: x,
            y1: 0.0,
            x2: x + 10.0,
            y2: 10.0,
        };
        let d = |x: f32, score: f32, class: usize| Detection {
            bbox: b(x),
            score,
            class,
        };
        let kept = nms(
            vec![
                d(0.0, 0.9, 0),
                d(1.0, 0.8, 0),
                d(1.0, 0.7, 1),
                d(30.0, 0.6, 0),
            ],
            0.45,
            10,
        );
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[1].class, 1, "another class is not suppressed");
        assert_eq!(nms(kept, 0.45, 2).len(), 2);
    }
}
