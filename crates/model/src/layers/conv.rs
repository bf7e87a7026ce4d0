//! Dynamic 2-D convolution (dense or depthwise) and the conv + BN + activation layer.

use burn::module::{Module, Param};
use burn::tensor::{Int, Tensor};

use super::act::{self, Act};
use super::bn::DynBatchNorm2d;
use super::weights::{Mode, ParamRef, WeightList, fresh, permute};
use crate::init::Initializer;
use crate::ops;

/// A convolution whose weight is `[out_max, in_max, k, k]` (depthwise: `[c_max, 1, k, k]`)
/// and whose forward uses `weight[:out, :in]` for the input's channel count `in`.
#[derive(Module, Debug)]
pub struct DynConv2d {
    /// The widest kernel.
    pub weight: Param<Tensor<4>>,
    /// Optional bias `[out_max]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Spatial stride.
    pub stride: usize,
    /// One filter per channel (groups = channels); the output width is the input width.
    pub depthwise: bool,
}

/// Shape and extras of a conv layer at its widest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvCfg {
    /// Widest input width (ignored when depthwise).
    pub in_max: usize,
    /// Widest output width.
    pub out_max: usize,
    /// Kernel size (odd).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// One filter per channel.
    pub depthwise: bool,
    /// Batch norm after the conv; without it the conv has a bias.
    pub bn: bool,
    /// Activation at the end.
    pub act: Option<Act>,
}

impl ConvCfg {
    /// A dense kxk conv with BN and no activation.
    pub fn dense(in_max: usize, out_max: usize, kernel: usize, stride: usize) -> Self {
        Self {
            in_max,
            out_max,
            kernel,
            stride,
            depthwise: false,
            bn: true,
            act: None,
        }
    }

    /// A 1x1 conv with BN and no activation.
    pub fn pointwise(in_max: usize, out_max: usize) -> Self {
        Self::dense(in_max, out_max, 1, 1)
    }

    /// A depthwise kxk conv over up to `channels` channels, with BN.
    pub fn depthwise(channels: usize, kernel: usize, stride: usize) -> Self {
        Self {
            depthwise: true,
            ..Self::dense(channels, channels, kernel, stride)
        }
    }

    /// The same with an activation at the end.
    pub fn act(self, act: Act) -> Self {
        Self {
            act: Some(act),
            ..self
        }
    }

    /// The same without BN (the conv gets a bias).
    pub fn without_bn(self) -> Self {
        Self { bn: false, ..self }
    }
}

impl DynConv2d {
    /// A new conv (weights only: BN and activation belong to [`ConvLayer`]).
    pub fn new(init: &mut Initializer, cfg: &ConvCfg) -> Self {
        let in_per_group = if cfg.depthwise { 1 } else { cfg.in_max };
        Self {
            weight: init.conv([cfg.out_max, in_per_group, cfg.kernel, cfg.kernel]),
            bias: (!cfg.bn).then(|| init.constant(cfg.out_max, 0.0)),
            stride: cfg.stride,
            depthwise: cfg.depthwise,
        }
    }

    /// Kernel size.
    pub fn kernel(&self) -> usize {
        self.weight.val().dims()[2]
    }

    /// Widest output width.
    pub fn max_out(&self) -> usize {
        self.weight.val().dims()[0]
    }

    /// Runs on `x` (`[N, in, H, W]`) with `out` output channels (ignored when depthwise).
    pub fn forward(&self, x: Tensor<4>, out: usize) -> Tensor<4> {
        let cin = x.dims()[1];
        let (out, cin_w, groups) = self.widths(cin, out);
        let weight = self.weight.val().slice([0..out, 0..cin_w]);
        let bias = self.bias.as_ref().map(|b| b.val().slice([0..out]));
        ops::conv2d(x, weight, bias, self.stride, groups)
    }

    /// (out channels, kernel input channels, groups) for an input of `cin` channels.
    fn widths(&self, cin: usize, out: usize) -> (usize, usize, usize) {
        if self.depthwise {
            (cin, 1, cin)
        } else {
            (out, cin, 1)
        }
    }

    /// Output spatial size for an input of `h` pixels.
    pub fn out_size(&self, h: usize) -> usize {
        let k = self.kernel();
        (h + 2 * (k / 2) - k) / self.stride + 1
    }

