//! The NetAug objective of one step (official `train_one_epoch`):
//! `L(W_t) + alpha * L([W_t, W_i])`, the target net at `min` and one augmented net,
//! back-propagated together into the shared weights before one optimizer step. One
//! function ([`netaug_loss`]) for every task; [`step_loss`] is it for a classifier.

use burn::tensor::Tensor;
use netaug_model::{Active, ActiveArch, Mode, ModelError, Net, Supernet};

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

/// The step's loss to back-propagate, the target net's alone, and what the target net's
/// pass gave besides (`out`: the logits of a classifier, for metrics).
pub struct StepLoss<O> {
    /// `L(target) + alpha * L(augmented)` (or `L(target)` for a baseline step).
    pub total: Tensor<1>,
    /// Loss of the target net alone.
    pub target: Tensor<1>,
    /// The target pass's by-product.
    pub out: O,
}

/// Selects the augmented sub-network of a step.
pub type Select<'a, N> = &'a mut dyn FnMut(&mut N) -> Result<(), ModelError>;

/// The NetAug objective of one step, for any supernet (official `train_one_epoch`): the
/// target net (`min`) scored by `loss`, plus, with `aug = Some((select, alpha))`, `alpha`
/// times the loss of the augmented net `select` activates. `loss` gets the net and
/// whether it is the augmented one. The target is active on return.
pub fn netaug_loss<N: Supernet, O>(
    net: &mut N,
    mut loss: impl FnMut(&N, bool) -> (Tensor<1>, O),
    aug: Option<(Select<'_, N>, f64)>,
) -> Result<StepLoss<O>, ModelError> {
    net.set_active(Active::Min);
    let (target, out) = loss(net, false);
    let total = match aug {
        Some((select, alpha)) => {
            select(net)?;
            let (augmented, _) = loss(net, true);
            net.set_active(Active::Min);
            target.clone() + augmented.mul_scalar(alpha)
        }
        None => target.clone(),
    };
    Ok(StepLoss { total, target, out })
}

/// The loss of one classification step ([`netaug_loss`] of `net` on `images`); with
/// `aug = Some((arch, alpha))` the augmented sub-network is `arch`. `out` holds the target
/// net's logits.
pub fn step_loss(
    net: &mut Net,
    images: Tensor<4>,
    objective: &Objective,
    aug: Option<(ActiveArch, f64)>,
) -> Result<StepLoss<Tensor<2>>, ModelError> {
    let loss = |n: &Net, augmented: bool| {
        let logits = n.forward(images.clone(), Mode::Train);
        (objective.loss(logits.clone(), augmented), logits)
    };
    match aug {
        Some((arch, alpha)) => {
            let mut arch = Some(arch);
            let mut select = |n: &mut Net| match arch.take() {
                Some(a) => n.set_active_arch(a),
                None => Ok(()),
            };
            netaug_loss(net, loss, Some((&mut select, alpha)))
        }
        None => netaug_loss(net, loss, None),
    }
}
