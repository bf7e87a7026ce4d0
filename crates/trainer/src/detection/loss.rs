//! The YOLOv3 loss for [`netaug_model::Detector`] outputs: objectness BCE at every cell
//! and anchor (1 where a box is assigned, 0 elsewhere), and where a box is assigned, BCE
//! of the sigmoid centre offsets, squared error of the log sizes and BCE of every class
//! (YOLOv3's independent logistic classes). Summed, divided by the batch size.
//!
//! As YOLOv3, an unassigned prediction whose decoded box already overlaps one of the
//! image's boxes by IoU > 0.5 is left out of the objectness loss (it is a fair detection,
//! only not the one the box is learned at). The decoding and the IoUs run on the device,
//! without gradient, so the step reads nothing back.

use burn::tensor::{Tensor, TensorData};
use netaug_detect::assign::Target;

/// IoU above which an unassigned prediction is not pushed towards "no object".
pub const IGNORE_IOU: f32 = 0.5;

/// `1 / (1 + exp(-x))`.
fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.neg().exp().add_scalar(1.0).recip()
}

/// One output scale's geometry: its stride and the anchors (w, h) of its slots.
#[derive(Clone, Copy, Debug)]
pub struct ScaleGeometry<'a> {
    /// Pixels per cell.
    pub stride: usize,
    /// Anchors of this scale.
    pub anchors: &'a [(f32, f32)],
}

/// The geometry of a [`netaug_model::Detector`]'s outputs: strides 8, 16, 32 with
/// `anchors.len() / 3` anchors each, smallest first.
pub fn detector_geometry(anchors: &[(f32, f32)]) -> Vec<ScaleGeometry<'_>> {
    let strides = netaug_model::detector::STRIDES;
    let per = anchors.len() / strides.len();
    strides
        .iter()
        .enumerate()
        .map(|(s, &stride)| ScaleGeometry {
            stride,
            anchors: &anchors[s * per..(s + 1) * per],
        })
        .collect()
}

/// 1 where an unassigned prediction of `x` (`[N, A, K, H, W]`, no gradient needed)
/// overlaps a box of its image (`boxes[i]`, corners) by more than [`IGNORE_IOU`], else 0;
/// `[N, A, 1, H, W]`.
fn ignored(x: Tensor<5>, geometry: ScaleGeometry, boxes: &[Vec<[f32; 4]>]) -> Tensor<5> {
    let device = x.device();
    let [n, a, _, h, w] = x.dims();
    let m = boxes.iter().map(Vec::len).max().unwrap_or(0);
    if m == 0 {
        return Tensor::zeros([n, a, 1, h, w], &device);
    }
    let part = |c: usize| x.clone().slice([0..n, 0..a, c..c + 1, 0..h, 0..w]);
    // Cell offsets and anchor sizes, [1, A, 1, H, W].
    let plane = |f: &dyn Fn(usize, usize, usize) -> f32| {
        let v: Vec<f32> = (0..a * h * w)
            .map(|i| f(i / (h * w), (i / w) % h, i % w))
            .collect();
        Tensor::<5>::from_data(TensorData::new(v, [1, a, 1, h, w]), &device)
    };
    let stride = geometry.stride as f32;
    let gx = plane(&|_, _, col| col as f32);
    let gy = plane(&|_, row, _| row as f32);
    let aw = plane(&|k, _, _| geometry.anchors[k].0);
    let ah = plane(&|k, _, _| geometry.anchors[k].1);
    let cx = (sigmoid(part(0)) + gx).mul_scalar(stride);
    let cy = (sigmoid(part(1)) + gy).mul_scalar(stride);
    let pw = part(2).clamp_max(10.0).exp() * aw;
    let ph = part(3).clamp_max(10.0).exp() * ah;
    let flat = |t: Tensor<5>| t.reshape([n, a * h * w, 1]);
    let half_w = pw.clone().mul_scalar(0.5);
    let half_h = ph.clone().mul_scalar(0.5);
    let (px1, px2) = (flat(cx.clone() - half_w.clone()), flat(cx + half_w));
    let (py1, py2) = (flat(cy.clone() - half_h.clone()), flat(cy + half_h));
    let parea = flat(pw * ph);
    // Boxes padded to `m` per image with empty boxes far away (IoU 0), [N, 1, M] each.
    let mut corner: [Vec<f32>; 4] = std::array::from_fn(|_| vec![-1e4f32; n * m]);
    for (i, image) in boxes.iter().enumerate() {
        for (j, b) in image.iter().enumerate() {
            for c in 0..4 {
                corner[c][i * m + j] = b[c];
            }
        }
    }
    let [gx1, gy1, gx2, gy2] =
        corner.map(|v| Tensor::<3>::from_data(TensorData::new(v, [n, 1, m]), &device));
    let garea = (gx2.clone() - gx1.clone()) * (gy2.clone() - gy1.clone());
    let iw = (px2.min_pair(gx2.expand([n, a * h * w, m]))
        - px1.max_pair(gx1.expand([n, a * h * w, m])))
    .clamp_min(0.0);
    let ih = (py2.min_pair(gy2.expand([n, a * h * w, m]))
        - py1.max_pair(gy1.expand([n, a * h * w, m])))
    .clamp_min(0.0);
    let inter = iw * ih;
    let union = (parea + garea - inter.clone()).clamp_min(1e-9);
    let best = (inter / union).max_dim(2);
    best.greater_elem(IGNORE_IOU)
        .float()
        .reshape([n, a, 1, h, w])
}

