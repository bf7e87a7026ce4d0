//! The NetAug supernet's contracts: paper-exact sizes, export equivalence, gradients
//! confined to the active slice, function-preserving channel sorting, sampling.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};
use netaug_model::layers::ParamRef;
use netaug_model::{Active, AugFactors, InitKind, Mode, Net, zoo};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ZOO: &[&str] = &[
    "tinymbv2",
    "mbv2-0.35",
    "proxylessnas-0.35",
    "mcunet",
    "mbv3-0.35",
    "mbv2-1.0",
    "resnet50",
];

/// The paper's factor lists, smaller ones for ResNet50 (keeps the test's memory small).
fn factors(name: &str) -> AugFactors {
    if name == "resnet50" {
        return AugFactors::new(vec![1.0, 1.5], vec![1.0, 1.25]).unwrap();
    }
    let (e, w) = zoo::paper_factors(name);
    AugFactors::new(e, w).unwrap()
}

fn supernet(name: &str, classes: usize, device: &Device) -> Net {
    let spec = zoo::spec(name, classes, 3).unwrap();
    Net::new(&spec, &factors(name), InitKind::KaimingUniform, 7, device)
}

/// Gives BN affine parameters and biases random values (they start at 1 and 0, which would
/// hide slicing mistakes); conv and linear weights keep their random init.
struct Perturb(Vec<String>);

impl ModuleMapper for Perturb {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.0.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.0.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let range = match self.0.last().map(String::as_str) {
            Some("gamma") => Some((0.5, 1.5)),
            Some("beta") | Some("bias") => Some((-0.3, 0.3)),
            _ => None,
        };
        match range {
            Some((lo, hi)) => param.map(|t| t.random_like(Distribution::Uniform(lo, hi))),
            None => param,
        }
    }
}

fn perturbed(net: Net) -> Net {
    net.map(&mut Perturb(Vec::new()))
}

/// Outputs must be O(1) for an absolute tolerance to mean anything.
fn assert_meaningful(t: &Tensor<2>, what: &str) {
    let v = values(t.clone());
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
    assert!(
        var.sqrt() > 0.05,
        "{what}: outputs too flat to compare (std {})",
        var.sqrt()
    );
    assert!(
        v.iter().all(|x| x.is_finite() && x.abs() < 1e3),
        "{what}: outputs out of range"
    );
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// Largest elementwise |a - b|; infinite when either side is not finite (`f32::max`
/// would silently skip NaNs).
fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| {
            if x.is_finite() && y.is_finite() {
                (x - y).abs()
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0, f32::max)
}

fn images(device: &Device, n: usize, res: usize) -> Tensor<4> {
    Tensor::random([n, 3, res, res], Distribution::Normal(0.0, 1.0), device)
}

fn millions(v: u64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v as f64 / 1e6 * scale).round() / scale
}

#[test]
fn profiles_equal_the_paper_table() {
    // (model, resolution, params in M at the table's precision, MACs in M)
    let table: &[(&str, usize, f64, i32, f64)] = &[
        ("tinymbv2", 144, 0.75, 2, 23.5),
        ("mbv2-0.35", 160, 1.7, 1, 30.9),
        ("proxylessnas-0.35", 160, 1.8, 1, 35.7),
        ("mcunet", 176, 0.74, 2, 81.8),
        ("mbv3-0.35", 160, 2.1, 1, 19.5),
        ("mbv2-1.0", 224, 3.5, 1, 300.8),
    ];
    let device = Device::flex();
    for &(name, res, params, digits, macs) in table {
        let spec = zoo::spec(name, 1000, 3).unwrap();
        let p = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device).profile(res);
        assert_eq!(
            millions(p.params, digits),
            params,
            "{name} params {}",
            p.params
        );
        assert_eq!(millions(p.macs, 1), macs, "{name} MACs {}", p.macs);
    }
    let spec = zoo::spec("resnet50", 1000, 3).unwrap();
    let p = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device).profile(224);
    assert_eq!(millions(p.params, 1), 25.6);
    assert_eq!(
        (p.macs as f64 / 1e8).round() / 10.0,
        4.1,
        "ResNet50 MACs {}",
        p.macs
    );
    // torchvision's exact parameter count.
    assert_eq!(p.params, 25_557_032);
}

