//! The NetAug objective of one step (official `train_one_epoch`):
//! `L(W_t) + alpha * L([W_t, W_i])`, the target net at `min` and one augmented net,
//! back-propagated together into the shared weights before one optimizer step.

use burn::tensor::Tensor;
use netaug_model::{ActiveArch, Mode, Net};

use crate::loss::{kd_loss, smoothed_targets, soft_cross_entropy};

/// What a step's logits are scored against: (smoothed, possibly mixed) targets and, for
/// knowledge distillation, the teacher's soft targets.
pub struct Objective {
    /// Target distribution per image, `[N, classes]`.
    pub targets: Tensor<2>,
    /// Distillation from a teacher.
    pub distill: Option<Distill>,
}

/// The distillation term of an [`Objective`].
pub struct Distill {
    /// The teacher's logits, `[N, classes]` (no gradient).
    pub teacher_logits: Tensor<2>,
    /// Softmax temperature.
    pub temperature: f64,
    /// Weight of the distillation term; the hard term gets `1 - weight`.
    pub weight: f64,
    /// Whether the augmented net is distilled too.
    pub on_augmented: bool,
}

impl Objective {
    /// Label-smoothed hard targets for `labels`.
    pub fn hard(
        labels: &[u32],
        classes: usize,
        smoothing: f64,
        device: &burn::tensor::Device,
    ) -> Self {
        Self {
            targets: smoothed_targets(labels, classes, smoothing, device),
            distill: None,
        }
    }

    /// The loss of `logits`; `augmented` says whether they come from the augmented net.
    pub fn loss(&self, logits: Tensor<2>, augmented: bool) -> Tensor<1> {
        let hard = soft_cross_entropy(logits.clone(), self.targets.clone());
        match &self.distill {
            Some(d) if !augmented || d.on_augmented => {
                let soft = kd_loss(logits, d.teacher_logits.clone(), d.temperature);
                hard.mul_scalar(1.0 - d.weight) + soft.mul_scalar(d.weight)
            }
            _ => hard,
        }
    }
}

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
    objective: &Objective,
    aug: Option<(ActiveArch, f64)>,
) -> Result<StepLoss, netaug_model::ModelError> {
    net.set_active(netaug_model::Active::Min);
    let target_arch = net.active().clone();
    let logits = net.forward(images.clone(), Mode::Train);
    let target = objective.loss(logits.clone(), false);
    let total = match aug {
        Some((arch, alpha)) => {
            net.set_active_arch(arch)?;
            let aug_logits = net.forward(images, Mode::Train);
            net.set_active_arch(target_arch)?;
            target.clone() + objective.loss(aug_logits, true).mul_scalar(alpha)
        }
        None => target.clone(),
    };
    Ok(StepLoss {
        total,
        target,
        logits,
    })
}
