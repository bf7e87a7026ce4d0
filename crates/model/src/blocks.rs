//! Blocks built from the dynamic layers: depthwise-separable conv, inverted residual
//! (MBConv, optionally with SE) and the ResNet bottleneck. A block with an identity
//! shortcut adds its input to its output, so its output width is its input width.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::layers::{Act, ConvLayer, DynSe, Mode, WeightList};

/// The active widths of one block: hidden (`mid`) and output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockWidth {
    /// Hidden channels (MBConv: expanded width; bottleneck: its 1x1/3x3 width).
    pub mid: usize,
    /// Output channels.
    pub out: usize,
}

/// Depthwise kxk conv + BN + act, then pointwise 1x1 conv + BN (no activation).
#[derive(Module, Debug)]
pub struct DsConv {
    /// Depthwise conv layer.
    pub depth: ConvLayer,
    /// Pointwise conv layer.
    pub point: ConvLayer,
    /// Adds the input to the output.
    pub identity: bool,
}

impl DsConv {
    /// Runs with `out` output channels (must equal the input width if `identity`).
    pub fn forward(&self, x: Tensor<4>, out: usize, mode: Mode) -> Tensor<4> {
        let cin = x.dims()[1];
        let y = self.depth.forward(x.clone(), cin, mode);
        let y = self.point.forward(y, out, mode);
        if self.identity { y + x } else { y }
    }

    /// Multiply-adds and output size for `cin` input channels at `h x w`.
    pub fn macs(&self, cin: usize, out: usize, h: usize, w: usize) -> (u64, usize, usize) {
        let (m1, h, w) = self.depth.conv.macs(cin, cin, h, w);
        let (m2, h, w) = self.point.conv.macs(cin, out, h, w);
        (m1 + m2, h, w)
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, cin: usize, out: usize) {
        list.scope("depth", |l| self.depth.list(l, cin, cin));
        list.scope("point", |l| self.point.list(l, cin, out));
    }

    /// The plain block at the given widths.
    pub fn export(&self, cin: usize, out: usize) -> Self {
        Self {
            depth: self.depth.export(cin, cin),
            point: self.point.export(cin, out),
            identity: self.identity,
        }
    }
}

/// Inverted residual: 1x1 expand + BN + act, depthwise kxk + BN + act, optional SE,
/// 1x1 project + BN.
#[derive(Module, Debug)]
pub struct MbConv {
    /// Expanding 1x1 conv layer.
    pub inverted: ConvLayer,
    /// Depthwise conv layer.
    pub depth: ConvLayer,
    /// Squeeze-excite after the depthwise conv (MobileNetV3).
    pub se: Option<DynSe>,
    /// Projecting 1x1 conv layer.
    pub point: ConvLayer,
    /// Adds the input to the output.
    pub identity: bool,
}

/// ResNet bottleneck (torchvision v1.5: stride on the 3x3 conv), ReLU after the sum.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 conv layer, in -> mid.
    pub conv1: ConvLayer,
    /// 3x3 conv layer, mid -> mid, strided.
    pub conv2: ConvLayer,
    /// 1x1 conv layer, mid -> out, no activation.
    pub conv3: ConvLayer,
    /// Projection shortcut (1x1 strided conv + BN) where the shape changes.
    pub downsample: Option<ConvLayer>,
}

/// A block of the zoo.
#[derive(Module, Debug)]
pub enum Block {
    /// Inverted residual (MobileNetV2/V3, ProxylessNAS, MCUNet).
    MbConv(MbConv),
    /// ResNet bottleneck.
    Bottleneck(Bottleneck),
}

impl Block {
    /// Whether the output is added to the input (so the output width is the input width).
    pub fn identity(&self) -> bool {
        match self {
            Block::MbConv(b) => b.identity,
            Block::Bottleneck(b) => b.downsample.is_none(),
        }
    }

    /// Runs at the given widths.
    pub fn forward(&self, x: Tensor<4>, w: BlockWidth, mode: Mode) -> Tensor<4> {
        match self {
            Block::MbConv(b) => {
                let y = b.inverted.forward(x.clone(), w.mid, mode);
                let y = b.depth.forward(y, w.mid, mode);
                let y = match &b.se {
                    Some(se) => se.forward(y),
                    None => y,
                };
                let y = b.point.forward(y, w.out, mode);
                if b.identity { y + x } else { y }
            }
            Block::Bottleneck(b) => {
                let y = b.conv1.forward(x.clone(), w.mid, mode);
                let y = b.conv2.forward(y, w.mid, mode);
                let y = b.conv3.forward(y, w.out, mode);
                let shortcut = match &b.downsample {
                    Some(ds) => ds.forward(x, w.out, mode),
                    None => x,
                };
                Act::Relu.forward(y + shortcut)
            }
        }
    }

