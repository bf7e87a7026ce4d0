//! Which sub-network is active: the selection modes, the widths of one sub-network and
//! the candidate widths of every site.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::factors::{AugFactors, expand_ratio};
use crate::blocks::BlockWidth;
use crate::divisible::aug_width;
use crate::zoo::NetSpec;

/// Which sub-network [`Net::set_active`] selects.
pub enum Active<'a> {
    /// The target (tiny) network: every width at its base value.
    Min,
    /// The widest network.
    Max,
    /// Every block independently: a random width factor and a random expand factor.
    Random(&'a mut dyn RngCore),
    /// Base widths, random expand factors (width augmentation stopped).
    MinW(&'a mut dyn RngCore),
    /// Random widths, base expand factors.
    MinE(&'a mut dyn RngCore),
}

/// The widths of one sub-network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveArch {
    /// Stem output channels.
    pub stem: usize,
    /// Output channels of the depthwise-separable block.
    pub first: Option<usize>,
    /// Per block.
    pub blocks: Vec<BlockWidth>,
    /// Output channels of the pre-pooling 1x1 conv.
    pub head_conv: Option<usize>,
    /// Output channels of the post-pooling 1x1 conv.
    pub post_pool_conv: Option<usize>,
}

/// Candidate widths of every augmentable site.
#[derive(Clone, Debug)]
pub(super) struct Choices {
    pub(super) stem: Vec<usize>,
    pub(super) first: Vec<usize>,
    /// Per block: output candidates and expand-ratio candidates (relative to the input).
    pub(super) blocks: Vec<(Vec<usize>, Vec<f64>)>,
    pub(super) head_conv: Vec<usize>,
    pub(super) post_pool_conv: Vec<usize>,
}

impl Choices {
    /// The official `aug_width(base, list, 1)` of every site, and each block's expand
    /// ratio times the expand factors.
    pub(super) fn new(spec: &NetSpec, factors: &AugFactors) -> Self {
        let wl = &factors.aug_width_mult_list;
        let widths = |c: Option<usize>| c.map_or(Vec::new(), |c| aug_width(c, wl));
        Self {
            stem: aug_width(spec.stem.out, wl),
            first: widths(spec.first.as_ref().map(|f| f.out)),
            blocks: spec
                .blocks
                .iter()
                .map(|b| {
                    let ratios = factors.aug_expand_list.iter().map(|e| expand_ratio(b) * e);
                    (aug_width(b.out, wl), ratios.collect())
                })
                .collect(),
            head_conv: widths(spec.head_conv.as_ref().map(|h| h.out)),
            post_pool_conv: widths(spec.post_pool_conv.as_ref().map(|h| h.out)),
        }
    }
}