/// `max(x, 0) - x t + ln(1 + exp(-|x|))`: BCE with logits, stable for large |x|.
fn bce_with_logits<const D: usize>(x: Tensor<D>, t: Tensor<D>) -> Tensor<D> {
    x.clone().clamp_min(0.0) - x.clone() * t + (x.abs().neg().exp() + 1.0).log()
}

/// The loss of one batch: `outputs` per scale `[N, A * (5 + classes), H, W]` with their
/// `geometry`, `targets` per image (scale indices into `outputs`).
pub fn yolo_loss(
    outputs: &[Tensor<4>],
    geometry: &[ScaleGeometry],
    targets: &[Vec<Target>],
    classes: usize,
) -> Tensor<1> {
    let device = outputs[0].device();
    let n = targets.len();
    let k = 5 + classes;
    // Every assigned box of each image, for the ignore region of every scale.
    let boxes: Vec<Vec<[f32; 4]>> = targets
        .iter()
        .map(|image| {
            image
                .iter()
                .map(|t| [t.bbox.x1, t.bbox.y1, t.bbox.x2, t.bbox.y2])
                .collect()
        })
        .collect();
    let mut total = Tensor::<1>::zeros([1], &device);
    for ((s, out), geo) in outputs.iter().enumerate().zip(geometry) {
        let [batch, channels, h, w] = out.dims();
        let a = geo.anchors.len();
        debug_assert_eq!((batch, channels), (n, a * k));
        let x = out.clone().reshape([n, a, k, h, w]);
        // Host-built targets: [N, A, k, H, W] values and a [N, A, 1, H, W] positive mask.
        let mut t = vec![0.0f32; n * a * k * h * w];
        let mut pos = vec![0.0f32; n * a * h * w];
        for (i, image) in targets.iter().enumerate() {
            for tg in image.iter().filter(|tg| tg.scale == s) {
                if tg.gx >= w || tg.gy >= h || tg.anchor >= a {
                    continue;
                }
                let at = |c: usize| (((i * a + tg.anchor) * k + c) * h + tg.gy) * w + tg.gx;
                t[at(0)] = tg.tx;
                t[at(1)] = tg.ty;
                t[at(2)] = tg.tw;
                t[at(3)] = tg.th;
                t[at(4)] = 1.0;
                if tg.class < classes {
                    t[at(5 + tg.class)] = 1.0;
                }
                pos[((i * a + tg.anchor) * h + tg.gy) * w + tg.gx] = 1.0;
            }
        }
        let t = Tensor::<5>::from_data(TensorData::new(t, [n, a, k, h, w]), &device);
        let pos = Tensor::<5>::from_data(TensorData::new(pos, [n, a, 1, h, w]), &device);
        let part = |lo: usize, hi: usize| {
            (
                x.clone().slice([0..n, 0..a, lo..hi, 0..h, 0..w]),
                t.clone().slice([0..n, 0..a, lo..hi, 0..h, 0..w]),
            )
        };
        let (xy, xy_t) = part(0, 2);
        let (wh, wh_t) = part(2, 4);
        let (obj, obj_t) = part(4, 5);
        let (cls, cls_t) = part(5, k);
        // Weight 0 where ignored: 1 - ignored * (1 - pos).
        let ignore = ignored(x.clone().detach(), *geo, &boxes);
        let weight = (ignore * (pos.clone().neg().add_scalar(1.0)))
            .neg()
            .add_scalar(1.0);
        let objectness = (bce_with_logits(obj, obj_t) * weight).sum();
        let centre = (bce_with_logits(xy, xy_t) * pos.clone()).sum();
        let size = ((wh - wh_t).powi_scalar(2) * pos.clone())
            .sum()
            .mul_scalar(0.5);
        let class = (bce_with_logits(cls, cls_t) * pos).sum();
        total = total + objectness + centre + size + class;
    }
    total.div_scalar(n.max(1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn bce_matches_its_definition() {
        let device = Device::flex();
        let x = Tensor::<1>::from_data(TensorData::new(vec![-30.0f32, 0.0, 2.0], [3]), &device);
        let t = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 1.0, 1.0], [3]), &device);
        let v: Vec<f32> = bce_with_logits(x, t)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expect = [0.0, std::f32::consts::LN_2, (1.0 + (-2.0f32).exp()).ln()];
        for (a, b) in v.iter().zip(expect) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
    }

    #[test]
    fn predictions_overlapping_a_box_are_ignored() {
        let device = Device::flex();
        // One anchor of 16x16 at stride 16 on a 2x2 grid, all logits 0: the predicted
        // boxes are the four cells.
        let x = Tensor::<5>::zeros([2, 1, 7, 2, 2], &device);
        let anchors = [(16.0, 16.0)];
        let geo = ScaleGeometry {
            stride: 16,
            anchors: &anchors,
        };
        let boxes = vec![
            // IoU 1 with cell (0, 0); 0.5625 with cell (1, 1); 0.25 with cell (1, 0).
            vec![
                [0.0, 0.0, 16.0, 16.0],
                [18.0, 18.0, 30.0, 30.0],
                [16.0, 0.0, 24.0, 8.0],
            ],
            vec![],
        ];
        let got: Vec<f32> = ignored(x, geo, &boxes)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(got, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
