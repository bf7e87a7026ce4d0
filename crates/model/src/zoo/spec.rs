//! Plain descriptions of networks: widths, kernels, strides, activations. A zoo net, an
//! exported sub-network and a saved model are all described by a [`NetSpec`].

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::layers::Act;

/// A network of the zoo's shape: stem, optional depthwise-separable block, a chain of
/// blocks, optional 1x1 conv, global pooling, optional 1x1 conv, classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Zoo name (`mbv2-0.35`, ...); an exported sub-network keeps its supernet's name.
    pub name: String,
    /// Image channels (3 for RGB, 1 for grayscale).
    pub in_channels: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// First conv.
    pub stem: StemSpec,
    /// Depthwise-separable block after the stem (mobile nets).
    pub first: Option<DsSpec>,
    /// The blocks, in order (the official "stages" and the head's inverted block).
    pub blocks: Vec<BlockSpec>,
    /// 1x1 conv + BN + act before pooling.
    pub head_conv: Option<HeadConvSpec>,
    /// 1x1 conv with bias, no BN, after pooling (MobileNetV3).
    pub post_pool_conv: Option<HeadConvSpec>,
}

/// The stem conv (+ BN + act), optionally followed by 3x3/2 max pooling (ResNet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemSpec {
    /// Output channels.
    pub out: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Activation.
    pub act: Act,
    /// 3x3 stride-2 max pooling after the stem.
    pub max_pool: bool,
}

/// Depthwise-separable block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsSpec {
    /// Output channels.
    pub out: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Activation after the depthwise conv.
    pub act: Act,
    /// Identity shortcut (MobileNetV3).
    pub identity: bool,
}

/// Kind of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Inverted residual.
    MbConv,
    /// ResNet bottleneck.
    Bottleneck,
}

/// One block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// Kind.
    pub kind: BlockKind,
    /// Input channels.
    pub in_ch: usize,
    /// Hidden channels.
    pub mid: usize,
    /// Output channels.
    pub out: usize,
    /// Kernel of the spatial (depthwise or 3x3) conv.
    pub kernel: usize,
    /// Stride of the spatial conv.
    pub stride: usize,
    /// Activation of the expand and spatial convs.
    pub act: Act,
    /// Squeeze-excite after the depthwise conv.
    pub se: Option<SeSpec>,
    /// Identity shortcut.
    pub identity: bool,
}

/// Squeeze-excite layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeSpec {
    /// Hidden channels.
    pub hidden: usize,
    /// Activation between its convs.
    pub act: Act,
}

/// A 1x1 conv of the head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConvSpec {
    /// Output channels.
    pub out: usize,
    /// Activation.
    pub act: Act,
}

impl NetSpec {
    /// Checks that the description can be built: positive widths, odd kernels, positive
    /// strides, each block reading what the previous one writes, identity shortcuts only
    /// where the shape is unchanged.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: String| {
            Err(ModelError::BadArchitecture(format!(
                "{}: {what}",
                self.name
            )))
        };
        let conv_ok = |k: usize, s: usize| k % 2 == 1 && (1..=4).contains(&s);
        if self.in_channels == 0 || self.classes == 0 || self.stem.out == 0 {
            return bad("zero input channels, classes or stem width".into());
        }
        if !conv_ok(self.stem.kernel, self.stem.stride) {
            return bad("stem kernel must be odd and stride 1 to 4".into());
        }
        let mut width = self.stem.out;
        if let Some(f) = &self.first {
            if f.out == 0 || !conv_ok(f.kernel, 1) || (f.identity && f.out != width) {
                return bad("bad depthwise-separable block".into());
            }
            width = f.out;
        }
        for (i, b) in self.blocks.iter().enumerate() {
            if b.in_ch != width {
                return bad(format!(
                    "block {i} reads {} channels, gets {width}",
                    b.in_ch
                ));
            }
            if b.mid == 0 || b.out == 0 || !conv_ok(b.kernel, b.stride) {
                return bad(format!("block {i}: zero width, even kernel or bad stride"));
            }
            if b.identity && (b.stride != 1 || b.in_ch != b.out) {
                return bad(format!("block {i}: identity shortcut on a shape change"));
            }
            if b.se.as_ref().is_some_and(|se| se.hidden == 0) {
                return bad(format!("block {i}: zero SE width"));
            }
            width = b.out;
        }
        if [&self.head_conv, &self.post_pool_conv]
            .iter()
            .any(|h| h.as_ref().is_some_and(|h| h.out == 0))
        {
            return bad("zero head width".into());
        }
        Ok(())
    }

    /// Channels entering the classifier.
    pub fn feature_width(&self) -> usize {
        if let Some(c) = &self.post_pool_conv {
            c.out
        } else if let Some(c) = &self.head_conv {
            c.out
        } else if let Some(b) = self.blocks.last() {
            b.out
        } else if let Some(f) = &self.first {
            f.out
        } else {
            self.stem.out
        }
    }
}
