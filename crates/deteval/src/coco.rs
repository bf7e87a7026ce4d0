//! COCO box evaluation, step for step as pycocotools' `COCOeval` (iouType `bbox`): IoU
//! thresholds 0.50:0.05:0.95, 101 recall points, maxDets 1/10/100, area ranges all /
//! small (< 32²) / medium / large (> 96²), crowd boxes matched by intersection over the
//! detection's area and ignored, greedy matching in score order, interpolated precision.
//! The same stable sorts as numpy's mergesort keep ties in the same order.

use std::collections::BTreeMap;

use crate::error::EvalError;
use crate::{Detection, Xywh};

/// The names of the 12 summary numbers, in pycocotools' order (`COCOeval.stats`).
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// A ground-truth annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct GtBox {
    /// Annotation id.
    pub id: u64,
    /// Image id.
    pub image_id: u64,
    /// Category id.
    pub category_id: u64,
    /// The box.
    pub bbox: Xywh,
    /// `area` of the annotation (COCO: of its segmentation), which decides its area range.
    pub area: f64,
    /// `iscrowd`: matched by any number of detections and ignored.
    pub iscrowd: bool,
}

/// A COCO ground truth: images, categories, annotations (file order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CocoGt {
    /// Image ids.
    pub image_ids: Vec<u64>,
    /// Category ids.
    pub category_ids: Vec<u64>,
    /// Annotations.
    pub annotations: Vec<GtBox>,
}

/// The 12 summary numbers (-1 where pycocotools prints -1: nothing to average).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CocoStats(pub [f64; 12]);

impl CocoStats {
    /// `{"AP": .., "AP50": .., ...}` in pycocotools' order.
    pub fn to_json(&self) -> String {
        let fields: Vec<String> = STAT_NAMES
            .iter()
            .zip(self.0)
            .map(|(k, v)| format!("\"{k}\":{}", serde_json::Value::from(v)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// The rows as pycocotools' `summarize()` prints them.
const STAT_ROWS: [&str; 12] = [
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
];

/// The 12 rows as pycocotools prints them.
impl std::fmt::Display for CocoStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = STAT_ROWS
            .iter()
            .zip(self.0)
            .map(|(row, v)| format!(" {row} = {v:.3}"))
            .collect();
        f.write_str(&rows.join("\n"))
    }
}

const MAX_DETS: [usize; 3] = [1, 10, 100];
const AREA: [(f64, f64); 4] = [(0.0, 1e10), (0.0, 1024.0), (1024.0, 9216.0), (9216.0, 1e10)];

/// numpy's `linspace` (the same floating-point values).
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    (0..num)
        .map(|k| {
            if k == num - 1 {
                stop
            } else {
                k as f64 * step + start
            }
        })
        .collect()
}

/// One detection inside the evaluation.
#[derive(Clone, Copy, Debug)]
struct Dt {
    bbox: Xywh,
    area: f64,
    score: f64,
}

/// One image's ground truth, detections (score order) and IoUs [detection][ground truth].
type ImageBoxes<'a> = (Vec<&'a GtBox>, Vec<Dt>, Vec<Vec<f64>>);

/// What one (image, category, area range) contributes: `evaluateImg`'s result.
struct ImageEval {
    scores: Vec<f64>,
    /// [threshold][detection]: id of the matched ground truth, 0 if none.
    matches: Vec<Vec<u64>>,
    /// [threshold][detection].
    dt_ignore: Vec<Vec<bool>>,
    gt_ignore: Vec<bool>,
}

/// Box IoU as pycocotools' `bbIou`; a crowd ground truth divides by the detection's area.
fn iou(d: &Xywh, g: &Xywh, crowd: bool) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let u = if crowd {
        d[2] * d[3]
    } else {
        d[2] * d[3] + g[2] * g[3] - i
    };
    i / u
}

/// Indices of `keys` sorted ascending, ties in input order (numpy mergesort).
fn stable_order(keys: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    idx
}

