//! The forward pass of the active sub-network: logits, and the feature maps a detector
//! takes from its backbone.

use burn::tensor::Tensor;

use super::supernet::Net;

/// A point of the net a feature map can be taken from ([`Net::feature_info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureInfo {
    /// Output stride there: input side / feature map side.
    pub reduction: usize,
    /// Channels of the active sub-network there.
    pub channels: usize,
    /// Index of the block whose output it is.
    pub block: usize,
}
use crate::layers::Mode;
use crate::ops;
use crate::regularize;

impl Net {
    /// Logits `[N, classes]` of the active sub-network for images `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<2> {
        let a = &self.active;
        let mut x = self.forward_stem(x, mode);
        let train = mode == Mode::Train;
        let drop_block = self.stochastic.dropblock.filter(|_| train);
        let mut stride = self.stem_stride();
        for ((block, w), spec) in self.blocks.iter().zip(&a.blocks).zip(&self.spec.blocks) {
            x = block.forward(x, *w, mode);
            stride *= spec.stride;
            // DropBlock on the last two stages (output stride 16 and 32), as its paper.
            if let Some(d) = drop_block.filter(|_| stride >= 16) {
                x = regularize::dropblock(x, d);
            }
        }
        if let (Some(conv), Some(out)) = (&self.head_conv, a.head_conv) {
            x = conv.forward(x, out, mode);
        }
        x = ops::global_avg_pool(x);
        if let (Some(conv), Some(out)) = (&self.post_pool_conv, a.post_pool_conv) {
            x = conv.forward(x, out, mode);
        }
        let [n, c, _, _] = x.dims();
        let mut x = x.reshape([n, c]);
        if train {
            x = regularize::dropout(x, self.stochastic.dropout);
        }
        self.classifier.forward(x)
    }

    /// Stem, its max pool and the depthwise-separable block: what runs before the blocks.
    fn forward_stem(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let a = &self.active;
        let mut x = self.stem.forward(x, a.stem, mode);
        if self.spec.stem.max_pool {
            x = ops::max_pool_3x3_s2(x);
        }
        if let (Some(first), Some(out)) = (&self.first, a.first) {
            x = first.forward(x, out, mode);
        }
        x
    }

    /// Output stride of [`Net::forward_stem`].
    fn stem_stride(&self) -> usize {
        self.spec.stem.stride * if self.spec.stem.max_pool { 2 } else { 1 }
    }

    /// Where feature maps can be taken from (timm's `feature_info`): the output of the
    /// last block of each stage (the blocks at one output stride), shallowest first, with
    /// the active sub-network's channels there.
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        let blocks = &self.spec.blocks;
        let mut reduction = self.stem_stride();
        let mut info = Vec::new();
        for (i, spec) in blocks.iter().enumerate() {
            reduction *= spec.stride;
            if blocks.get(i + 1).is_none_or(|next| next.stride > 1) {
                info.push(FeatureInfo {
                    reduction,
                    channels: self.active.blocks[i].out,
                    block: i,
                });
            }
        }
        info
    }

    /// For each of `strides` the net reaches, in the order asked: (stride, index of the
    /// last block at that stride).
    fn feature_blocks(&self, strides: &[usize]) -> Vec<(usize, usize)> {
        let info = self.feature_info();
        strides
            .iter()
            .filter_map(|&s| info.iter().find(|f| f.reduction == s))
            .map(|f| (f.reduction, f.block))
            .collect()
    }

    /// Feature maps of the active sub-network at the output strides `strides` (e.g. 8,
    /// 16, 32: a detector's backbone): for each, the output of the last block at that
    /// stride, in the order asked. A stride the net does not reach is left out.
    pub fn features(&self, x: Tensor<4>, mode: Mode, strides: &[usize]) -> Vec<(usize, Tensor<4>)> {
        let points = self.feature_blocks(strides);
        let Some(end) = points.iter().map(|&(_, i)| i).max() else {
            return Vec::new();
        };
        let mut x = self.forward_stem(x, mode);
        // (block index, its output) of the blocks asked for.
        let mut kept: Vec<(usize, Tensor<4>)> = Vec::new();
        for (i, (block, w)) in self
            .blocks
            .iter()
            .zip(&self.active.blocks)
            .enumerate()
            .take(end + 1)
        {
            x = block.forward(x, *w, mode);
            if points.iter().any(|&(_, j)| j == i) {
                kept.push((i, x.clone()));
            }
        }
        points
            .into_iter()
            .filter_map(|(stride, i)| {
                kept.iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, t)| (stride, t.clone()))
            })
            .collect()
    }

    /// Channels of [`Net::features`] at `strides` for the active sub-network.
    pub fn feature_channels(&self, strides: &[usize]) -> Vec<(usize, usize)> {
        let info = self.feature_info();
        strides
            .iter()
            .filter_map(|&s| info.iter().find(|f| f.reduction == s))
            .map(|f| (f.reduction, f.channels))
            .collect()
    }
}
