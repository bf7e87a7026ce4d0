//! Losses of the official code: cross-entropy with label smoothing, and the soft-target
//! cross-entropy used for knowledge distillation.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};

/// One-hot targets smoothed as the official `label_smooth`: `(1 - e) * onehot + e / K`.
pub fn smoothed_targets(
    labels: &[u32],
    classes: usize,
    smoothing: f64,
    device: &burn::tensor::Device,
) -> Tensor<2> {
    let off = (smoothing / classes as f64) as f32;
    let on = (1.0 - smoothing) as f32 + off;
    let mut data = vec![off; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        data[i * classes + l as usize] = on;
    }
    Tensor::from_data(TensorData::new(data, [labels.len(), classes]), device)
}

/// `mean_i sum_k -target_ik log softmax(logits)_ik`.
pub fn soft_cross_entropy(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    (log_softmax(logits, 1) * target).sum_dim(1).neg().mean()
}

/// Smoothed targets of a mixup batch: `lam * t(y) + (1 - lam) * t(y[perm])`.
pub fn mixed_targets(
    labels: &[u32],
    lam: f32,
    perm: &[usize],
    classes: usize,
    smoothing: f64,
    device: &burn::tensor::Device,
) -> Tensor<2> {
    let partners: Vec<u32> = perm.iter().map(|&j| labels[j]).collect();
    let own = smoothed_targets(labels, classes, smoothing, device);
    let other = smoothed_targets(&partners, classes, smoothing, device);
    own.mul_scalar(lam) + other.mul_scalar(1.0 - lam)
}

/// Distillation loss (Hinton et al.): cross-entropy of the student's tempered softmax
/// against the teacher's, times `T^2` so its gradients keep their scale.
pub fn kd_loss(logits: Tensor<2>, teacher_logits: Tensor<2>, temperature: f64) -> Tensor<1> {
    let t = temperature;
    let soft = softmax(teacher_logits.detach().div_scalar(t), 1);
    soft_cross_entropy(logits.div_scalar(t), soft).mul_scalar(t * t)
}

/// Top-k hits of `logits` against `labels` (`[N]`), counted on the device.
pub fn hits_topk(logits: Tensor<2>, labels: Tensor<1, Int>, k: usize) -> Tensor<1, Int> {
    let [n, classes] = logits.dims();
    let k = k.min(classes);
    let idx: Tensor<2, Int> = logits.argsort_descending(1).slice([0..n, 0..k]);
    idx.equal(labels.reshape([n, 1]).expand([n, k])).int().sum()
}

/// Label-smoothed cross-entropy of `logits` against integer `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[u32], smoothing: f64) -> Tensor<1> {
    let [_, classes] = logits.dims();
    let target = smoothed_targets(labels, classes, smoothing, &logits.device());
    soft_cross_entropy(logits, target)
}

/// Correct top-k predictions among the rows of `logits`.
pub fn correct_topk(logits: &Tensor<2>, labels: &[u32], k: usize) -> usize {
    let [n, classes] = logits.dims();
    let k = k.min(classes);
    let idx: Tensor<2, Int> = logits.clone().argsort_descending(1).slice([0..n, 0..k]);
    let idx = idx
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap_or_default();
    labels
        .iter()
        .enumerate()
        .filter(|(i, l)| idx[i * k..(i + 1) * k].contains(&(**l as i64)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn smoothed_cross_entropy_matches_a_hand_computation() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, 0.0, 0.0, 0.0, 1.0, 3.0], [2, 3]),
            &device,
        );
        let loss: f32 = cross_entropy(logits.clone(), &[0, 2], 0.1).into_scalar();
        // Row 0: log-softmax of (2, 0, 0); targets (0.9333, 0.0333, 0.0333).
        let lse0 = (2f64.exp() + 2.0).ln();
        let l0 = -(0.1 / 3.0 + 0.9) * (2.0 - lse0) - 2.0 * (0.1 / 3.0) * (0.0 - lse0);
        let lse1 = (1.0 + 1f64.exp() + 3f64.exp()).ln();
        let l1 = -(0.1 / 3.0) * ((0.0 - lse1) + (1.0 - lse1)) - (0.9 + 0.1 / 3.0) * (3.0 - lse1);
        assert!((loss as f64 - (l0 + l1) / 2.0).abs() < 1e-5, "{loss}");
        assert_eq!(correct_topk(&logits, &[0, 2], 1), 2);
        assert_eq!(correct_topk(&logits, &[1, 0], 1), 0);
        assert_eq!(correct_topk(&logits, &[1, 1], 2), 2);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 1], [2]), &device);
        assert_eq!(
            hits_topk(logits.clone(), labels.clone(), 1).into_scalar::<i64>(),
            0
        );
        assert_eq!(hits_topk(logits, labels, 2).into_scalar::<i64>(), 2);
    }

    #[test]
    fn kd_loss_is_zero_gradient_at_the_teacher_and_mixup_mixes() {
        let device = Device::flex();
        let t = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, 0.0], [2, 2]),
            &device,
        );
        // CE(p, p) = entropy(p): the minimum over students, reached at the teacher.
        let at = kd_loss(t.clone(), t.clone(), 2.0).into_scalar::<f32>();
        let off = kd_loss(t.clone().mul_scalar(-1.0), t, 2.0).into_scalar::<f32>();
        assert!(off > at + 0.1, "{at} {off}");
        let m = mixed_targets(&[0, 1], 0.75, &[1, 0], 2, 0.0, &device);
        let v = m.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(v, vec![0.75, 0.25, 0.25, 0.75]);
    }
}
