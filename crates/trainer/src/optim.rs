//! The official optimizer: SGD, momentum 0.9, Nesterov, weight decay on conv and linear
//! weights only (BN parameters and biases get none).

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};

/// Parameters without weight decay: BN scale/shift and every bias (by parameter path).
const NO_DECAY: &str = r"(^|\.)(gamma|beta|bias)$";

fn sgd(weight_decay: Option<f64>) -> SgdConfig {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
        }))
        .with_weight_decay(weight_decay.map(|w| WeightDecayConfig { penalty: w as f32 }))
}

/// The optimizer for a run with `weight_decay`.
pub fn optimizer(weight_decay: f64) -> ModuleOptimizer {
    let no_decay = ParamGroup::from_regex(NO_DECAY).expect("a valid pattern");
    sgd(Some(weight_decay))
        .init()
        .with_group(no_decay, sgd(None).build(), None)
}
