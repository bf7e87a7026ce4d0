//! A YOLOv3-style detector on a zoo backbone: the backbone's feature maps at strides 8,
//! 16 and 32 ([`Net::features`]) each feed a head (1x1 conv, depthwise 3x3 conv, 1x1
//! prediction conv to `anchors x (5 + classes)` channels: box offsets, objectness, class
//! logits). Head widths are dynamic like the backbone's: NetAug widens backbone and heads
//! together, and the target detector is the narrowest one.

use burn::module::Module;
use burn::tensor::Tensor;
use rand::{Rng, RngCore};

use crate::divisible::make_divisible;
use crate::init::{InitKind, Initializer};
use crate::layers::{Act, ConvCfg, ConvLayer, Mode};
use crate::net::{Active, AugFactors, Net};
use crate::profile::Profile;
use crate::zoo::NetSpec;

/// Output strides of the three scales.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// One scale's head.
#[derive(Module, Debug)]
pub struct DetHead {
    /// 1x1 conv from the backbone feature to the head width.
    pub reduce: ConvLayer,
    /// Depthwise 3x3 conv.
    pub spatial: ConvLayer,
    /// 1x1 prediction conv (bias, no BN).
    pub predict: ConvLayer,
}

/// The detector: backbone, one head per stride.
#[derive(Module, Debug)]
pub struct Detector {
    /// The zoo backbone (its classifier is unused).
    pub backbone: Net,
    /// Heads for strides 8, 16, 32.
    pub heads: Vec<DetHead>,
    #[module(skip)]
    base_widths: Vec<usize>,
    #[module(skip)]
    width_mults: Vec<f64>,
    #[module(skip)]
    head_mult: f64,
    #[module(skip)]
    classes: usize,
    #[module(skip)]
    anchors_per_scale: usize,
}

impl Detector {
    /// A detector for `classes` classes on backbone `spec`, `anchors_per_scale` anchors at
    /// each stride, as a supernet for `factors` (the head widths follow the width list).
    pub fn new(
        spec: &NetSpec,
        factors: &AugFactors,
        classes: usize,
        anchors_per_scale: usize,
        init: InitKind,
        seed: u64,
        device: &burn::tensor::Device,
    ) -> Self {
        let mut backbone = Net::new(spec, factors, init, seed, device);
        backbone.set_active(Active::Max);
        let max_in = backbone.feature_channels(&STRIDES);
        backbone.set_active(Active::Min);
        let min_in = backbone.feature_channels(&STRIDES);
        let width_mults = factors.aug_width_mult_list.clone();
        let max_mult = width_mults.iter().copied().fold(1.0, f64::max);
        let mut initializer = Initializer::new(init, seed ^ 0xde7e_c70f, device);
        let outputs = anchors_per_scale * (5 + classes);
        let mut base_widths = Vec::new();
        let heads = min_in
            .iter()
            .zip(&max_in)
            .map(|(&(_, cmin), &(_, cmax))| {
                // Twice the target backbone's width, at least 32, a multiple of 8.
                let base = make_divisible((2 * cmin).max(32) as f64, 8);
                base_widths.push(base);
                let widest = make_divisible(base as f64 * max_mult, 1);
                let i = &mut initializer;
                DetHead {
                    reduce: ConvLayer::new(i, ConvCfg::pointwise(cmax, widest).act(Act::Relu6)),
                    spatial: ConvLayer::new(i, ConvCfg::depthwise(widest, 3, 1).act(Act::Relu6)),
                    predict: ConvLayer::new(i, ConvCfg::pointwise(widest, outputs).without_bn()),
                }
            })
            .collect();
        Self {
            backbone,
            heads,
            base_widths,
            width_mults,
            head_mult: 1.0,
            classes,
            anchors_per_scale,
        }
    }

    /// Selects the sub-network: the backbone as [`Net::set_active`], the heads' width
    /// factor min, max or drawn from the width list (width-augmenting modes only).
    pub fn set_active(&mut self, mode: Active<'_>) {
        let max = self.width_mults.iter().copied().fold(1.0, f64::max);
        self.head_mult = match mode {
            Active::Min => {
                self.backbone.set_active(Active::Min);
                1.0
            }
            Active::Max => {
                self.backbone.set_active(Active::Max);
                max
            }
            Active::Random(rng) => {
                self.backbone.set_active(Active::Random(&mut *rng));
                pick(&self.width_mults, rng)
            }
            Active::MinW(rng) => {
                self.backbone.set_active(Active::MinW(rng));
                1.0
            }
            Active::MinE(rng) => {
                self.backbone.set_active(Active::MinE(&mut *rng));
                pick(&self.width_mults, rng)
            }
        };
    }