#[test]
fn supernet_at_min_profiles_as_the_plain_net_and_its_export() {
    let device = Device::flex();
    for name in ["tinymbv2", "mbv3-0.35", "mcunet"] {
        let spec = zoo::spec(name, 10, 3).unwrap();
        let plain = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device);
        let mut sup = supernet(name, 10, &device);
        assert_eq!(sup.profile(96), plain.profile(96), "{name}");
        let exported = sup.export();
        assert_eq!(exported.profile(96), plain.profile(96), "{name}");
        // The exported tensors really have the counted shapes.
        for w in exported.active_weights() {
            assert_eq!(w.param.shape(), w.active, "{name} {}", w.name);
        }
        // Wider sub-networks cost more.
        sup.set_active(Active::Max);
        assert!(sup.profile(96).macs > plain.profile(96).macs);
        assert!(sup.profile(96).params > plain.profile(96).params);
    }
}

#[test]
fn export_equals_the_supernet_at_min_for_every_zoo_net() {
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for &name in ZOO {
        device.seed(11);
        let mut net = perturbed(supernet(name, 10, &device));
        // Training steps at random widths move the running statistics of wider slices.
        for _ in 0..2 {
            net.set_active(Active::Random(&mut rng));
            let _ = net.forward(images(&device, 4, 32), Mode::Train);
        }
        net.set_active(Active::Min);
        net.calibrate_bn([images(&device, 8, 32)]);
        let exported = net.export();
        let x = images(&device, 3, 32);
        let a = net.forward(x.clone(), Mode::Eval);
        let b = exported.forward(x, Mode::Eval);
        assert_eq!(a.dims(), [3, 10]);
        assert_meaningful(&a, name);
        let diff = max_abs_diff(a, b);
        assert!(diff <= 1e-5, "{name}: max |supernet - export| = {diff}");
    }
}

/// Sum of |grad| outside the leading slice `active` (and the grad's total), per weight.
fn grad_outside(grad: Vec<f32>, full: &[usize], active: &[usize]) -> (f64, f64) {
    let mut outside = 0.0;
    let mut total = 0.0;
    for (flat, g) in grad.iter().enumerate() {
        let mut rest = flat;
        let mut inside = true;
        for d in (0..full.len()).rev() {
            let i = rest % full[d];
            rest /= full[d];
            inside &= i < active[d];
        }
        total += g.abs() as f64;
        if !inside {
            outside += g.abs() as f64;
        }
    }
    (outside, total)
}

fn grad_values(param: ParamRef<'_>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    fn get<const D: usize>(p: &Param<Tensor<D>>, g: &burn::tensor::Gradients) -> Vec<f32> {
        let shape = p.val().dims();
        match p.val().grad(g) {
            Some(t) => values(t),
            None => vec![0.0; shape.iter().product()],
        }
    }
    match param {
        ParamRef::R1(p) => get(p, grads),
        ParamRef::R2(p) => get(p, grads),
        ParamRef::R4(p) => get(p, grads),
    }
}

