//! The network: a zoo net built plain or as a NetAug supernet, its active sub-network,
//! sampling, channel sorting, export and weights I/O.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::blocks::{Block, BlockWidth, Bottleneck, DsConv, MbConv};
use crate::divisible::{aug_width, make_divisible};
use crate::error::ModelError;
use crate::init::{InitKind, Initializer};
use crate::layers::{ActiveWeight, ConvCfg, ConvLayer, DynLinear, DynSe, Mode, WeightList};
use crate::ops;
use crate::profile::Profile;
use crate::regularize::{self, Stochastic};
use crate::zoo::{BlockKind, BlockSpec, NetSpec};

/// NetAug's two factor lists. `[1.0]` and `[1.0]` give the plain network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugFactors {
    /// Multipliers of each inverted block's expand ratio.
    pub aug_expand_list: Vec<f64>,
    /// Multipliers of the widths of the stem, of blocks without identity shortcut and of
    /// the head convs.
    pub aug_width_mult_list: Vec<f64>,
}

impl AugFactors {
    /// No augmentation: the plain network.
    pub fn none() -> Self {
        Self {
            aug_expand_list: vec![1.0],
            aug_width_mult_list: vec![1.0],
        }
    }

    /// Checked factor lists: non-empty, finite, >= 1.0, the first one 1.0.
    pub fn new(expand: Vec<f64>, width: Vec<f64>) -> Result<Self, ModelError> {
        check_factors("aug_expand_list", &expand)?;
        check_factors("aug_width_mult_list", &width)?;
        Ok(Self {
            aug_expand_list: expand,
            aug_width_mult_list: width,
        })
    }

    /// Whether any factor widens the network.
    pub fn is_augmented(&self) -> bool {
        self.aug_expand_list
            .iter()
            .chain(&self.aug_width_mult_list)
            .any(|&f| f > 1.0)
    }

    fn max_width(&self) -> f64 {
        self.aug_width_mult_list.iter().copied().fold(1.0, f64::max)
    }
}

fn check_factors(list: &'static str, values: &[f64]) -> Result<(), ModelError> {
    let reason = if values.is_empty() {
        Some("empty")
    } else if values.iter().any(|v| !v.is_finite() || *v < 1.0) {
        Some("every factor must be a finite number >= 1.0")
    } else if values[0] != 1.0 {
        Some("the first factor must be 1.0 (the target net)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ModelError::BadFactors {
            list,
            reason,
            values: values.to_vec(),
        }),
        None => Ok(()),
    }
}

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
struct Choices {
    stem: Vec<usize>,
    first: Vec<usize>,
    /// Per block: output candidates and expand-ratio candidates (relative to the input).
    blocks: Vec<(Vec<usize>, Vec<f64>)>,
    head_conv: Vec<usize>,
    post_pool_conv: Vec<usize>,
}