/// Evaluates `dets` against `gt`; `dets` must name only images of `gt`.
pub fn evaluate(gt: &CocoGt, dets: &[Detection]) -> Result<CocoStats, EvalError> {
    let (images, cats) = (
        sorted_unique(&gt.image_ids),
        sorted_unique(&gt.category_ids),
    );
    if let Some(d) = dets
        .iter()
        .find(|d| images.binary_search(&d.image_id).is_err())
    {
        return Err(EvalError::Mismatch(format!(
            "detections name image {} that the ground truth does not have \
             (pycocotools: results do not correspond to the current COCO set)",
            d.image_id
        )));
    }
    let known =
        |img: u64, cat: u64| images.binary_search(&img).is_ok() && cats.binary_search(&cat).is_ok();
    let mut gts: BTreeMap<(u64, u64), Vec<&GtBox>> = BTreeMap::new();
    for g in gt
        .annotations
        .iter()
        .filter(|g| known(g.image_id, g.category_id))
    {
        gts.entry((g.image_id, g.category_id)).or_default().push(g);
    }
    let mut dts: BTreeMap<(u64, u64), Vec<Dt>> = BTreeMap::new();
    for d in dets.iter().filter(|d| known(d.image_id, d.category_id)) {
        dts.entry((d.image_id, d.category_id))
            .or_default()
            .push(Dt {
                bbox: d.bbox,
                area: d.bbox[2] * d.bbox[3],
                score: d.score,
            });
    }
    let thresholds = linspace(0.5, 0.95, 10);
    let recall_points = linspace(0.0, 1.0, 101);
    let mut tables = Tables::new(thresholds.len(), recall_points.len(), cats.len());
    for (k, &cat) in cats.iter().enumerate() {
        let per_image: Vec<ImageBoxes> = images
            .iter()
            .filter_map(|&img| image_boxes(gts.get(&(img, cat)), dts.get(&(img, cat))))
            .collect();
        for (a, &range) in AREA.iter().enumerate() {
            let evals: Vec<ImageEval> = per_image
                .iter()
                .map(|(g, d, ious)| evaluate_image(g, d, ious, range, &thresholds))
                .collect();
            if evals.is_empty() {
                continue;
            }
            for (m, &max) in MAX_DETS.iter().enumerate() {
                accumulate(&evals, max, &recall_points, |t, rc_last, q| {
                    let at = tables.r_at(t, k, a, m);
                    tables.recall[at] = rc_last;
                    for (r, v) in q.iter().enumerate() {
                        let at = tables.p_at(t, r, k, a, m);
                        tables.precision[at] = *v;
                    }
                });
            }
        }
    }
    Ok(tables.stats())
}

/// `ids` sorted, each once.
fn sorted_unique(ids: &[u64]) -> Vec<u64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One image's ground truth and detections of one category: the detections in score
/// order (at most 100) and their IoUs with the ground truth, as `computeIoU`; `None` when
/// it has neither.
fn image_boxes<'a>(g: Option<&Vec<&'a GtBox>>, d: Option<&Vec<Dt>>) -> Option<ImageBoxes<'a>> {
    let g = g.cloned().unwrap_or_default();
    let d = d.cloned().unwrap_or_default();
    if g.is_empty() && d.is_empty() {
        return None;
    }
    let order = stable_order(&d.iter().map(|x| -x.score).collect::<Vec<_>>());
    let max_det = MAX_DETS[MAX_DETS.len() - 1];
    let d: Vec<Dt> = order.into_iter().take(max_det).map(|i| d[i]).collect();
    let ious = d
        .iter()
        .map(|dd| {
            g.iter()
                .map(|gg| iou(&dd.bbox, &gg.bbox, gg.iscrowd))
                .collect()
        })
        .collect();
    Some((g, d, ious))
}

/// pycocotools' `eval['precision']` [t][r][k][a][m] and `eval['recall']` [t][k][a][m]
/// (threshold, recall point, category, area, max detections), flattened; -1 = undefined.
struct Tables {
    precision: Vec<f64>,
    recall: Vec<f64>,
    t_n: usize,
    r_n: usize,
    k_n: usize,
}

impl Tables {
    fn new(t_n: usize, r_n: usize, k_n: usize) -> Self {
        let (a_n, m_n) = (AREA.len(), MAX_DETS.len());
        Self {
            precision: vec![-1.0; t_n * r_n * k_n * a_n * m_n],
            recall: vec![-1.0; t_n * k_n * a_n * m_n],
            t_n,
            r_n,
            k_n,
        }
    }

