//! Evaluation: top-1 / top-5 and the plain cross-entropy of a network on a loader, with
//! the sums kept on the device and read once at the end.

use burn::tensor::{Device, Int, Tensor, TensorData};
use netaug_data::{Batch, Loader};
use netaug_model::{Mode, Net};
use serde::Serialize;

use crate::error::TrainError;
use crate::loss::{cross_entropy, hits_topk};
use crate::observer::Observer;

/// Accuracies in percent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EvalResult {
    /// Top-1 (percent).
    pub top1: f64,
    /// Top-5 (percent).
    pub top5: f64,
    /// Mean cross-entropy (no smoothing).
    pub loss: f64,
    /// Images evaluated.
    pub images: usize,
}

/// The images and labels of a loader batch as tensors on `device`.
pub fn to_device(batch: Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let n = batch.labels.len();
    let images = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
    let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
    (images, labels)
}

/// Evaluates the active sub-network of `net` (BN in eval mode) on every batch of `loader`,
/// shown to `observer` as the progress phase `phase` (`val`, `test`, ...).
pub fn evaluate(
    net: &Net,
    loader: &Loader,
    device: &Device,
    observer: &mut dyn Observer,
    phase: &str,
) -> Result<EvalResult, TrainError> {
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    let mut top1 = Tensor::<1, Int>::zeros([1], device);
    let mut top5 = Tensor::<1, Int>::zeros([1], device);
    let mut images = 0;
    observer.phase(phase, loader.batches());
    for (i, batch) in loader.epoch(0).enumerate() {
        let batch = batch?;
        let n = batch.labels.len();
        let labels_host = batch.labels.clone();
        let (x, labels) = to_device(batch, device);
        let logits = net.forward(x.detach(), Mode::Eval).detach();
        loss_sum = loss_sum + cross_entropy(logits.clone(), &labels_host, 0.0).mul_scalar(n as f64);
        top1 = top1 + hits_topk(logits.clone(), labels.clone(), 1);
        top5 = top5 + hits_topk(logits, labels, 5);
        images += n;
        observer.advance(i + 1, None);
    }
    observer.finish_phase();
    let read = |t: Tensor<1>| t.into_scalar::<f64>();
    let count = |t: Tensor<1, Int>| t.into_scalar::<i64>() as f64;
    let denom = images.max(1) as f64;
    Ok(EvalResult {
        top1: 100.0 * count(top1) / denom,
        top5: 100.0 * count(top5) / denom,
        loss: read(loss_sum) / denom,
        images,
    })
}