#[test]
fn gradients_flow_only_into_the_active_slice() {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for name in ["tinymbv2", "mbv3-0.35", "resnet50"] {
        device.seed(1);
        let mut net = supernet(name, 10, &device);
        let min_shapes: Vec<Vec<usize>> =
            net.active_weights().into_iter().map(|w| w.active).collect();

        // At min: nothing outside the target's slice, something inside every weight.
        let loss = net
            .forward(images(&device, 4, 32), Mode::Train)
            .powf_scalar(2.0)
            .mean();
        let grads = loss.backward();
        for w in net.active_weights() {
            let (outside, total) =
                grad_outside(grad_values(w.param, &grads), &w.param.shape(), &w.active);
            assert_eq!(
                outside, 0.0,
                "{name} {}: grad outside the min slice",
                w.name
            );
            assert!(total > 0.0, "{name} {}: no gradient at all", w.name);
        }

        // A wider random net: grads reach beyond the target's slice, never beyond its own.
        let mut widened = 0;
        while widened == 0 {
            let arch = net.set_active(Active::Random(&mut rng)).clone();
            widened = arch
                .blocks
                .iter()
                .zip(&net.spec().blocks)
                .filter(|(w, b)| w.mid > b.mid)
                .count();
        }
        let loss = net
            .forward(images(&device, 4, 32), Mode::Train)
            .powf_scalar(2.0)
            .mean();
        let grads = loss.backward();
        let mut beyond_min = 0.0;
        for (w, min_shape) in net.active_weights().into_iter().zip(&min_shapes) {
            let full = w.param.shape();
            let g = grad_values(w.param, &grads);
            let (outside_active, _) = grad_outside(g.clone(), &full, &w.active);
            assert_eq!(
                outside_active, 0.0,
                "{name} {}: grad outside the active slice",
                w.name
            );
            beyond_min += grad_outside(g, &full, min_shape).0;
        }
        assert!(
            beyond_min > 0.0,
            "{name}: a wider net must train the extra weights"
        );
    }
}

#[test]
fn sorting_channels_keeps_the_full_net_and_orders_importance() {
    let device = Device::flex();
    for name in ["mbv2-0.35", "mbv3-0.35", "resnet50"] {
        device.seed(2);
        let mut net = perturbed(supernet(name, 10, &device));
        net.set_active(Active::Max);
        net.calibrate_bn([images(&device, 8, 32)]);
        let x = images(&device, 2, 32);
        let before = net.forward(x.clone(), Mode::Eval);
        assert_meaningful(&before, name);
        net.sort_channels();
        let after = net.forward(x, Mode::Eval);
        // Sorting changes the order of float sums only: relative error at rounding level.
        let scale = values(before.clone())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(before, after) / scale;
        assert!(
            diff <= 1e-4,
            "{name}: sorting changed the output by {diff} (relative)"
        );
        for (i, block) in net.blocks.iter().enumerate() {
            for imp in block.importances() {
                assert!(
                    imp.windows(2).all(|p| p[0] >= p[1]),
                    "{name} block {i}: importances not descending"
                );
            }
        }
    }
}

/// Regression: sorting on an autodiff device used to leave weights tied to a consumed
/// graph, so the next backward panicked ("graph tape has already been consumed").
#[test]
fn training_continues_after_sorting_channels() {
    let device = Device::flex().autodiff();
    device.seed(5);
    for name in ["tinymbv2", "mbv3-0.35"] {
        let mut net = supernet(name, 10, &device);
        let x = images(&device, 4, 32);
        let _ = net.forward(x.clone(), Mode::Train).sum().backward();
        net.sort_channels();
        let grads = net.forward(x, Mode::Train).sum().backward();
        let w = &net.blocks[1].conv_layers()[0].conv.weight;
        assert!(
            w.val().grad(&grads).is_some(),
            "{name}: sorted weight lost its gradient"
        );
    }
}

