//! Dynamic linear layer (the classifier).

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use super::weights::{ParamRef, WeightList, fresh};
use crate::init::Initializer;
use crate::ops;

/// `y = x @ weight[:, :in]^T + bias`, weight in PyTorch's `[out, in_max]` layout.
#[derive(Module, Debug)]
pub struct DynLinear {
    /// `[out, in_max]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl DynLinear {
    /// A new layer: trunc-normal(0.02) weight, zero bias.
    pub fn new(init: &mut Initializer, in_max: usize, out: usize) -> Self {
        Self {
            weight: init.linear([out, in_max]),
            bias: init.constant(out, 0.0),
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.val().dims()[0]
    }

    /// Runs on `x` (`[N, in]`).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let cin = x.dims()[1];
        let out = self.out_features();
        ops::linear(
            x,
            self.weight.val().slice([0..out, 0..cin]),
            Some(self.bias.val()),
        )
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, cin: usize) {
        let out = self.out_features();
        list.push("weight", ParamRef::R2(&self.weight), vec![out, cin]);
        list.push("bias", ParamRef::R1(&self.bias), vec![out]);
    }

    /// The plain layer for `cin` inputs.
    pub fn export(&self, cin: usize) -> Self {
        let out = self.out_features();
        Self {
            weight: fresh(self.weight.val().slice([0..out, 0..cin])),
            bias: fresh(self.bias.val()),
        }
    }
}