    fn p_at(&self, t: usize, r: usize, k: usize, a: usize, m: usize) -> usize {
        ((((t * self.r_n + r) * self.k_n + k) * AREA.len() + a) * MAX_DETS.len()) + m
    }

    fn r_at(&self, t: usize, k: usize, a: usize, m: usize) -> usize {
        (((t * self.k_n + k) * AREA.len() + a) * MAX_DETS.len()) + m
    }

    /// The mean of the defined AP (`ap`) or AR values at threshold `t` (all when `None`),
    /// area `a` and `max` detections, as `summarize`; -1 when none is defined.
    fn summarize(&self, ap: bool, t: Option<usize>, a: usize, max: usize) -> f64 {
        let m = MAX_DETS
            .iter()
            .position(|&x| x == max)
            .expect("a listed maxDet");
        let ts: Vec<usize> = t.map_or_else(|| (0..self.t_n).collect(), |t| vec![t]);
        let mut values = Vec::new();
        for &t in &ts {
            for k in 0..self.k_n {
                if ap {
                    values.extend((0..self.r_n).map(|r| self.precision[self.p_at(t, r, k, a, m)]));
                } else {
                    values.push(self.recall[self.r_at(t, k, a, m)]);
                }
            }
        }
        let valid: Vec<f64> = values.into_iter().filter(|&v| v > -1.0).collect();
        if valid.is_empty() {
            -1.0
        } else {
            valid.iter().sum::<f64>() / valid.len() as f64
        }
    }

    /// The 12 numbers; IoU 0.50 and 0.75 are thresholds 0 and 5.
    fn stats(&self) -> CocoStats {
        let s = |ap, t, a, max| self.summarize(ap, t, a, max);
        CocoStats([
            s(true, None, 0, 100),
            s(true, Some(0), 0, 100),
            s(true, Some(5), 0, 100),
            s(true, None, 1, 100),
            s(true, None, 2, 100),
            s(true, None, 3, 100),
            s(false, None, 0, 1),
            s(false, None, 0, 10),
            s(false, None, 0, 100),
            s(false, None, 1, 100),
            s(false, None, 2, 100),
            s(false, None, 3, 100),
        ])
    }
}

/// `evaluateImg`: greedy matching of one image's detections (score order) to its ground
/// truth (non-ignored first) at every threshold.
fn evaluate_image(
    gt: &[&GtBox],
    dt: &[Dt],
    ious: &[Vec<f64>],
    (lo, hi): (f64, f64),
    thresholds: &[f64],
) -> ImageEval {
    let out_of_range = |area: f64| area < lo || area > hi;
    let ignore: Vec<bool> = gt
        .iter()
        .map(|g| g.iscrowd || out_of_range(g.area))
        .collect();
    let order = stable_order(&ignore.iter().map(|&i| i as u8 as f64).collect::<Vec<_>>());
    let gt: Vec<&GtBox> = order.iter().map(|&i| gt[i]).collect();
    let gt_ignore: Vec<bool> = order.iter().map(|&i| ignore[i]).collect();
    let (t_n, g_n, d_n) = (thresholds.len(), gt.len(), dt.len());
    let mut gt_matched = vec![vec![false; g_n]; t_n];
    let mut matches = vec![vec![0u64; d_n]; t_n];
    let mut dt_ignore = vec![vec![false; d_n]; t_n];
    if g_n > 0 {
        for (t, &thr) in thresholds.iter().enumerate() {
            for di in 0..d_n {
                let mut best = thr.min(1.0 - 1e-10);
                let mut m: Option<usize> = None;
                for gi in 0..g_n {
                    // A matched ground truth takes no second detection, unless a crowd.
                    if gt_matched[t][gi] && !gt[gi].iscrowd {
                        continue;
                    }
                    // Once matched to a regular box, stop at the ignored ones.
                    if let Some(mm) = m
                        && !gt_ignore[mm]
                        && gt_ignore[gi]
                    {
                        break;
                    }
                    let v = ious[di][order[gi]];
                    if v < best {
                        continue;
                    }
                    best = v;
                    m = Some(gi);
                }
                if let Some(mm) = m {
                    dt_ignore[t][di] = gt_ignore[mm];
                    matches[t][di] = gt[mm].id;
                    gt_matched[t][mm] = true;
                }
            }
        }
    }
    // Unmatched detections outside the area range are ignored.
    for t in 0..t_n {
        for (di, d) in dt.iter().enumerate() {
            if matches[t][di] == 0 && out_of_range(d.area) {
                dt_ignore[t][di] = true;
            }
        }
    }
    ImageEval {
        scores: dt.iter().map(|d| d.score).collect(),
        matches,
        dt_ignore,
        gt_ignore,
    }
}

