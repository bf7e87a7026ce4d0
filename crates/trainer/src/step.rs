//! The NetAug objective of one step (official `train_one_epoch`):
//! `L(W_t) + alpha * L([W_t, W_i])`, the target net at `min` and one augmented net,
//! back-propagated together into the shared weights before one optimizer step.

use burn::tensor::Tensor;
use netaug_model::{ActiveArch, Mode, Net};

use crate::loss::cross_entropy;

/// The step's loss to back-propagate, and the target net's logits (for metrics).
pub struct StepLoss {
    /// `L(target) + alpha * L(augmented)` (or `L(target)` for a baseline step).
    pub total: Tensor<1>,
    /// Loss of the target net alone.
    pub target: Tensor<1>,
    /// Logits of the target net.
    pub logits: Tensor<2>,
}

/// Computes the loss of one step. With `aug = Some(arch)` the augmented sub-network
/// `arch` adds `alpha` times its loss; the target (`min`) widths are active on return.
pub fn step_loss(
    net: &mut Net,
    images: Tensor<4>,
    labels: &[u32],
    smoothing: f64,
    aug: Option<(ActiveArch, f64)>,
) -> Result<StepLoss, netaug_model::ModelError> {
    net.set_active(netaug_model::Active::Min);
    let target_arch = net.active().clone();
    let logits = net.forward(images.clone(), Mode::Train);
    let target = cross_entropy(logits.clone(), labels, smoothing);
    let total = match aug {
        Some((arch, alpha)) => {
            net.set_active_arch(arch)?;
            let aug_logits = net.forward(images, Mode::Train);
            net.set_active_arch(target_arch)?;
            target.clone() + cross_entropy(aug_logits, labels, smoothing).mul_scalar(alpha)
        }
        None => target.clone(),
    };
    Ok(StepLoss {
        total,
        target,
        logits,
    })
}
