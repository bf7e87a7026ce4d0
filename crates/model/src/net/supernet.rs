//! The network: its layers, how it is built from a zoo spec, and BN re-calibration.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::arch::{Active, ActiveArch, Choices};
use super::factors::{AugFactors, expand_ratio};
use crate::blocks::{Block, Bottleneck, DsConv, MbConv};
use crate::divisible::make_divisible;
use crate::error::ModelError;
use crate::init::{InitKind, Initializer};
use crate::layers::{ActiveWeight, ConvCfg, ConvLayer, DynLinear, DynSe, Mode, WeightList};
use crate::regularize::Stochastic;
use crate::zoo::{BlockKind, BlockSpec, NetSpec};

/// A zoo network with dynamic widths. Built with [`AugFactors::none`] it is the plain
/// network; otherwise the NetAug supernet whose narrowest sub-network is the target.
#[derive(Module, Debug)]
pub struct Net {
    /// Stem conv layer.
    pub stem: ConvLayer,
    /// Depthwise-separable block.
    pub first: Option<DsConv>,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Pre-pooling 1x1 conv.
    pub head_conv: Option<ConvLayer>,
    /// Post-pooling 1x1 conv.
    pub post_pool_conv: Option<ConvLayer>,
    /// Classifier.
    pub classifier: DynLinear,
    #[module(skip)]
    pub(super) spec: NetSpec,
    #[module(skip)]
    pub(super) factors: AugFactors,
    #[module(skip)]
    pub(super) choices: Choices,
    #[module(skip)]
    pub(super) active: ActiveArch,
    #[module(skip)]
    pub(super) stochastic: Stochastic,
}

impl Net {
    /// Builds `spec` as a supernet for `factors`, weights from `init` and `seed`; the
    /// active sub-network is the target (`min`).
    pub fn new(
        spec: &NetSpec,
        factors: &AugFactors,
        init: InitKind,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut init = Initializer::new(init, seed, device);
        let init = &mut init;
        let max_w = factors.max_width();
        let max_e = factors.aug_expand_list.iter().copied().fold(1.0, f64::max);
        // Widest width of a layer whose base width is `c` (official: divisor 1).
        let mx = |c: usize| make_divisible(c as f64 * max_w, 1);

        let s = &spec.stem;
        let stem = ConvLayer::new(
            init,
            ConvCfg::dense(spec.in_channels, mx(s.out), s.kernel, s.stride).act(s.act),
        );
        let first = spec.first.as_ref().map(|f| DsConv {
            depth: ConvLayer::new(init, ConvCfg::depthwise(mx(s.out), f.kernel, 1).act(f.act)),
            point: ConvLayer::new(init, ConvCfg::pointwise(mx(s.out), mx(f.out))),
            identity: f.identity,
        });
        let blocks = spec
            .blocks
            .iter()
            .map(|b| {
                let in_max = mx(b.in_ch);
                let mid_max = make_divisible(in_max as f64 * expand_ratio(b) * max_e, 1);
                build_block(init, b, in_max, mid_max, mx(b.out))
            })
            .collect();
        let last = spec
            .blocks
            .last()
            .map(|b| b.out)
            .or(spec.first.as_ref().map(|f| f.out))
            .unwrap_or(s.out);
        let head_conv = spec
            .head_conv
            .as_ref()
            .map(|h| ConvLayer::new(init, ConvCfg::pointwise(mx(last), mx(h.out)).act(h.act)));
        let pooled = spec.head_conv.as_ref().map_or(last, |h| h.out);
        let post_pool_conv = spec.post_pool_conv.as_ref().map(|p| {
            let cfg = ConvCfg::pointwise(mx(pooled), mx(p.out)).without_bn();
            ConvLayer::new(init, cfg.act(p.act))
        });
        let classifier = DynLinear::new(init, mx(spec.feature_width()), spec.classes);
        let mut net = Self {
            stem,
            first,
            blocks,
            head_conv,
            post_pool_conv,
            classifier,
            spec: spec.clone(),
            factors: factors.clone(),
            choices: Choices::new(spec, factors),
            active: ActiveArch {
                stem: 0,
                first: None,
                blocks: Vec::new(),
                head_conv: None,
                post_pool_conv: None,
            },
            stochastic: Stochastic::default(),
        };
        net.set_active(Active::Min);
        net
    }

    /// The description the network was built from (for an export: the target's widths).
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// The NetAug factor lists.
    pub fn factors(&self) -> &AugFactors {
        &self.factors
    }

    /// Sets the training-time regularizers (dropout, DropBlock); refuses bad rates.
    pub fn set_stochastic(&mut self, stochastic: Stochastic) -> Result<(), ModelError> {
        stochastic.validate().map_err(ModelError::BadArchitecture)?;
        self.stochastic = stochastic;
        Ok(())
    }