    /// Multiply-adds and output size for `cin` input channels at `h x w`.
    pub fn macs(&self, cin: usize, bw: BlockWidth, h: usize, w: usize) -> (u64, usize, usize) {
        let BlockWidth { mid, out } = bw;
        match self {
            Block::MbConv(b) => {
                let (m1, h1, w1) = b.inverted.conv.macs(cin, mid, h, w);
                let (m2, h2, w2) = b.depth.conv.macs(mid, mid, h1, w1);
                let m_se = b.se.as_ref().map_or(0, |se| se.macs(mid));
                let (m3, h3, w3) = b.point.conv.macs(mid, out, h2, w2);
                (m1 + m2 + m_se + m3, h3, w3)
            }
            Block::Bottleneck(b) => {
                let (m1, h1, w1) = b.conv1.conv.macs(cin, mid, h, w);
                let (m2, h2, w2) = b.conv2.conv.macs(mid, mid, h1, w1);
                let (m3, h3, w3) = b.conv3.conv.macs(mid, out, h2, w2);
                let m_ds = b
                    .downsample
                    .as_ref()
                    .map_or(0, |ds| ds.conv.macs(cin, out, h, w).0);
                (m1 + m2 + m3 + m_ds, h3, w3)
            }
        }
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, cin: usize, bw: BlockWidth) {
        let BlockWidth { mid, out } = bw;
        match self {
            Block::MbConv(b) => {
                list.scope("inverted", |l| b.inverted.list(l, cin, mid));
                list.scope("depth", |l| b.depth.list(l, mid, mid));
                if let Some(se) = &b.se {
                    list.scope("se", |l| se.list(l, mid));
                }
                list.scope("point", |l| b.point.list(l, mid, out));
            }
            Block::Bottleneck(b) => {
                list.scope("conv1", |l| b.conv1.list(l, cin, mid));
                list.scope("conv2", |l| b.conv2.list(l, mid, mid));
                list.scope("conv3", |l| b.conv3.list(l, mid, out));
                if let Some(ds) = &b.downsample {
                    list.scope("downsample", |l| ds.list(l, cin, out));
                }
            }
        }
    }

    /// The plain block at the given widths.
    pub fn export(&self, cin: usize, bw: BlockWidth) -> Self {
        let BlockWidth { mid, out } = bw;
        match self {
            Block::MbConv(b) => Block::MbConv(MbConv {
                inverted: b.inverted.export(cin, mid),
                depth: b.depth.export(mid, mid),
                se: b.se.as_ref().map(|se| se.export(mid)),
                point: b.point.export(mid, out),
                identity: b.identity,
            }),
            Block::Bottleneck(b) => Block::Bottleneck(Bottleneck {
                conv1: b.conv1.export(cin, mid),
                conv2: b.conv2.export(mid, mid),
                conv3: b.conv3.export(mid, out),
                downsample: b.downsample.as_ref().map(|ds| ds.export(cin, out)),
            }),
        }
    }

    /// The block's conv layers, in forward order.
    pub fn conv_layers(&self) -> Vec<&ConvLayer> {
        match self {
            Block::MbConv(b) => vec![&b.inverted, &b.depth, &b.point],
            Block::Bottleneck(b) => {
                let mut v = vec![&b.conv1, &b.conv2, &b.conv3];
                v.extend(&b.downsample);
                v
            }
        }
    }

    /// Reorders the hidden channels by importance (L1 norm of the input weights of the
    /// conv that reads them, descending), so the narrowest widths keep the most important
    /// channels. The block computes the same function afterwards.
    pub fn sort_channels(&mut self) {
        match self {
            Block::MbConv(b) => {
                let idx = b.point.conv.in_importance().argsort_descending(0);
                b.point.conv.permute_in(&idx);
                b.depth.permute_out(&idx);
                b.inverted.permute_out(&idx);
                if let Some(se) = &mut b.se {
                    se.permute(&idx);
                }
            }
            Block::Bottleneck(b) => {
                let idx = b.conv3.conv.in_importance().argsort_descending(0);
                b.conv3.conv.permute_in(&idx);
                b.conv2.permute_out(&idx);
                let idx = b.conv2.conv.in_importance().argsort_descending(0);
                b.conv2.conv.permute_in(&idx);
                b.conv1.permute_out(&idx);
            }
        }
    }

    /// The importance vectors that [`Block::sort_channels`] sorts by (for checks).
    pub fn importances(&self) -> Vec<Vec<f32>> {
        let read = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap_or_default();
        match self {
            Block::MbConv(b) => vec![read(b.point.conv.in_importance())],
            Block::Bottleneck(b) => vec![
                read(b.conv3.conv.in_importance()),
                read(b.conv2.conv.in_importance()),
            ],
        }
    }
}