    /// Active head widths, per stride.
    pub fn head_widths(&self) -> Vec<usize> {
        self.base_widths
            .iter()
            .map(|&b| make_divisible(b as f64 * self.head_mult, 1))
            .collect()
    }

    /// Classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Anchors per scale.
    pub fn anchors_per_scale(&self) -> usize {
        self.anchors_per_scale
    }

    /// Params and MACs of the active detector for `resolution` x `resolution` input:
    /// backbone trunk ([`Net::trunk_profile`]) and heads.
    pub fn profile(&self, resolution: usize) -> Profile {
        let trunk = self.backbone.trunk_profile(resolution);
        let outputs = self.anchors_per_scale * (5 + self.classes);
        let (mut params, mut macs) = (trunk.params, trunk.macs);
        let channels = self.backbone.feature_channels(&STRIDES);
        for ((&(stride, cin), head), w) in channels.iter().zip(&self.heads).zip(self.head_widths())
        {
            let side = resolution.div_ceil(stride);
            let conv = |l: &ConvLayer, cin: usize, out: usize| l.conv.macs(cin, out, side, side).0;
            macs += conv(&head.reduce, cin, w)
                + conv(&head.spatial, w, w)
                + conv(&head.predict, w, outputs);
            // Weights, BN scale and shift of the two BN layers, the prediction's bias.
            params += (cin * w + 2 * w + 9 * w + 2 * w + w * outputs + outputs) as u64;
        }
        Profile { params, macs }
    }

    /// Raw outputs `[N, anchors * (5 + classes), H / s, W / s]` for strides 8, 16, 32.
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Vec<Tensor<4>> {
        let outputs = self.anchors_per_scale * (5 + self.classes);
        let widths = self.head_widths();
        self.backbone
            .features(x, mode, &STRIDES)
            .into_iter()
            .zip(&self.heads)
            .zip(widths)
            .map(|(((_, f), head), w)| {
                let y = head.reduce.forward(f, w, mode);
                let y = head.spatial.forward(y, w, mode);
                head.predict.forward(y, outputs, mode)
            })
            .collect()
    }
}

fn pick(list: &[f64], rng: &mut dyn RngCore) -> f64 {
    list[rng.random_range(0..list.len().max(1))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};
    use rand::SeedableRng;

    #[test]
    fn outputs_per_stride_and_wider_heads_when_augmented() {
        let device = Device::flex();
        let spec = crate::zoo::spec("tinymbv2", 1, 3).unwrap();
        let factors = AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).unwrap();
        let mut det = Detector::new(&spec, &factors, 4, 3, InitKind::KaimingUniform, 0, &device);
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        det.set_active(Active::Min);
        let min = det.head_widths();
        let out = det.forward(x.clone(), Mode::Eval);
        let dims: Vec<[usize; 4]> = out.iter().map(|t| t.dims()).collect();
        assert_eq!(dims, vec![[2, 27, 8, 8], [2, 27, 4, 4], [2, 27, 2, 2]]);
        det.set_active(Active::Max);
        let max = det.head_widths();
        assert!(min.iter().zip(&max).all(|(a, b)| b > a), "{min:?} {max:?}");
        assert_eq!(det.forward(x.clone(), Mode::Eval)[0].dims(), [2, 27, 8, 8]);
        // The profile counts what the forward uses: trunk + heads, wider when augmented.
        det.set_active(Active::Min);
        let p = det.profile(64);
        let trunk = det.backbone.trunk_profile(64);
        assert!(p.params > trunk.params && p.macs > trunk.macs);
        det.set_active(Active::Max);
        let max = det.profile(64);
        assert!(max.macs > p.macs && max.params > p.params);
        // At the widest, the heads use every weight they hold; burn's count includes the
        // running mean and variance of their two BN layers, which are not parameters.
        let held: usize = det.heads.iter().map(|h| h.num_params()).sum();
        let running: usize = det.head_widths().iter().map(|w| 2 * 2 * w).sum();
        let trunk = det.backbone.trunk_profile(64);
        assert_eq!(max.params - trunk.params, (held - running) as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        det.set_active(Active::Random(&mut rng));
        assert_eq!(det.forward(x, Mode::Train).len(), 3);
    }
}