    /// The training-time regularizers.
    pub fn stochastic(&self) -> &Stochastic {
        &self.stochastic
    }

    /// Every trainable weight with the leading-slice shape the active sub-network uses.
    pub fn active_weights(&self) -> Vec<ActiveWeight<'_>> {
        let a = &self.active;
        let mut list = WeightList::new();
        let l = &mut list;
        l.scope("stem", |l| self.stem.list(l, self.spec.in_channels, a.stem));
        let mut in_ch = a.stem;
        if let (Some(first), Some(out)) = (&self.first, a.first) {
            l.scope("first", |l| first.list(l, in_ch, out));
            in_ch = out;
        }
        for (i, (block, w)) in self.blocks.iter().zip(&a.blocks).enumerate() {
            l.scope(format!("blocks.{i}"), |l| block.list(l, in_ch, *w));
            in_ch = w.out;
        }
        if let (Some(conv), Some(out)) = (&self.head_conv, a.head_conv) {
            l.scope("head_conv", |l| conv.list(l, in_ch, out));
            in_ch = out;
        }
        if let (Some(conv), Some(out)) = (&self.post_pool_conv, a.post_pool_conv) {
            l.scope("post_pool_conv", |l| conv.list(l, in_ch, out));
            in_ch = out;
        }
        l.scope("classifier", |l| self.classifier.list(l, in_ch));
        list.out
    }

    /// Re-estimates the BN running statistics of the active sub-network (the official
    /// `reset_bn`): every BN layer normalizes with batch statistics while `batches` pass
    /// through, then its running mean/var (active channels) become the averages of the
    /// batch means/variances, weighted by batch size. Returns the number of images seen.
    pub fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize {
        calibrate_layers(&self.conv_layers(), batches, |x| {
            let _ = self.forward(x, Mode::Calibrate);
        })
    }

    /// Every conv layer, in forward order.
    pub fn conv_layers(&self) -> Vec<&ConvLayer> {
        let mut v = vec![&self.stem];
        if let Some(f) = &self.first {
            v.extend([&f.depth, &f.point]);
        }
        for b in &self.blocks {
            v.extend(b.conv_layers());
        }
        v.extend(&self.head_conv);
        v.extend(&self.post_pool_conv);
        v
    }

    /// Reorders the hidden channels of every block by importance (the official
    /// `sort_channels`): the function of the full network is unchanged and the target
    /// net keeps the most important channels.
    pub fn sort_channels(&mut self) {
        for block in &mut self.blocks {
            block.sort_channels();
        }
    }
}

/// Runs `batches` through `forward` with the BN layers of `layers` gathering batch
/// statistics, then makes those their running statistics. Returns the images seen.
pub(crate) fn calibrate_layers(
    layers: &[&ConvLayer],
    batches: impl IntoIterator<Item = Tensor<4>>,
    forward: impl Fn(Tensor<4>),
) -> usize {
    let bns: Vec<_> = layers.iter().filter_map(|c| c.bn.as_ref()).collect();
    for bn in &bns {
        bn.begin_calibration();
    }
    let mut images = 0;
    for x in batches {
        images += x.dims()[0];
        forward(x.detach());
    }
    for bn in &bns {
        bn.finish_calibration();
    }
    images
}

fn build_block(
    init: &mut Initializer,
    b: &BlockSpec,
    in_max: usize,
    mid_max: usize,
    out_max: usize,
) -> Block {
    match b.kind {
        BlockKind::MbConv => Block::MbConv(MbConv {
            inverted: ConvLayer::new(init, ConvCfg::pointwise(in_max, mid_max).act(b.act)),
            depth: ConvLayer::new(
                init,
                ConvCfg::depthwise(mid_max, b.kernel, b.stride).act(b.act),
            ),
            se: b.se.as_ref().map(|se| {
                let reduction = b.mid as f64 / se.hidden as f64 + 1e-10;
                DynSe::new(init, mid_max, reduction, se.act)
            }),
            point: ConvLayer::new(init, ConvCfg::pointwise(mid_max, out_max)),
            identity: b.identity,
        }),
        BlockKind::Bottleneck => Block::Bottleneck(Bottleneck {
            conv1: ConvLayer::new(init, ConvCfg::pointwise(in_max, mid_max).act(b.act)),
            conv2: ConvLayer::new(
                init,
                ConvCfg::dense(mid_max, mid_max, b.kernel, b.stride).act(b.act),
            ),
            conv3: ConvLayer::new(init, ConvCfg::pointwise(mid_max, out_max)),
            downsample: (!b.identity)
                .then(|| ConvLayer::new(init, ConvCfg::dense(in_max, out_max, 1, b.stride))),
        }),
    }
}
