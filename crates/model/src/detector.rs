//! A YOLOv3-style detector on a zoo backbone: the backbone's feature maps at strides 8,
//! 16 and 32 ([`Net::features`]) each feed a head (1x1 conv, depthwise 3x3 conv, 1x1
//! prediction conv to `anchors x (5 + classes)` channels: box offsets, objectness, class
//! logits). Head widths are dynamic like the backbone's: NetAug widens backbone and heads
//! together, and the target detector is the narrowest one.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::divisible::make_divisible;
use crate::error::ModelError;
use crate::init::{InitKind, Initializer};
use crate::layers::{Act, ConvCfg, ConvLayer, Mode};
use crate::net::{
    Active, AugFactors, Net, calibrate_layers, check_saved, load_weights, read_description,
    save_module,
};
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
    #[module(skip)]
    labels: DetLabels,
}

/// What the outputs mean, saved with the weights so that a saved detector decodes on its
/// own: the anchors its box offsets are relative to and the dataset's categories.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetLabels {
    /// Anchors (w, h) in input pixels, smallest first, `anchors_per_scale` per stride.
    pub anchors: Vec<(f32, f32)>,
    /// Category of each class index.
    pub categories: Vec<Category>,
}

/// A dataset category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// The dataset's id (COCO `category_id`; VOC: 1-based class index).
    pub id: u64,
    /// Name.
    pub name: String,
}

/// `model.json` of a saved detector.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedDetector {
    spec: NetSpec,
    factors: AugFactors,
    detector: SavedHeads,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedHeads {
    classes: usize,
    anchors_per_scale: usize,
    head_widths: Vec<usize>,
    labels: DetLabels,
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
        device: &Device,
    ) -> Self {
        Self::build(
            spec,
            factors,
            classes,
            anchors_per_scale,
            None,
            init,
            seed,
            device,
        )
    }

    /// [`Detector::new`] with the target head widths given (a saved detector's) instead
    /// of derived from the backbone.
    #[allow(clippy::too_many_arguments)]
    fn build(
        spec: &NetSpec,
        factors: &AugFactors,
        classes: usize,
        anchors_per_scale: usize,
        head_widths: Option<&[usize]>,
        init: InitKind,
        seed: u64,
        device: &Device,
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
            .enumerate()
            .map(|(s, (&(_, cmin), &(_, cmax)))| {
                // Twice the target backbone's width, at least 32, a multiple of 8.
                let base = head_widths
                    .and_then(|w| w.get(s).copied())
                    .unwrap_or_else(|| make_divisible((2 * cmin).max(32) as f64, 8));
                base_widths.push(base);
                let widest = make_divisible(base as f64 * max_mult, 1);
                let i = &mut initializer;
                let mut predict =
                    ConvLayer::new(i, ConvCfg::pointwise(widest, outputs).without_bn());
                prior_init(&mut predict, anchors_per_scale, classes, i);
                DetHead {
                    reduce: ConvLayer::new(i, ConvCfg::pointwise(cmax, widest).act(Act::Relu6)),
                    spatial: ConvLayer::new(i, ConvCfg::depthwise(widest, 3, 1).act(Act::Relu6)),
                    predict,
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
            labels: DetLabels::default(),
        }
    }

    /// The anchors and categories of the outputs.
    pub fn labels(&self) -> &DetLabels {
        &self.labels
    }

    /// Sets the anchors and categories; `anchors` must hold `anchors_per_scale` per
    /// stride and `categories` one per class.
    pub fn set_labels(&mut self, labels: DetLabels) -> Result<(), ModelError> {
        let want = self.anchors_per_scale * STRIDES.len();
        if labels.anchors.len() != want {
            return Err(ModelError::BadArchitecture(format!(
                "{} anchors for {} per scale at {} strides",
                labels.anchors.len(),
                self.anchors_per_scale,
                STRIDES.len()
            )));
        }
        if !labels.categories.is_empty() && labels.categories.len() != self.classes {
            return Err(ModelError::BadArchitecture(format!(
                "{} categories for {} classes",
                labels.categories.len(),
                self.classes
            )));
        }
        self.labels = labels;
        Ok(())
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

    /// Re-estimates the BN statistics of the active detector (backbone and heads) on
    /// `batches`, as [`Net::calibrate_bn`]. Returns the number of images seen.
    pub fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize {
        let mut layers = self.backbone.conv_layers();
        for h in &self.heads {
            layers.extend([&h.reduce, &h.spatial, &h.predict]);
        }
        calibrate_layers(&layers, batches, |x| {
            let _ = self.forward(x, Mode::Calibrate);
        })
    }

    /// Reorders the backbone's hidden channels by importance ([`Net::sort_channels`]);
    /// the feature maps the heads read are unchanged.
    pub fn sort_channels(&mut self) {
        self.backbone.sort_channels();
    }

    /// The active detector as a plain one with its own weights and the same outputs.
    pub fn export(&self) -> Detector {
        let backbone = self.backbone.export();
        let outputs = self.anchors_per_scale * (5 + self.classes);
        let widths = self.head_widths();
        let heads = self
            .backbone
            .feature_channels(&STRIDES)
            .iter()
            .zip(&self.heads)
            .zip(&widths)
            .map(|((&(_, cin), h), &w)| DetHead {
                reduce: h.reduce.export(cin, w),
                spatial: h.spatial.export(w, w),
                predict: h.predict.export(w, outputs),
            })
            .collect();
        Detector {
            backbone,
            heads,
            base_widths: widths,
            width_mults: vec![1.0],
            head_mult: 1.0,
            classes: self.classes,
            anchors_per_scale: self.anchors_per_scale,
            labels: self.labels.clone(),
        }
    }

    /// Writes `dir/model.json` (backbone, factors, heads, labels) and `dir/weights.bpk`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let meta = SavedDetector {
            spec: self.backbone.spec().clone(),
            factors: self.backbone.factors().clone(),
            detector: SavedHeads {
                classes: self.classes,
                anchors_per_scale: self.anchors_per_scale,
                head_widths: self.base_widths.clone(),
                labels: self.labels.clone(),
            },
        };
        save_module(self, &meta, dir)
    }

    /// Reads a detector written by [`Detector::save`]; the target detector is active.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let (meta, json_path): (SavedDetector, _) = read_description(dir)?;
        check_saved(&meta.spec, &meta.factors, &json_path)?;
        let h = meta.detector;
        let mut det = Self::build(
            &meta.spec,
            &meta.factors,
            h.classes,
            h.anchors_per_scale,
            Some(&h.head_widths),
            InitKind::HeFout,
            0,
            device,
        );
        det.set_labels(h.labels)
            .map_err(|e| ModelError::file(json_path.clone(), e))?;
        let mut det = load_weights(det, dir)?;
        det.set_active(Active::Min);
        Ok(det)
    }
}

