//! The YOLOv3 loss for [`netaug_model::Detector`] outputs: objectness BCE at every cell
//! and anchor (1 where a box is assigned, 0 elsewhere), and where a box is assigned, BCE
//! of the sigmoid centre offsets, squared error of the log sizes and BCE of every class
//! (YOLOv3's independent logistic classes). Summed, divided by the batch size.
//!
//! YOLOv3 also leaves out of the objectness loss the unassigned predictions that already
//! overlap a box by IoU > 0.5; that needs the decoded predictions on the host each step
//! and is not done here.

use burn::tensor::{Tensor, TensorData};
use netaug_detect::assign::Target;

/// `max(x, 0) - x t + ln(1 + exp(-|x|))`: BCE with logits, stable for large |x|.
fn bce_with_logits<const D: usize>(x: Tensor<D>, t: Tensor<D>) -> Tensor<D> {
    x.clone().clamp_min(0.0) - x.clone() * t + (x.abs().neg().exp() + 1.0).log()
}

/// The loss of one batch: `outputs` per scale `[N, A * (5 + classes), H, W]`, `targets`
/// per image (scale indices into `outputs`).
pub fn yolo_loss(
    outputs: &[Tensor<4>],
    targets: &[Vec<Target>],
    anchors_per_scale: usize,
    classes: usize,
) -> Tensor<1> {
    let device = outputs[0].device();
    let n = targets.len();
    let k = 5 + classes;
    let mut total = Tensor::<1>::zeros([1], &device);
    for (s, out) in outputs.iter().enumerate() {
        let [batch, channels, h, w] = out.dims();
        debug_assert_eq!((batch, channels), (n, anchors_per_scale * k));
        let a = anchors_per_scale;
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
        let objectness = bce_with_logits(obj, obj_t).sum();
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
}
