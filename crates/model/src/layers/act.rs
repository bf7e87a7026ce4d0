//! Activation functions of the zoo.

use burn::tensor::Tensor;
use netaug_kernels::{Activation, activation};
use serde::{Deserialize, Serialize};

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// max(0, x)
    Relu,
    /// min(max(0, x), 6)
    Relu6,
    /// x * relu6(x + 3) / 6 (MobileNetV3)
    HSwish,
    /// relu6(x + 3) / 6 (MobileNetV3)
    HSigmoid,
}

impl Act {
    /// Applies the activation (netaug-kernels: one pass forward and backward).
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        let act = match self {
            Act::Relu => Activation::Relu,
            Act::Relu6 => Activation::Relu6,
            Act::HSwish => Activation::HardSwish,
            Act::HSigmoid => Activation::HardSigmoid,
        };
        activation(x, act)
    }
}

/// Applies an optional activation.
pub fn apply<const D: usize>(act: Option<Act>, x: Tensor<D>) -> Tensor<D> {
    match act {
        Some(act) => act.forward(x),
        None => x,
    }
}
