//! Dynamic squeeze-and-excitation (MobileNetV3).

use burn::module::Module;
use burn::tensor::{Int, Tensor};

use super::act::{self, Act};
use super::conv::{ConvCfg, DynConv2d};
use super::weights::WeightList;
use crate::divisible::{make_divisible, round_half_even};
use crate::init::Initializer;
use crate::ops;

/// The SE layer's smallest hidden width (official `min_dim`).
const SE_MIN_DIM: f64 = 16.0;

/// `x * h_sigmoid(expand(act(reduce(pool(x)))))`; the hidden width follows the input width
/// at a fixed reduction ratio, as the official `DynamicSE`.
#[derive(Module, Debug)]
pub struct DynSe {
    /// 1x1 conv C -> hidden, with bias.
    pub reduce: DynConv2d,
    /// 1x1 conv hidden -> C, with bias.
    pub expand: DynConv2d,
    /// C / hidden of the widest layer (the official `DynamicSE.reduction`).
    pub reduction: f64,
    /// Activation between the two convs.
    #[module(skip)]
    pub act: Act,
}

impl DynSe {
    /// A new layer for up to `c_max` channels; `reduction` = base C / base hidden (+1e-10).
    /// As the official `DynamicSE`, the widest hidden width is `max(round(c_max /
    /// reduction), 16)` and the ratio of every narrower width is taken from the widest
    /// layer (`c_max / hidden_max`), not from the base layer.
    pub fn new(init: &mut Initializer, c_max: usize, reduction: f64, act: Act) -> Self {
        let hidden_max =
            (round_half_even(c_max as f64 / reduction) as f64).max(SE_MIN_DIM) as usize;
        Self {
            reduce: DynConv2d::new(init, &ConvCfg::pointwise(c_max, hidden_max).without_bn()),
            expand: DynConv2d::new(init, &ConvCfg::pointwise(hidden_max, c_max).without_bn()),
            reduction: c_max as f64 / hidden_max as f64,
            act,
        }
    }

    /// Hidden width for `c` input channels.
    pub fn hidden(&self, c: usize) -> usize {
        hidden_width(c, self.reduction)
    }

    /// Runs on `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.dims()[1];
        let att = ops::global_avg_pool(x.clone());
        let att = self.reduce.forward(att, self.hidden(c));
        let att = act::apply(Some(self.act), att);
        let att = self.expand.forward(att, c);
        let att = Act::HSigmoid.forward(att);
        x * att
    }

    /// Multiply-adds of the two 1x1 convs (on the pooled 1x1 map). The channel scaling
    /// is not a conv or linear MAC and is not counted, as in the paper's table.
    pub fn macs(&self, c: usize) -> u64 {
        (2 * c * self.hidden(c)) as u64
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, c: usize) {
        let hidden = self.hidden(c);
        list.scope("reduce", |l| self.reduce.list(l, c, hidden));
        list.scope("expand", |l| self.expand.list(l, hidden, c));
    }

    /// The plain layer for `c` channels.
    pub fn export(&self, c: usize) -> Self {
        let hidden = self.hidden(c);
        Self {
            reduce: self.reduce.export(c, hidden),
            expand: self.expand.export(hidden, c),
            // Keeps hidden(c) unchanged on the exported layer.
            reduction: c as f64 / hidden as f64 + 1e-10,
            act: self.act,
        }
    }

    /// Follows a reordering of the block's channels, then sorts the hidden units by the L1
    /// norm of the expand conv's input weights.
    pub(crate) fn permute(&mut self, idx: &Tensor<1, Int>) {
        self.expand.permute_out(idx);
        self.reduce.permute_in(idx);
        let hidden_idx = self.expand.in_importance().argsort_descending(0);
        self.expand.permute_in(&hidden_idx);
        self.reduce.permute_out(&hidden_idx);
    }
}

/// The official `active_mid_channels`: `make_divisible(max(C / r, 16), 1)`.
fn hidden_width(c: usize, reduction: f64) -> usize {
    make_divisible((c as f64 / reduction).max(SE_MIN_DIM), 1)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn narrower_hidden_widths_follow_the_widest_layers_ratio() {
        let device = Device::flex();
        let mut init = Initializer::new(Default::default(), 0, &device);
        // Base layer 88 -> 24; widest 739 channels: hidden round(739 / 3.667) = 202.
        let se = DynSe::new(&mut init, 739, 88.0 / 24.0 + 1e-10, Act::Relu);
        assert_eq!(se.hidden(739), 202);
        // 500 / (739 / 202) = 136.67 -> 137 (the base ratio would give 136.36 -> 136).
        assert_eq!(se.hidden(500), 137);
        assert_eq!(se.hidden(20), 16, "never below 16");
    }
}
