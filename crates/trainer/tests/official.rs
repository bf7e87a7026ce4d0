//! Fidelity against the official NetAug code. `tools/official_fixtures.py` drove the
//! official PyTorch implementation (its supernets, `set_active`, `export`,
//! `sort_channels`, `reset_bn` and its training step) on the five tiny nets of the paper
//! and wrote what it computed to `fixtures/official/<net>.json`; each test here builds
//! the same supernet from the same weights through the `.pth` name mapping and checks
//! that ours computes the same:
//! - logits in eval and train mode at four sub-networks (min, random, min_w, max);
//! - the exported target net: tensor names, shapes and values, and its logits;
//! - every tensor after channel sorting, and the logits of a sorted sub-network;
//! - BN statistics after re-calibration on two batches of different sizes;
//! - every tensor (weights and BN statistics) after two NetAug SGD steps.
//!
//! Weights and inputs come from a counter-based generator that both sides implement
//! (`values`), so only results are stored; whole tensors as digests (float64 sums and 32
//! sampled values).

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, Tensor, TensorData};
use netaug_model::{Active, ActiveArch, AugFactors, Mode, Net};
use netaug_trainer::optim::optimizer;
use netaug_trainer::pth::{OfficialTensor, official_names, official_net};
use netaug_trainer::step::{Objective, step_loss};
use serde::Deserialize;

/// Logits: max abs difference relative to the largest |logit| (at least 1).
const LOGIT_TOL: f64 = 1e-4;
/// Weights: difference relative to the tensor's RMS (or the value, if larger).
const TENSOR_TOL: f64 = 1e-5;
/// BN statistics: outputs of forward passes, held to the logits' tolerance.
const STATS_TOL: f64 = 1e-4;
/// Gradients of a step (L(min) + L(aug)), relative to the gradient's RMS, beyond what
/// float32 rounding alone moves the official gradient: sums over up to 10^5 terms, in
/// another order than PyTorch's, differ by up to a few 1e-4 of the RMS.
const GRAD_TOL: f64 = 1e-3;

#[derive(Deserialize)]
struct Fixture {
    model: String,
    aug_expand_list: Vec<f64>,
    aug_width_mult_list: Vec<f64>,
    resolution: usize,
    batch: usize,
    labels: Vec<u32>,
    classes: usize,
    tensors: BTreeMap<String, Vec<usize>>,
    bn_kinds: BTreeMap<String, String>,
    archs: BTreeMap<String, ActiveArch>,
    logits: Modes,
    export: Export,
    sort: Checked,
    reset_bn: Recal,
    steps: Steps,
}

