//! Activation functions of the zoo.

use burn::tensor::Tensor;
use burn::tensor::activation as a;
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
    /// Applies the activation.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Relu => a::relu(x),
            Act::Relu6 => a::relu6(x),
            Act::HSwish => a::hard_swish(x),
            Act::HSigmoid => a::hard_sigmoid(x, 1.0 / 6.0, 0.5),
        }
    }
}

/// Applies an optional activation.
pub fn apply<const D: usize>(act: Option<Act>, x: Tensor<D>) -> Tensor<D> {
    match act {
        Some(act) => act.forward(x),
        None => x,
    }
}