impl Choices {
    /// The official `aug_width(base, list, 1)` of every site, and each block's expand
    /// ratio times the expand factors.
    fn new(spec: &NetSpec, factors: &AugFactors) -> Self {
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

/// A block's base expand ratio, hidden / input channels (official: `+ 1e-10` so that
/// `make_divisible(ratio * in, 1)` gives back the base hidden width).
pub fn expand_ratio(b: &BlockSpec) -> f64 {
    b.mid as f64 / b.in_ch as f64 + 1e-10
}

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
    spec: NetSpec,
    #[module(skip)]
    factors: AugFactors,
    #[module(skip)]
    choices: Choices,
    #[module(skip)]
    active: ActiveArch,
    #[module(skip)]
    stochastic: Stochastic,
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

    /// The widths in use.
    pub fn active(&self) -> &ActiveArch {
        &self.active
    }

    /// Selects a sub-network (the official `set_active(mode)`), and returns its widths.
    pub fn set_active(&mut self, mode: Active<'_>) -> &ActiveArch {
        self.active = self.sample(mode);
        &self.active
    }

    /// Selects the sub-network with the given widths (e.g. one recorded earlier with
    /// [`Net::sample`]); refuses widths this network cannot run.
    pub fn set_active_arch(&mut self, arch: ActiveArch) -> Result<(), ModelError> {
        let max = self.sample(Active::Max);
        let fits = |w: usize, m: usize| w >= 1 && w <= m;
        let opt_fits = |w: Option<usize>, m: Option<usize>| match (w, m) {
            (Some(w), Some(m)) => fits(w, m),
            (None, None) => true,
            _ => false,
        };
        let mut ok = fits(arch.stem, max.stem)
            && opt_fits(arch.first, max.first)
            && opt_fits(arch.head_conv, max.head_conv)
            && opt_fits(arch.post_pool_conv, max.post_pool_conv)
            && arch.blocks.len() == max.blocks.len();
        let mut in_ch = arch.first.unwrap_or(arch.stem);
        if self.first.as_ref().is_some_and(|f| f.identity) {
            ok &= arch.first == Some(arch.stem);
        }
        for ((w, m), block) in arch.blocks.iter().zip(&max.blocks).zip(&self.blocks) {
            ok &= fits(w.mid, m.mid) && fits(w.out, m.out);
            ok &= !block.identity() || w.out == in_ch;
            in_ch = w.out;
        }
        if !ok {
            return Err(ModelError::BadArchitecture(format!(
                "widths {arch:?} do not fit {} (widest: {max:?})",
                self.spec.name
            )));
        }
        self.active = arch;
        Ok(())
    }

    /// Draws the widths of a sub-network without selecting it.
    pub fn sample(&self, mode: Active<'_>) -> ActiveArch {
        let mut pick = Picker::new(mode);
        let stem = pick.width(&self.choices.stem);
        let first = self.first.as_ref().map(|f| {
            if f.identity {
                stem
            } else {
                pick.width(&self.choices.first)
            }
        });
        let mut in_ch = first.unwrap_or(stem);
        let mut widths = Vec::with_capacity(self.blocks.len());
        for (block, (outs, ratios)) in self.blocks.iter().zip(&self.choices.blocks) {
            let out = if block.identity() {
                in_ch
            } else {
                pick.width(outs)
            };
            let mid = make_divisible(pick.ratio(ratios) * in_ch as f64, 1);
            widths.push(BlockWidth { mid, out });
            in_ch = out;
        }
        let head_conv = self
            .head_conv
            .as_ref()
            .map(|_| pick.width(&self.choices.head_conv));
        let post_pool_conv = self
            .post_pool_conv
            .as_ref()
            .map(|_| pick.width(&self.choices.post_pool_conv));
        ActiveArch {
            stem,
            first,
            blocks: widths,
            head_conv,
            post_pool_conv,
        }
    }

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

    /// For each of `strides` the net reaches, in the order asked: (stride, index of the
    /// last block at that stride).
    fn feature_blocks(&self, strides: &[usize]) -> Vec<(usize, usize)> {
        let blocks = &self.spec.blocks;
        let mut stride = self.stem_stride();
        let mut last = Vec::new();
        for (i, spec) in blocks.iter().enumerate() {
            stride *= spec.stride;
            if blocks.get(i + 1).is_none_or(|next| next.stride > 1) {
                last.push((stride, i));
            }
        }
        strides
            .iter()
            .filter_map(|s| last.iter().find(|(f, _)| f == s).copied())
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
        self.feature_blocks(strides)
            .into_iter()
            .map(|(stride, i)| (stride, self.active.blocks[i].out))
            .collect()
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

    /// Params and MACs of the active sub-network for one `resolution x resolution` image.
    pub fn profile(&self, resolution: usize) -> Profile {
        let params = self
            .active_weights()
            .iter()
            .map(|w| w.active.iter().product::<usize>() as u64)
            .sum();
        let (trunk_macs, in_ch, h, w) = self.trunk_macs(resolution);
        let a = &self.active;
        let (mut macs, mut in_ch) = (trunk_macs, in_ch);
        if let (Some(conv), Some(out)) = (&self.head_conv, a.head_conv) {
            macs += conv.conv.macs(in_ch, out, h, w).0;
            in_ch = out;
        }
        if let (Some(conv), Some(out)) = (&self.post_pool_conv, a.post_pool_conv) {
            macs += conv.conv.macs(in_ch, out, 1, 1).0;
            in_ch = out;
        }
        macs += (in_ch * self.classifier.out_features()) as u64;
        Profile { params, macs }
    }

    /// Params and MACs of the active sub-network's stem and blocks only: the backbone a
    /// detector uses (no head conv, pooling or classifier).
    pub fn trunk_profile(&self, resolution: usize) -> Profile {
        let params = self
            .active_weights()
            .iter()
            .filter(|w| {
                ["stem.", "first.", "blocks."]
                    .iter()
                    .any(|p| w.name.starts_with(p))
            })
            .map(|w| w.active.iter().product::<usize>() as u64)
            .sum();
        Profile {
            params,
            macs: self.trunk_macs(resolution).0,
        }
    }

    /// MACs of stem and blocks, and the channels and size of the last block's output.
    fn trunk_macs(&self, resolution: usize) -> (u64, usize, usize, usize) {
        let a = &self.active;
        let (mut macs, mut h, mut w) =
            self.stem
                .conv
                .macs(self.spec.in_channels, a.stem, resolution, resolution);
        if self.spec.stem.max_pool {
            (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        }
        let mut in_ch = a.stem;
        if let (Some(first), Some(out)) = (&self.first, a.first) {
            let (m, h2, w2) = first.macs(in_ch, out, h, w);
            (macs, h, w, in_ch) = (macs + m, h2, w2, out);
        }
        for (block, bw) in self.blocks.iter().zip(&a.blocks) {
            let (m, h2, w2) = block.macs(in_ch, *bw, h, w);
            (macs, h, w, in_ch) = (macs + m, h2, w2, bw.out);
        }
        (macs, in_ch, h, w)
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

    /// The active sub-network as a plain network with its own weights, whose outputs equal
    /// this network's at the same widths.
    pub fn export(&self) -> Net {
        let a = &self.active;
        let spec = self.active_spec();
        let mut in_ch = a.stem;
        let first = match (&self.first, a.first) {
            (Some(f), Some(out)) => {
                let f = f.export(in_ch, out);
                in_ch = out;
                Some(f)
            }
            _ => None,
        };
        let blocks = self
            .blocks
            .iter()
            .zip(&a.blocks)
            .map(|(b, w)| {
                let b = b.export(in_ch, *w);
                in_ch = w.out;
                b
            })
            .collect();
        let head_conv = match (&self.head_conv, a.head_conv) {
            (Some(c), Some(out)) => {
                let c = c.export(in_ch, out);
                in_ch = out;
                Some(c)
            }
            _ => None,
        };
        let post_pool_conv = match (&self.post_pool_conv, a.post_pool_conv) {
            (Some(c), Some(out)) => {
                let c = c.export(in_ch, out);
                in_ch = out;
                Some(c)
            }
            _ => None,
        };
        let factors = AugFactors::none();
        let choices = Choices::new(&spec, &factors);
        Net {
            stem: self.stem.export(self.spec.in_channels, a.stem),
            first,
            blocks,
            head_conv,
            post_pool_conv,
            classifier: self.classifier.export(in_ch),
            spec,
            factors,
            choices,
            active: a.clone(),
            stochastic: self.stochastic.clone(),
        }
    }

    /// The description of the active sub-network.
    fn active_spec(&self) -> NetSpec {
        let a = &self.active;
        let mut spec = self.spec.clone();
        spec.stem.out = a.stem;
        if let (Some(f), Some(out)) = (&mut spec.first, a.first) {
            f.out = out;
        }
        let mut in_ch = a.first.unwrap_or(a.stem);
        for ((b, w), block) in spec.blocks.iter_mut().zip(&a.blocks).zip(&self.blocks) {
            b.in_ch = in_ch;
            b.mid = w.mid;
            b.out = w.out;
            if let (
                Some(se),
                Block::MbConv(MbConv {
                    se: Some(dyn_se), ..
                }),
            ) = (&mut b.se, block)
            {
                se.hidden = dyn_se.hidden(w.mid);
            }
            in_ch = w.out;
        }
        if let (Some(h), Some(out)) = (&mut spec.head_conv, a.head_conv) {
            h.out = out;
        }
        if let (Some(p), Some(out)) = (&mut spec.post_pool_conv, a.post_pool_conv) {
            p.out = out;
        }
        spec
    }

    /// Writes `dir/model.json` (description and factors) and `dir/weights.bpk` (burnpack).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let meta = SavedModel {
            spec: self.spec.clone(),
            factors: self.factors.clone(),
        };
        save_module(self, &meta, dir)
    }

    /// Reads a network written by [`Net::save`]; the active sub-network is the target.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let (meta, json_path): (SavedModel, _) = read_description(dir)?;
        check_saved(&meta.spec, &meta.factors, &json_path)?;
        let net = Net::new(&meta.spec, &meta.factors, InitKind::HeFout, 0, device);
        load_weights(net, dir)
    }
}

/// Writes `meta` as `dir/model.json` and the module's weights as `dir/weights.bpk`.
pub(crate) fn save_module<M: Module + Clone>(
    module: &M,
    meta: &impl Serialize,
    dir: &Path,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let json_path = dir.join(MODEL_JSON);
    let json = serde_json::to_string_pretty(meta).expect("model descriptions serialize");
    std::fs::write(&json_path, json).map_err(|source| ModelError::Io {
        path: json_path,
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILE);
    module
        .clone()
        .save_file(&weights)
        .map_err(|e| ModelError::File {
            path: weights,
            message: e.to_string(),
        })
}

/// Reads `dir/model.json` as `T`; returns it with the file's path.
pub(crate) fn read_description<T: for<'de> Deserialize<'de>>(
    dir: &Path,
) -> Result<(T, std::path::PathBuf), ModelError> {
    let json_path = dir.join(MODEL_JSON);
    let text = std::fs::read_to_string(&json_path).map_err(|source| ModelError::Io {
        path: json_path.clone(),
        source,
    })?;
    let meta = serde_json::from_str(&text).map_err(|source| ModelError::Spec {
        path: json_path.clone(),
        source,
    })?;
    Ok((meta, json_path))
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

/// Checks a saved description's spec and factors; errors name `json_path`.
pub(crate) fn check_saved(
    spec: &NetSpec,
    factors: &AugFactors,
    json_path: &Path,
) -> Result<(), ModelError> {
    let bad = |e: ModelError| ModelError::File {
        path: json_path.to_path_buf(),
        message: e.to_string(),
    };
    AugFactors::new(
        factors.aug_expand_list.clone(),
        factors.aug_width_mult_list.clone(),
    )
    .map_err(bad)?;
    spec.validate().map_err(bad)
}

/// Fills `module` from `dir/weights.bpk`.
pub(crate) fn load_weights<M: Module>(module: M, dir: &Path) -> Result<M, ModelError> {
    let weights = dir.join(WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(ModelError::Io {
            path: weights,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    module
        .try_load_file(&weights)
        .map_err(|e| ModelError::File {
            path: weights,
            message: e.to_string(),
        })
}

/// Description file name of a saved network.
pub const MODEL_JSON: &str = "model.json";
/// Weights file name of a saved network.
pub const WEIGHTS_FILE: &str = "weights.bpk";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedModel {
    spec: NetSpec,
    factors: AugFactors,
}

/// Picks one candidate per site for an [`Active`] mode.
struct Picker<'a> {
    rng: Option<&'a mut dyn RngCore>,
    random_width: bool,
    random_expand: bool,
    widest: bool,
}

impl<'a> Picker<'a> {
    fn new(mode: Active<'a>) -> Self {
        let (rng, random_width, random_expand, widest) = match mode {
            Active::Min => (None, false, false, false),
            Active::Max => (None, false, false, true),
            Active::Random(r) => (Some(r), true, true, false),
            Active::MinW(r) => (Some(r), false, true, false),
            Active::MinE(r) => (Some(r), true, false, false),
        };
        Self {
            rng,
            random_width,
            random_expand,
            widest,
        }
    }

    fn choose<T: Copy + PartialOrd>(&mut self, list: &[T], random: bool) -> T {
        let best = |keep_new: fn(&T, &T) -> bool| {
            list.iter()
                .copied()
                .reduce(|a, b| if keep_new(&b, &a) { b } else { a })
                .expect("candidate lists are never empty")
        };
        match (&mut self.rng, random, self.widest) {
            (_, _, true) => best(|new, old| new > old),
            (Some(r), true, _) => list[r.random_range(0..list.len())],
            _ => best(|new, old| new < old),
        }
    }

    fn width(&mut self, list: &[usize]) -> usize {
        self.choose(list, self.random_width)
    }

    fn ratio(&mut self, list: &[f64]) -> f64 {
        self.choose(list, self.random_expand)
    }
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