/// `accumulate` for one category, area range and maxDet: calls `store(t, recall,
/// precision at the recall points)` for every threshold, unless no ground truth counts.
fn accumulate(
    evals: &[ImageEval],
    max_det: usize,
    recall_points: &[f64],
    mut store: impl FnMut(usize, f64, &[f64]),
) {
    let mut scores = Vec::new();
    let t_n = evals[0].matches.len();
    let mut matched: Vec<Vec<bool>> = vec![Vec::new(); t_n];
    let mut ignored: Vec<Vec<bool>> = vec![Vec::new(); t_n];
    let mut positives = 0usize;
    for e in evals {
        let n = e.scores.len().min(max_det);
        scores.extend_from_slice(&e.scores[..n]);
        for t in 0..t_n {
            matched[t].extend(e.matches[t][..n].iter().map(|&id| id != 0));
            ignored[t].extend_from_slice(&e.dt_ignore[t][..n]);
        }
        positives += e.gt_ignore.iter().filter(|&&i| !i).count();
    }
    if positives == 0 {
        return;
    }
    let order = stable_order(&scores.iter().map(|s| -s).collect::<Vec<_>>());
    for t in 0..t_n {
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let mut rc = Vec::with_capacity(order.len());
        let mut pr = Vec::with_capacity(order.len());
        for &i in &order {
            if !ignored[t][i] {
                if matched[t][i] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
            rc.push(tp / positives as f64);
            pr.push(tp / (fp + tp + f64::EPSILON));
        }
        let last = rc.last().copied().unwrap_or(0.0);
        for i in (1..pr.len()).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        let mut q = vec![0.0; recall_points.len()];
        for (r, &point) in recall_points.iter().enumerate() {
            // numpy searchsorted(side='left'): the first recall >= the point.
            let i = rc.partition_point(|&x| x < point);
            if i >= pr.len() {
                break;
            }
            q[r] = pr[i];
        }
        store(t, last, &q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_numpys() {
        let t = linspace(0.5, 0.95, 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[5], 0.75);
        assert_eq!(t[9], 0.95);
        assert_eq!(linspace(0.0, 1.0, 101)[100], 1.0);
    }

    #[test]
    fn one_perfect_detection_scores_one() {
        let gt = CocoGt {
            image_ids: vec![1],
            category_ids: vec![1],
            annotations: vec![GtBox {
                id: 1,
                image_id: 1,
                category_id: 1,
                bbox: [10.0, 10.0, 50.0, 50.0],
                area: 2500.0,
                iscrowd: false,
            }],
        };
        let d = Detection {
            image_id: 1,
            category_id: 1,
            bbox: [10.0, 10.0, 50.0, 50.0],
            score: 0.9,
        };
        let s = evaluate(&gt, &[d]).unwrap().0;
        // Precision is tp / (tp + fp + eps), as pycocotools: 1 - 1e-16.
        let one = |v: f64| (v - 1.0).abs() < 1e-12;
        assert!(one(s[0]) && one(s[4]) && one(s[6]), "{s:?}");
        assert_eq!(s[3], -1.0, "no small boxes");
    }

    #[test]
    fn crowd_iou_divides_by_the_detection_area() {
        let d = [0.0, 0.0, 10.0, 10.0];
        let g = [0.0, 0.0, 100.0, 100.0];
        assert_eq!(iou(&d, &g, true), 1.0);
        assert_eq!(iou(&d, &g, false), 0.01);
    }
}