#[derive(Deserialize)]
struct Modes {
    eval: BTreeMap<String, Vec<f64>>,
    train: BTreeMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
struct Export {
    tensors: BTreeMap<String, Vec<usize>>,
    digests: BTreeMap<String, Digest>,
    logits: Vec<f64>,
}

#[derive(Deserialize)]
struct Checked {
    digests: BTreeMap<String, Digest>,
    logits: Vec<f64>,
}

#[derive(Deserialize)]
struct Recal {
    batches: Vec<usize>,
    digests: BTreeMap<String, Digest>,
    logits: Vec<f64>,
}

#[derive(Deserialize)]
struct Steps {
    lr: f64,
    weight_decay: f64,
    smoothing: f64,
    archs: Vec<ActiveArch>,
    inputs: Vec<String>,
    losses: Vec<[f64; 2]>,
    first_digests: BTreeMap<String, Digest>,
    digests: BTreeMap<String, Digest>,
    grads: Vec<BTreeMap<String, Digest>>,
}

/// A tensor in brief: float64 sums and the values at seeded positions.
#[derive(Deserialize)]
struct Digest {
    sum: f64,
    abs: f64,
    sq: f64,
    idx: Vec<usize>,
    val: Vec<f64>,
    /// For gradients: the largest difference float32 rounding alone makes (the official
    /// float32 gradient against the same step in float64).
    #[serde(default)]
    noise: f64,
}

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/official")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// The value generator of tools/official_fixtures.py, bit for bit.
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` values in [-1, 1), multiples of 2^-23, keyed by `name`.
fn uniform(name: &str, n: usize) -> Vec<f64> {
    let key = fnv1a(name);
    (0..n as u64)
        .map(|i| (splitmix(key ^ i) >> 40) as f64 / (1u64 << 23) as f64 - 1.0)
        .collect()
}

/// BN (gamma = a + b u, beta = c + d u) by the activation after it (see the generator).
fn bn_regime(kind: &str) -> [f64; 4] {
    match kind {
        "relu" => [0.3, 0.05, 3.0, 0.1],
        "hswish" => [0.3, 0.05, 0.0, 0.1],
        _ => [1.0, 0.25, 0.0, 0.1],
    }
}

/// Point-conv and SE expand-conv weights: every input channel's L1 norm set apart.
fn sorted_columns(name: &str, shape: &[usize], u: &mut [f64]) {
    let (rows, cols) = (shape[0], shape[1]);
    let r = uniform(&format!("{name}#rank"), cols);
    let mut order: Vec<usize> = (0..cols).collect();
    order.sort_by(|&a, &b| r[a].total_cmp(&r[b]).then(a.cmp(&b)));
    let mut rank = vec![0usize; cols];
    for (k, &c) in order.iter().enumerate() {
        rank[c] = k;
    }
    let mut l1 = vec![0f64; cols];
    for row in u.chunks(cols) {
        for (s, v) in l1.iter_mut().zip(row) {
            *s += v.abs();
        }
    }
    for (i, v) in u.iter_mut().enumerate() {
        let c = i % cols;
        let m = 0.5 + (rank[c] as f64 + 0.5) / cols as f64;
        *v *= m * 0.5 * rows as f64 / l1[c];
    }
}

/// The deterministic value of the official tensor `name`; `bn_kinds` names the
/// activation after each BN.
fn values(name: &str, shape: &[usize], bn_kinds: &BTreeMap<String, String>) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut u = uniform(name, n);
    let prefix = name.rsplit_once('.').map_or(name, |(p, _)| p);
    let regime = bn_regime(bn_kinds.get(prefix).map_or("none", String::as_str));
    let fan_in: usize = shape.iter().skip(1).product();
    let conv_like = !name.contains("norm.") && name.ends_with("weight");
    if conv_like
        && (name.ends_with("point_conv.conv.weight")
            || name.ends_with("se_layer.expand_conv.weight"))
    {
        sorted_columns(name, shape, &mut u);
    }
    u.into_iter()
        .map(|u| {
            let v = if name.ends_with("norm.weight") {
                regime[0] + regime[1] * u
            } else if name.ends_with("norm.bias") {
                regime[2] + regime[3] * u
            } else if name.ends_with("se_layer.reduce_conv.bias") {
                3.0 + 0.1 * u
            } else if name.ends_with("norm.running_var") {
                1.0 + 0.5 * u
            } else if name.ends_with("bias") || name.ends_with("running_mean") {
                0.1 * u
            } else if name == "input" || name.starts_with("input.") {
                2.0 * u
            } else {
                u * (3.0 / fan_in as f64).sqrt()
            };
            v as f32
        })
        .collect()
}

fn images(name: &str, n: usize, f: &Fixture, device: &Device) -> Tensor<4> {
    let shape = [n, 3, f.resolution, f.resolution];
    Tensor::from_data(
        TensorData::new(values(name, &shape, &f.bn_kinds), shape),
        device,
    )
}

/// The fixture's supernet with the generated weights, through the `.pth` mapping.
fn supernet(f: &Fixture, device: &Device) -> Net {
    let tensors: BTreeMap<String, OfficialTensor> = f
        .tensors
        .iter()
        .map(|(name, shape)| {
            let t = OfficialTensor {
                shape: shape.clone(),
                values: values(name, shape, &f.bn_kinds),
            };
            (name.clone(), t)
        })
        .collect();
    let factors =
        AugFactors::new(f.aug_expand_list.clone(), f.aug_width_mult_list.clone()).unwrap();
    official_net(&f.model, &factors, &tensors, device)
        .unwrap_or_else(|e| panic!("{}: {e}", f.model))
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}

/// Our tensors by our name (the running statistics as last updated).
fn ours(net: &Net) -> Tensors {
    let net = net.clone().valid();
    net.collect(None, None, true)
        .into_iter()
        .map(|t| {
            let data = bridge::to_data(&t).unwrap().convert::<f64>();
            let v = data.try_into_vec::<f64>().unwrap();
            (t.name.clone(), (t.shape.to_vec(), v))
        })
        .collect()
}

/// What went wrong, gathered so that one run names every divergence.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn logits(&mut self, what: &str, got: &[f64], want: &[f64]) {
        if got.len() != want.len() {
            self.0
                .push(format!("{what}: {} logits, want {}", got.len(), want.len()));
            return;
        }
        // The largest |logit|, at least 1: near-uniform outputs (|logits| ~ 0.1) would
        // otherwise hold float32 noise of O(1) activations to a tenfold tighter bound.
        let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(want)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        if std::env::var("FIDELITY_VERBOSE").is_ok() {
            eprintln!("{what}: worst {:.2e} relative", worst / scale);
        }
        if worst > LOGIT_TOL * scale || want.iter().all(|v| v.abs() < 1e-6) {
            self.0.push(format!(
                "{what}: logits differ by {worst:.3e} (scale {scale:.3e})"
            ));
        }
    }

    /// The official tensors of `digests` that `ours` has a counterpart kind of (weights or
    /// statistics, by name) against ours (official names mapped to ours), within `tol`
    /// relative to the tensor's RMS or the value, whichever is larger (see `scale_floor`).
    fn tensors(
        &mut self,
        what: &str,
        ours: &Tensors,
        digests: &BTreeMap<String, Digest>,
        tol: f64,
    ) {
        let stats = ours.keys().any(|k| k.contains("running_"));
        let wanted: Vec<String> = digests
            .keys()
            .filter(|k| k.contains("running_") == stats)
            .cloned()
            .collect();
        let map = official_names(&wanted).unwrap();
        let mut worst = 0f64;
        for theirs in &wanted {
            let d = &digests[theirs];
            let Some((_, got)) = map.get(theirs).and_then(|o| ours.get(o)) else {
                self.0.push(format!("{what}: no tensor for `{theirs}`"));
                continue;
            };
            let floor = scale_floor(theirs, digests, got.len());
            match compare(got, d, tol, floor) {
                Ok(w) => worst = worst.max(w),
                Err(e) => self.0.push(format!("{what}: `{theirs}`: {e}")),
            }
        }
        if std::env::var("FIDELITY_VERBOSE").is_ok() {
            eprintln!("{what}: worst {worst:.2e} relative");
        }
    }

    fn scalar(&mut self, what: &str, got: f64, want: f64) {
        if (got - want).abs() > TENSOR_TOL * want.abs().max(1.0) {
            self.0.push(format!("{what}: {got} != {want}"));
        }
    }

    fn finish(self, model: &str) {
        assert!(
            self.0.is_empty(),
            "{model} differs from the official code in {} place(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// The smallest scale a tensor's differences are measured against, from its layer: a
/// running mean's is the activation std (sqrt of the running variance); a BN shift's is
/// its scale's (a BN shift before a linear map and a BN has a gradient of exactly 0, whose
/// float32 value is rounding noise of the layer's gradients).
fn scale_floor(name: &str, digests: &BTreeMap<String, Digest>, n: usize) -> f64 {
    let rms = |d: &Digest| (d.sq / n.max(1) as f64).sqrt();
    if let Some(p) = name.strip_suffix("running_mean") {
        return digests
            .get(&format!("{p}running_var"))
            .map_or(0.0, |v| rms(v).sqrt());
    }
    if let Some(p) = name.strip_suffix("norm.bias") {
        return digests.get(&format!("{p}norm.weight")).map_or(0.0, rms);
    }
    0.0
}

/// Our tensors by our name: shape and values.
type Tensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// `got` against a digest; the worst sampled difference relative to the tolerance's scale.
fn compare(got: &[f64], d: &Digest, tol: f64, floor: f64) -> Result<f64, String> {
    let n = got.len().max(1) as f64;
    let rms = (d.sq / n).sqrt().max(floor);
    let mut worst = 0f64;
    for (&i, &want) in d.idx.iter().zip(&d.val) {
        let Some(&g) = got.get(i) else {
            return Err(format!(
                "has {} values, the official one over {i}",
                got.len()
            ));
        };
        // Two float32 computations may each be `noise` from the exact value.
        let rel = ((g - want).abs() - 2.0 * d.noise).max(0.0) / want.abs().max(rms).max(1e-30);
        worst = worst.max(rel);
        if rel > tol {
            return Err(format!("[{i}] = {g}, official {want} (rms {rms:.3e})"));
        }
    }
    let sum: f64 = got.iter().sum();
    let abs: f64 = got.iter().map(|v| v.abs()).sum();
    let got_rms = (got.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    let slack = tol * d.abs.max(floor * n) + 2.0 * d.noise * n;
    if (sum - d.sum).abs() > slack || (abs - d.abs).abs() > slack {
        return Err(format!(
            "sum {sum} / abs {abs}, official {} / {}",
            d.sum, d.abs
        ));
    }
    let want_rms = (d.sq / n).sqrt();
    if (got_rms - want_rms).abs() > tol * rms + 2.0 * d.noise {
        return Err(format!("RMS {got_rms}, official {want_rms}"));
    }
    Ok(worst)
}

/// Our gradients by our parameter names.
fn gradients(net: &Net, grads: &GradientsParams) -> Tensors {
    net.collect(None, None, true)
        .into_iter()
        .filter_map(|t| {
            let id = t.param_id?.into();
            let v = match t.shape.len() {
                4 => grads.get::<4>(id).map(read),
                2 => grads.get::<2>(id).map(read),
                _ => grads.get::<1>(id).map(read),
            }?;
            Some((t.name.clone(), (t.shape.to_vec(), v)))
        })
        .collect()
}

/// (weights, BN running statistics).
fn split_stats(t: &Tensors) -> (Tensors, Tensors) {
    t.clone()
        .into_iter()
        .partition(|(k, _)| !k.contains("running_"))
}

fn logits_of(net: &Net, x: Tensor<4>, mode: Mode) -> Vec<f64> {
    read(net.forward(x, mode))
}

fn replay(name: &str) {
    let f = load(name);
    let device = Device::flex();
    let mut report = Report::default();
    let x = images("input", f.batch, &f, &device);

    // Logits at the four sub-networks; train mode on a fresh net each time, since it
    // moves the running statistics.
    let mut net = supernet(&f, &device);
    assert_eq!(
        &net.sample(Active::Min),
        &f.archs["min"],
        "{name}: the target widths differ"
    );
    assert_eq!(
        &net.sample(Active::Max),
        &f.archs["max"],
        "{name}: the widest widths differ"
    );
    for (arch_name, arch) in &f.archs {
        net.set_active_arch(arch.clone())
            .unwrap_or_else(|e| panic!("{name} {arch_name}: {e}"));
        let got = logits_of(&net, x.clone(), Mode::Eval);
        report.logits(
            &format!("eval logits at {arch_name}"),
            &got,
            &f.logits.eval[arch_name],
        );
        let mut fresh = supernet(&f, &device);
        fresh.set_active_arch(arch.clone()).unwrap();
        let got = logits_of(&fresh, x.clone(), Mode::Train);
        report.logits(
            &format!("train logits at {arch_name}"),
            &got,
            &f.logits.train[arch_name],
        );
    }

    // Export of the target.
    net.set_active(Active::Min);
    let exported = net.export();
    let our_export = ours(&exported);
    let names: Vec<String> = f.export.tensors.keys().cloned().collect();
    let map = official_names(&names).unwrap();
    for (theirs, shape) in &f.export.tensors {
        match map.get(theirs).and_then(|o| our_export.get(o)) {
            Some((s, _)) if s == shape => {}
            Some((s, _)) => report
                .0
                .push(format!("export: `{theirs}` is {s:?} here, {shape:?} there")),
            None => report.0.push(format!("export: nothing for `{theirs}`")),
        }
    }
    if our_export.len() != f.export.tensors.len() {
        report.0.push(format!(
            "export: {} tensors here, {} there",
            our_export.len(),
            f.export.tensors.len()
        ));
    }
    report.tensors("export", &our_export, &f.export.digests, TENSOR_TOL);
    report.logits(
        "exported net",
        &logits_of(&exported, x.clone(), Mode::Eval),
        &f.export.logits,
    );

    // Channel sorting of the whole supernet.
    let mut sorted = supernet(&f, &device);
    sorted.sort_channels();
    report.tensors("sort_channels", &ours(&sorted), &f.sort.digests, TENSOR_TOL);
    sorted.set_active_arch(f.archs["random"].clone()).unwrap();
    report.logits(
        "sorted net at random",
        &logits_of(&sorted, x.clone(), Mode::Eval),
        &f.sort.logits,
    );

    // BN re-calibration of the target.
    let recal = supernet(&f, &device);
    let batches: Vec<Tensor<4>> = f
        .reset_bn
        .batches
        .iter()
        .enumerate()
        .map(|(i, &n)| images(&format!("input.recal{i}"), n, &f, &device))
        .collect();
    let seen = recal.calibrate_bn(batches);
    assert_eq!(seen, f.reset_bn.batches.iter().sum::<usize>());
    report.tensors("reset_bn", &ours(&recal), &f.reset_bn.digests, STATS_TOL);
    report.logits(
        "re-calibrated net",
        &logits_of(&recal, x.clone(), Mode::Eval),
        &f.reset_bn.logits,
    );

    // Two NetAug steps: L(min) + L(random), one Nesterov SGD step each.
    let ad = Device::flex().autodiff();
    let mut net = supernet(&f, &ad);
    let mut opt = optimizer(f.steps.weight_decay);
    for (step, (arch, losses)) in f.steps.archs.iter().zip(&f.steps.losses).enumerate() {
        let objective = Objective::hard(&f.labels, f.classes, f.steps.smoothing, &ad);
        let x = images(&f.steps.inputs[step], f.batch, &f, &ad);
        let out = step_loss(&mut net, x, &objective, Some((arch.clone(), 1.0)))
            .unwrap_or_else(|e| panic!("{name} step {step}: {e}"));
        let (total, target) = (
            read(out.total.clone().inner())[0],
            read(out.target.inner())[0],
        );
        report.scalar(&format!("step {step}: L(min)"), target, losses[0]);
        report.scalar(&format!("step {step}: L(aug)"), total - target, losses[1]);
        let grads = GradientsParams::from_grads(out.total.backward(), &net);
        report.tensors(
            &format!("gradients of step {step}"),
            &gradients(&net, &grads),
            &f.steps.grads[step],
            GRAD_TOL,
        );
        net = opt.step(f.steps.lr, net, grads);
        if step == 0 {
            let (weights, stats) = split_stats(&ours(&net));
            report.tensors(
                "weights after one step",
                &weights,
                &f.steps.first_digests,
                TENSOR_TOL,
            );
            report.tensors(
                "BN statistics after one step",
                &stats,
                &f.steps.first_digests,
                STATS_TOL,
            );
        }
    }
    let after = ours(&net);
    let (weights, stats) = split_stats(&after);
    report.tensors(
        "weights after two steps",
        &weights,
        &f.steps.digests,
        TENSOR_TOL,
    );
    report.tensors(
        "BN statistics after two steps",
        &stats,
        &f.steps.digests,
        STATS_TOL,
    );
    report.finish(name);
}

#[test]
fn tinymbv2_equals_the_official_code() {
    replay("tinymbv2");
}

#[test]
fn mbv2_035_equals_the_official_code() {
    replay("mbv2-0.35");
}

#[test]
fn proxylessnas_035_equals_the_official_code() {
    replay("proxylessnas-0.35");
}

#[test]
fn mcunet_equals_the_official_code() {
    replay("mcunet");
}

#[test]
fn mbv3_035_equals_the_official_code() {
    replay("mbv3-0.35");
}