#[test]
fn random_sampling_covers_every_factor_and_respects_shortcuts() {
    let device = Device::flex();
    let mut net = supernet("mbv2-0.35", 10, &device);
    let spec = net.spec().clone();
    let (expand, width) = zoo::paper_factors("mbv2-0.35");
    let mut rng = ChaCha8Rng::seed_from_u64(9);

    // Widths: every factor of the width list shows up at every non-identity block.
    let mut seen = vec![std::collections::BTreeSet::new(); spec.blocks.len()];
    let mut stems = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let arch = net.set_active(Active::MinE(&mut rng)).clone();
        stems.insert(arch.stem);
        let mut in_ch = arch.first.unwrap();
        for (i, (w, b)) in arch.blocks.iter().zip(&spec.blocks).enumerate() {
            if b.identity {
                assert_eq!(
                    w.out, in_ch,
                    "block {i}: identity shortcut must keep the input width"
                );
            }
            seen[i].insert(w.out);
            in_ch = w.out;
        }
    }
    assert_eq!(stems.len(), width.len());
    for (i, b) in spec.blocks.iter().enumerate() {
        if !b.identity {
            let want: std::collections::BTreeSet<usize> =
                netaug_model::divisible::aug_width(b.out, &width)
                    .into_iter()
                    .collect();
            assert_eq!(seen[i], want, "block {i} widths");
        }
    }

    // Expand ratios: with widths at min, every factor of the expand list shows up.
    let mut mids = vec![std::collections::BTreeSet::new(); spec.blocks.len()];
    for _ in 0..300 {
        let arch = net.set_active(Active::MinW(&mut rng)).clone();
        for (i, w) in arch.blocks.iter().enumerate() {
            mids[i].insert(w.mid);
        }
    }
    for (i, b) in spec.blocks.iter().enumerate() {
        let ratio = b.mid as f64 / b.in_ch as f64 + 1e-10;
        let want: std::collections::BTreeSet<usize> = expand
            .iter()
            .map(|e| netaug_model::divisible::make_divisible(ratio * e * b.in_ch as f64, 1))
            .collect();
        assert_eq!(mids[i], want, "block {i} hidden widths");
    }

    // Full random draws keep identity blocks at their input width too.
    for _ in 0..100 {
        let arch = net.set_active(Active::Random(&mut rng)).clone();
        let mut in_ch = arch.first.unwrap();
        for (w, b) in arch.blocks.iter().zip(&spec.blocks) {
            if b.identity {
                assert_eq!(w.out, in_ch);
            }
            in_ch = w.out;
        }
    }

    // A seed reproduces the draws; another seed does not.
    let draw = |seed: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        (0..20)
            .map(|_| net.sample(Active::Random(&mut r)))
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(42), draw(42));
    assert_ne!(draw(42), draw(43));
}

