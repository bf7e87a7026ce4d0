//! Losses of the official code: cross-entropy with label smoothing, and the soft-target
//! cross-entropy used for knowledge distillation.

use burn::tensor::activation::log_softmax;
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
    }
}