/// Objectness and class probability at initialization (the focal-loss paper's prior).
const PRIOR: f64 = 0.01;

/// Starts the prediction conv near "nothing here": small weights, objectness and class
/// biases at logit(PRIOR), box biases 0. With the He init of the other layers the first
/// steps' objectness loss over every cell is large and its gradients kill the heads'
/// ReLUs, which then output constants.
fn prior_init(predict: &mut ConvLayer, anchors: usize, classes: usize, init: &mut Initializer) {
    let k = 5 + classes;
    let conv = &mut predict.conv;
    conv.weight = init.conv_normal(conv.weight.val().dims(), 0.01);
    let logit = (PRIOR / (1.0 - PRIOR)).ln() as f32;
    let bias = (0..anchors * k)
        .map(|c| if c % k >= 4 { logit } else { 0.0 })
        .collect();
    conv.bias = Some(init.values(bias));
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

    #[test]
    fn export_save_and_load_keep_the_target_detectors_outputs() {
        let device = Device::flex();
        let spec = crate::zoo::spec("tinymbv2", 1, 3).unwrap();
        let factors = AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).unwrap();
        let mut det = Detector::new(&spec, &factors, 2, 3, InitKind::KaimingUniform, 4, &device);
        let anchors: Vec<(f32, f32)> = (1..=9).map(|i| (4.0 * i as f32, 3.0 * i as f32)).collect();
        let categories = vec![
            Category {
                id: 1,
                name: "a".into(),
            },
            Category {
                id: 7,
                name: "b".into(),
            },
        ];
        let labels = DetLabels {
            anchors: anchors.clone(),
            categories,
        };
        assert!(
            det.set_labels(DetLabels {
                anchors: anchors[..3].to_vec(),
                ..labels.clone()
            })
            .is_err()
        );
        det.set_labels(labels.clone()).unwrap();
        // Calibrated BN statistics, so that running stats are not the init's.
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        det.set_active(Active::Min);
        assert_eq!(det.calibrate_bn([x.clone()]), 2);
        let flat = |v: Vec<Tensor<4>>| -> Vec<f32> {
            v.into_iter()
                .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
                .collect()
        };
        let want = flat(det.forward(x.clone(), Mode::Eval));
        let close = |got: Vec<f32>| {
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "max difference {worst}");
        };
        let exported = det.export();
        assert_eq!(exported.head_widths(), det.head_widths());
        assert!(exported.num_params() < det.num_params());
        close(flat(exported.forward(x.clone(), Mode::Eval)));

        let dir = std::env::temp_dir().join(format!("netaug-det-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        det.save(&dir).unwrap();
        let back = Detector::load(&dir, &device).unwrap();
        assert_eq!(back.labels(), &labels);
        assert_eq!(back.head_widths(), det.head_widths());
        close(flat(back.forward(x.clone(), Mode::Eval)));
        // A detector folder is not a classification net.
        assert!(Net::load(&dir, &device).is_err());
        exported.save(&dir).unwrap();
        close(flat(
            Detector::load(&dir, &device)
                .unwrap()
                .forward(x, Mode::Eval),
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