#[test]
fn save_and_load_round_trip() {
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("netaug-model-save-{}", std::process::id()));
    let mut net = perturbed(supernet("mbv3-0.35", 10, &device));
    net.calibrate_bn([images(&device, 8, 32)]);
    net.save(&dir).unwrap();
    let mut loaded = Net::load(&dir, &device).unwrap();
    let x = images(&device, 2, 32);
    for active in [Active::Min, Active::Max] {
        let widest = matches!(active, Active::Max);
        net.set_active(if widest { Active::Max } else { Active::Min });
        loaded.set_active(active);
        let out = net.forward(x.clone(), Mode::Eval);
        if !widest {
            assert_meaningful(&out, "saved net");
        }
        let d = max_abs_diff(out, loaded.forward(x.clone(), Mode::Eval));
        assert_eq!(d, 0.0);
    }
    // An exported tiny net saves and loads as a plain net.
    net.set_active(Active::Min);
    let exported = net.export();
    let edir = dir.join("exported");
    exported.save(&edir).unwrap();
    let back = Net::load(&edir, &device).unwrap();
    assert!(!back.factors().is_augmented());
    let d = max_abs_diff(
        exported.forward(x.clone(), Mode::Eval),
        back.forward(x, Mode::Eval),
    );
    assert_eq!(d, 0.0);
    // Missing files are named.
    let err = Net::load(&dir.join("nope"), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.json"), "{err}");
    // Weights damaged into NaN (2,000 bytes of 0xFF near the end of the file, in the
    // tensors' data) are refused, naming the file.
    let weights = edir.join("weights.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let end = bytes.len() - 64;
    bytes[end - 2000..end].fill(0xFF);
    std::fs::write(&weights, bytes).unwrap();
    let err = Net::load(&edir, &device).unwrap_err().to_string();
    assert!(
        err.contains("weights.bpk") && err.contains("weights are not finite"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_factor_lists_are_refused() {
    assert!(AugFactors::new(vec![], vec![1.0]).is_err());
    assert!(AugFactors::new(vec![1.0, 0.5], vec![1.0]).is_err());
    assert!(AugFactors::new(vec![1.6, 1.0], vec![1.0]).is_err());
    assert!(AugFactors::new(vec![1.0], vec![1.0, f64::NAN]).is_err());
    assert!(AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).is_ok());
}

#[test]
fn grayscale_input_and_class_count_are_honoured() {
    let device = Device::flex();
    let spec = zoo::spec("tinymbv2", 10, 1).unwrap();
    let net = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device);
    let x = Tensor::<4>::random([2, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(net.forward(x, Mode::Eval).dims(), [2, 10]);
}

#[test]
fn bn_calibration_sets_running_statistics_to_the_batch_averages() {
    let device = Device::flex();
    let spec = zoo::spec("tinymbv2", 10, 3).unwrap();
    let mut net = perturbed(supernet("tinymbv2", 10, &device));
    net.set_active(Active::Min);
    let x = images(&device, 8, 32);
    // Calibrated on one batch, eval mode reproduces the batch-statistics output exactly.
    assert_eq!(net.calibrate_bn([x.clone()]), 8);
    let eval = net.forward(x.clone(), Mode::Eval);
    assert_meaningful(&eval, "calibrated");
    // Mode::Calibrate normalizes with batch statistics like Mode::Train (without updating).
    let calib = net.forward(x.clone(), Mode::Calibrate);
    let d = max_abs_diff(eval, calib);
    assert!(
        d <= 1e-3,
        "eval after calibration differs from batch-stat output by {d}"
    );
    // Two half batches average to the same means as the whole batch (equal sizes).
    let plain = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device);
    let halves = [x.clone().slice_dim(0, 0..4), x.clone().slice_dim(0, 4..8)];
    plain.calibrate_bn(halves);
    let stem_mean = |n: &Net| values(n.stem.bn.as_ref().unwrap().running_mean.value());
    let whole = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device);
    whole.calibrate_bn([x]);
    let (a, b) = (stem_mean(&plain), stem_mean(&whole));
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
    assert!(
        a.iter().any(|v| v.abs() > 1e-3),
        "running mean still at its initial zeros"
    );
}

/// The training loop re-calibrates BN on a copy whose weights need no gradients (so no
/// autodiff graph holds the calibration batches): the copy must share the statistics it
/// re-estimates with the trained net, and leave the trained net's weights trainable.
#[test]
fn calibrating_a_no_grad_copy_updates_the_nets_bn_statistics() {
    let device = Device::flex().autodiff();
    let spec = zoo::spec("tinymbv2", 10, 3).unwrap();
    let net = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 0, &device);
    let stem_mean = |n: &Net| values(n.stem.bn.as_ref().unwrap().running_mean.value());
    let before = stem_mean(&net);
    let frozen = net.clone().no_grad();
    assert!(!frozen.stem.conv.weight.val().is_require_grad());
    frozen.calibrate_bn([images(&device, 8, 32)]);
    let (copy, trained) = (stem_mean(&frozen), stem_mean(&net));
    assert_eq!(copy, trained, "the copy's statistics are the net's");
    assert_ne!(trained, before, "calibration changed nothing");
    drop(frozen);
    assert!(net.stem.conv.weight.val().is_require_grad());
}

#[test]
fn zoo_specs_are_valid_and_broken_descriptions_are_refused() {
    for &name in ZOO {
        zoo::spec(name, 1000, 3).unwrap().validate().unwrap();
    }
    let mut spec = zoo::spec("mcunet", 10, 3).unwrap();
    spec.blocks[3].in_ch += 1;
    assert!(spec.validate().unwrap_err().to_string().contains("block 3"));
    let mut spec = zoo::spec("mcunet", 10, 3).unwrap();
    spec.blocks[0].identity = true; // strided: cannot add the input
    assert!(spec.validate().is_err());

    // A hand-edited model.json is an error naming the file, not a panic.
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("netaug-model-bad-{}", std::process::id()));
    let net = Net::new(
        &zoo::spec("tinymbv2", 10, 3).unwrap(),
        &AugFactors::none(),
        InitKind::HeFout,
        0,
        &device,
    );
    net.save(&dir).unwrap();
    let json_path = dir.join("model.json");
    let text = std::fs::read_to_string(&json_path).unwrap();
    std::fs::write(
        &json_path,
        text.replacen("\"kernel\": 3", "\"kernel\": 4", 1),
    )
    .unwrap();
    let err = Net::load(&dir, &device).unwrap_err().to_string();
    assert!(
        err.contains("model.json") && err.contains("kernel"),
        "{err}"
    );
    std::fs::write(&json_path, "{\"spec\": 1}").unwrap();
    assert!(
        Net::load(&dir, &device)
            .unwrap_err()
            .to_string()
            .contains("model.json")
    );
    // Weights of another network do not load silently.
    let other = Net::new(
        &zoo::spec("mcunet", 10, 3).unwrap(),
        &AugFactors::none(),
        InitKind::HeFout,
        0,
        &device,
    );
    other.save(&dir).unwrap();
    std::fs::write(&json_path, text).unwrap();
    assert!(
        Net::load(&dir, &device)
            .unwrap_err()
            .to_string()
            .contains("weights.bpk")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recorded_widths_can_be_selected_again_and_impossible_ones_are_refused() {
    let device = Device::flex();
    let mut net = supernet("mbv3-0.35", 10, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let arch = net.sample(Active::Random(&mut rng));
    net.set_active_arch(arch.clone()).unwrap();
    assert_eq!(net.active(), &arch);
    let mut too_wide = arch.clone();
    too_wide.blocks[2].mid += 10_000;
    assert!(net.set_active_arch(too_wide).is_err());
    let mut broken_shortcut = arch.clone();
    let i = net.spec().blocks.iter().position(|b| b.identity).unwrap();
    broken_shortcut.blocks[i].out = broken_shortcut.blocks[i - 1].out + 1;
    assert!(net.set_active_arch(broken_shortcut).is_err());
    assert_eq!(
        net.active(),
        &arch,
        "a refused arch leaves the active one in place"
    );
}

#[test]
fn features_at_strides_8_16_32_follow_the_active_widths() {
    let device = Device::flex();
    for name in ["tinymbv2", "mcunet", "proxylessnas-0.35"] {
        let mut net = supernet(name, 10, &device);
        let strides = [8, 16, 32];
        for active in [Active::Min, Active::Max] {
            net.set_active(active);
            let feats = net.features(images(&device, 2, 96), Mode::Eval, &strides);
            let channels = net.feature_channels(&strides);
            assert_eq!(feats.len(), 3, "{name}");
            // Every stage end, shallowest first, ends at stride 32; each map has the
            // channels and the side its feature_info says.
            let info = net.feature_info();
            let reductions: Vec<usize> = info.iter().map(|f| f.reduction).collect();
            assert!(
                reductions.windows(2).all(|w| w[0] < w[1]) && reductions.last() == Some(&32),
                "{name}: {reductions:?}"
            );
            let all = net.features(images(&device, 1, 96), Mode::Eval, &reductions);
            assert_eq!(all.len(), info.len(), "{name}");
            for (f, (s, t)) in info.iter().zip(&all) {
                assert_eq!(t.dims(), [1, f.channels, 96 / s, 96 / s], "{name} {f:?}");
            }
            for ((stride, f), (s, c)) in feats.iter().zip(&channels) {
                assert_eq!(stride, s);
                assert_eq!(
                    f.dims(),
                    [2, *c, 96 / stride, 96 / stride],
                    "{name} stride {stride}"
                );
            }
        }
        // The augmented net is wider at every stride.
        net.set_active(Active::Min);
        let min = net.feature_channels(&strides);
        net.set_active(Active::Max);
        let max = net.feature_channels(&strides);
        assert!(
            min.iter().zip(&max).all(|(a, b)| a.1 < b.1),
            "{name}: {min:?} {max:?}"
        );
        assert!(
            net.features(images(&device, 1, 64), Mode::Eval, &[64])
                .is_empty()
        );
    }
}