    /// Multiply-adds for one image of `h x w` pixels, and the output size.
    pub fn macs(&self, cin: usize, out: usize, h: usize, w: usize) -> (u64, usize, usize) {
        let (out, cin_w, _) = self.widths(cin, out);
        let k = self.kernel();
        let (ho, wo) = (self.out_size(h), self.out_size(w));
        ((ho * wo * out * cin_w * k * k) as u64, ho, wo)
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, cin: usize, out: usize) {
        let (out, cin_w, _) = self.widths(cin, out);
        let k = self.kernel();
        list.push("weight", ParamRef::R4(&self.weight), vec![out, cin_w, k, k]);
        if let Some(b) = &self.bias {
            list.push("bias", ParamRef::R1(b), vec![out]);
        }
    }

    /// The plain layer at the given widths (fresh parameters holding copies of the slice).
    pub fn export(&self, cin: usize, out: usize) -> Self {
        let (out, cin_w, _) = self.widths(cin, out);
        Self {
            weight: fresh(self.weight.val().slice([0..out, 0..cin_w])),
            bias: self.bias.as_ref().map(|b| fresh(b.val().slice([0..out]))),
            stride: self.stride,
            depthwise: self.depthwise,
        }
    }

    /// Reorders output channels (and the bias) by `idx`.
    pub(crate) fn permute_out(&mut self, idx: &Tensor<1, Int>) {
        self.weight = permute(&self.weight, 0, idx);
        if let Some(b) = &self.bias {
            self.bias = Some(permute(b, 0, idx));
        }
    }

    /// Reorders input channels by `idx` (dense convs only).
    pub(crate) fn permute_in(&mut self, idx: &Tensor<1, Int>) {
        debug_assert!(!self.depthwise);
        self.weight = permute(&self.weight, 1, idx);
    }

    /// L1 norm of the weight per input channel: the importance used for channel sorting.
    pub(crate) fn in_importance(&self) -> Tensor<1> {
        let w = self.weight.val().detach().abs();
        let [o, i, k, _] = w.dims();
        w.swap_dims(0, 1)
            .reshape([i, o * k * k])
            .sum_dim(1)
            .reshape([i])
    }
}

/// conv -> optional BN -> optional activation (the official `ConvLayer`).
#[derive(Module, Debug)]
pub struct ConvLayer {
    /// The convolution.
    pub conv: DynConv2d,
    /// Batch norm after the conv (absent for MobileNetV3's last conv).
    pub bn: Option<DynBatchNorm2d>,
    /// Activation after BN.
    #[module(skip)]
    pub act: Option<Act>,
}

impl ConvLayer {
    /// A new layer.
    pub fn new(init: &mut Initializer, cfg: ConvCfg) -> Self {
        Self {
            conv: DynConv2d::new(init, &cfg),
            bn: cfg.bn.then(|| DynBatchNorm2d::new(init, cfg.out_max)),
            act: cfg.act,
        }
    }

    /// Runs with `out` output channels.
    pub fn forward(&self, x: Tensor<4>, out: usize, mode: Mode) -> Tensor<4> {
        let x = self.conv.forward(x, out);
        let x = match &self.bn {
            Some(bn) => bn.forward(x, mode),
            None => x,
        };
        act::apply(self.act, x)
    }

    /// Output channels for an input of `cin` channels and requested width `out`.
    pub fn out_width(&self, cin: usize, out: usize) -> usize {
        if self.conv.depthwise { cin } else { out }
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, cin: usize, out: usize) {
        let width = self.out_width(cin, out);
        list.scope("conv", |l| self.conv.list(l, cin, out));
        if let Some(bn) = &self.bn {
            list.scope("bn", |l| bn.list(l, width));
        }
    }

    /// The plain layer at the given widths.
    pub fn export(&self, cin: usize, out: usize) -> Self {
        let width = self.out_width(cin, out);
        Self {
            conv: self.conv.export(cin, out),
            bn: self.bn.as_ref().map(|bn| bn.export(width)),
            act: self.act,
        }
    }

    /// Reorders output channels (conv and BN).
    pub(crate) fn permute_out(&mut self, idx: &Tensor<1, Int>) {
        self.conv.permute_out(idx);
        if let Some(bn) = &mut self.bn {
            bn.permute(idx);
        }
    }
}
