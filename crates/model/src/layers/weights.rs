//! What every dynamic layer shares: the batch-norm mode, references to weights and the
//! walk that lists the active slice of each.

use burn::module::Param;
use burn::tensor::{Int, Tensor};

/// Whether batch norm uses batch statistics (and updates its running ones) or the running
/// statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics updated with momentum.
    Train,
    /// Running statistics.
    Eval,
    /// Batch statistics, gathered for BN re-calibration; running statistics untouched
    /// until [`crate::Net::calibrate_bn`] finishes.
    Calibrate,
}

/// A reference to one weight of a network, of any rank.
#[derive(Clone, Copy, Debug)]
pub enum ParamRef<'a> {
    /// A vector (BN gamma/beta, biases).
    R1(&'a Param<Tensor<1>>),
    /// A matrix (linear weights).
    R2(&'a Param<Tensor<2>>),
    /// A conv kernel.
    R4(&'a Param<Tensor<4>>),
}

impl ParamRef<'_> {
    /// The full (widest) shape of the weight.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamRef::R1(p) => p.val().dims().to_vec(),
            ParamRef::R2(p) => p.val().dims().to_vec(),
            ParamRef::R4(p) => p.val().dims().to_vec(),
        }
    }
}

/// One trainable weight with the shape of the leading slice the active sub-network uses.
#[derive(Clone, Debug)]
pub struct ActiveWeight<'a> {
    /// Dotted path, e.g. `blocks.3.depth.conv.weight`.
    pub name: String,
    /// The weight.
    pub param: ParamRef<'a>,
    /// Shape of the leading slice in use.
    pub active: Vec<usize>,
}

/// Collects [`ActiveWeight`]s while walking a network.
pub(crate) struct WeightList<'a> {
    pub(crate) out: Vec<ActiveWeight<'a>>,
    prefix: Vec<String>,
}

impl<'a> WeightList<'a> {
    pub(crate) fn new() -> Self {
        Self {
            out: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// Runs `f` with `name` pushed on the path.
    pub(crate) fn scope(&mut self, name: impl Into<String>, f: impl FnOnce(&mut Self)) {
        self.prefix.push(name.into());
        f(self);
        self.prefix.pop();
    }

    pub(crate) fn push(&mut self, name: &str, param: ParamRef<'a>, active: Vec<usize>) {
        let mut path = self.prefix.join(".");
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        self.out.push(ActiveWeight {
            name: path,
            param,
            active,
        });
    }
}

/// A new trainable parameter holding a detached copy of `t`.
pub(crate) fn fresh<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t.detach())
}

/// `p` with its entries reordered along `dim`, keeping its id (optimizer state follows it).
pub(crate) fn permute<const D: usize>(
    p: &Param<Tensor<D>>,
    dim: usize,
    idx: &Tensor<1, Int>,
) -> Param<Tensor<D>> {
    let idx = idx.clone().inner();
    // On the inner backend: an autodiff `select` would tie the new leaf to a node of a
    // graph that the next backward finds already consumed.
    p.clone().map(|t| {
        let (autodiff, grad) = (t.is_autodiff(), t.is_require_grad());
        let t = t.inner().select(dim, idx);
        match (autodiff, grad) {
            (true, true) => t.autodiff().require_grad(),
            (true, false) => t.autodiff(),
            _ => t,
        }
    })
}
