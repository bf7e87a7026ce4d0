//! The kernels against burn's reference ops: same outputs and gradients (1e-4) on random
//! inputs, on every backend compiled in (`flex` always, LibTorch's CPU with `--features tch`).

use burn::tensor::module as m;
use burn::tensor::{Device, Distribution, Tensor};
use netaug_kernels::{batch_norm_train, conv_options, conv2d};

fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut v = vec![("flex", Device::flex())];
    #[cfg(feature = "tch")]
    {
        #[allow(deprecated)]
        v.push(("tch-cpu", Device::libtorch()));
    }
    v
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Largest |a - b| relative to max(1, |b|).
fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a = a.into_data().try_into_vec::<f32>().unwrap();
    let b = b.into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn close<const D: usize>(what: &str, a: Tensor<D>, b: Tensor<D>) {
    let d = max_diff(a, b);
    assert!(d <= 1e-4, "{what}: max relative difference {d}");
}

/// Our convolution of `x` (tracked) by `w` against burn's: output, dx and dW.
fn check_conv(case: &str, x: Tensor<4>, w: Tensor<4>, stride: usize, groups: usize) {
    let padding = w.dims()[2] / 2;
    let ours = conv2d(x.clone(), w.clone(), stride, padding, groups);
    let options = conv_options(stride, padding, groups);
    let reference = m::conv2d(x.clone(), w.clone(), None, options);
    let r = random(reference.dims(), &x.device());
    let g1 = (ours.clone() * r.clone()).sum().backward();
    let g2 = (reference.clone() * r).sum().backward();
    close(&format!("{case}: output"), ours, reference);
    let (dx1, dx2) = (x.grad(&g1).unwrap(), x.grad(&g2).unwrap());
    close(&format!("{case}: dx"), dx1, dx2);
    let (dw1, dw2) = (w.grad(&g1).unwrap(), w.grad(&g2).unwrap());
    close(&format!("{case}: dw"), dw1, dw2);
}

#[test]
fn conv2d_matches_burn_forward_and_backward() {
    for (name, base) in devices() {
        let device = base.autodiff();
        device.seed(7);
        // (c_in, c_out, groups): dense, two groups, depthwise, dense stems on grayscale
        // and RGB (the direct path).
        for (c_in, c_out, groups) in [(6, 8, 1), (6, 8, 2), (12, 12, 12), (1, 8, 1), (3, 5, 1)] {
            for stride in [1, 2] {
                for k in [1, 3, 5, 7] {
                    let case = format!("{name} groups {groups} stride {stride} kernel {k}");
                    let x = random([3, c_in, 11, 10], &device).require_grad();
                    let w = random([c_out, c_in / groups, k, k], &device).require_grad();
                    check_conv(&case, x, w, stride, groups);
                }
            }
        }
    }
}

#[test]
fn pointwise_conv2d_matches_burn_at_every_batch_split() {
    // Batches below, at and above the thread count take different paths (one product split
    // over threads, images in parallel, uneven shares of the weight gradient); 1x1 maps are
    // the classifier side of a net at 32 px.
    for (name, base) in devices() {
        let device = base.clone().autodiff();
        device.seed(17);
        for n in [1, 2, 3, 5] {
            for (h, w) in [(1, 1), (3, 5), (8, 8)] {
                let case = format!("{name} pointwise n {n} {h}x{w}");
                let x = random([n, 10, h, w], &device).require_grad();
                let wt = random([7, 10, 1, 1], &device).require_grad();
                check_conv(&case, x, wt, 1, 1);
                // Without autodiff.
                let (x, wt) = (random([n, 10, h, w], &base), random([7, 10, 1, 1], &base));
                let plain = conv2d(x.clone(), wt.clone(), 1, 0, 1);
                close(&case, plain, m::conv2d(x, wt, None, conv_options(1, 0, 1)));
            }
        }
    }
}

#[test]
fn batch_norm_without_autodiff_matches_burn() {
    for (name, device) in devices() {
        device.seed(19);
        let x = random([3, 5, 7, 6], &device) * 2.0 + 0.5;
        let (gamma, beta) = (random([5], &device), random([5], &device));
        let (y, mean, var) = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let reference = m::batch_norm_train(x, gamma, beta, 1e-5);
        close(&format!("{name}: output"), y, reference.output);
        close(&format!("{name}: mean"), mean, reference.mean);
        close(&format!("{name}: variance"), var, reference.variance);
    }
}

/// Batch norm computed in f64 from the same f32 inputs: `[N, C, P]` flattened.
fn batch_norm_f64(x: &[f32], [n, c, p]: [usize; 3], gamma: &[f32], beta: &[f32]) -> Vec<f64> {
    let mut y = vec![0f64; x.len()];
    for ch in 0..c {
        let at = |i: usize, q: usize| x[(i * c + ch) * p + q] as f64;
        let all = || (0..n).flat_map(move |i| (0..p).map(move |q| (i, q)));
        let m = (n * p) as f64;
        let mean = all().map(|(i, q)| at(i, q)).sum::<f64>() / m;
        let var = all().map(|(i, q)| (at(i, q) - mean).powi(2)).sum::<f64>() / m;
        for (i, q) in all() {
            let v = (at(i, q) - mean) / (var + 1e-5).sqrt();
            y[(i * c + ch) * p + q] = v * gamma[ch] as f64 + beta[ch] as f64;
        }
    }
    y
}

#[test]
fn batch_norm_is_as_accurate_as_burn_when_the_mean_dwarfs_the_spread() {
    for (name, device) in devices() {
        device.seed(19);
        let x = random([3, 5, 7, 6], &device) * 0.01 + 100.0;
        let (gamma, beta) = (random([5], &device), random([5], &device));
        let (y, _, _) = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let reference = m::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let vec = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap();
        let flat = |t: Tensor<4>| vec(t.flatten(0, 3));
        let truth = batch_norm_f64(&flat(x), [3, 5, 42], &vec(gamma), &vec(beta));
        let err = |v: Vec<f32>| {
            v.iter()
                .zip(&truth)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max)
        };
        let (ours, theirs) = (err(flat(y)), err(flat(reference.output)));
        assert!(
            ours <= theirs.max(1e-3),
            "{name}: error {ours} against f64, burn's {theirs}"
        );
    }
}

#[test]
fn conv2d_without_autodiff_matches_burn() {
    for (name, device) in devices() {
        device.seed(3);
        let x = random([2, 12, 9, 9], &device);
        let w = random([12, 1, 5, 5], &device);
        let ours = conv2d(x.clone(), w.clone(), 2, 2, 12);
        let reference = m::conv2d(x, w, None, conv_options(2, 2, 12));
        close(name, ours, reference);
    }
}

#[test]
fn input_gradient_only_when_weight_is_constant() {
    for (name, base) in devices() {
        let device = base.autodiff();
        device.seed(5);
        let x = random([2, 8, 7, 7], &device).require_grad();
        let w = random([8, 1, 3, 3], &device);
        let r = random([2, 8, 7, 7], &device);
        let g1 = (conv2d(x.clone(), w.clone(), 1, 1, 8) * r.clone())
            .sum()
            .backward();
        let g2 = (m::conv2d(x.clone(), w, None, conv_options(1, 1, 8)) * r)
            .sum()
            .backward();
        close(name, x.grad(&g1).unwrap(), x.grad(&g2).unwrap());
    }
}

#[test]
fn batch_norm_matches_burn_forward_and_backward() {
    for (name, base) in devices() {
        let device = base.autodiff();
        device.seed(11);
        let x = (random([4, 6, 5, 3], &device) * 3.0 + 1.5).require_grad();
        let gamma = random([6], &device).require_grad();
        let beta = random([6], &device).require_grad();
        let (y, mean, var) = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let reference = m::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let r = random([4, 6, 5, 3], &device);
        let g1 = (y.clone() * r.clone()).sum().backward();
        let g2 = (reference.output.clone() * r).sum().backward();
        close(&format!("{name}: output"), y, reference.output);
        close(&format!("{name}: mean"), mean, reference.mean);
        close(&format!("{name}: variance"), var, reference.variance);
        for (what, t) in [("dgamma", &gamma), ("dbeta", &beta)] {
            close(
                &format!("{name}: {what}"),
                t.grad(&g1).unwrap(),
                t.grad(&g2).unwrap(),
            );
        }
        close(
            &format!("{name}: dx"),
            x.grad(&g1).unwrap(),
            x.grad(&g2).unwrap(),
        );
    }
}

#[test]
fn activations_match_burn_forward_and_backward() {
    use burn::tensor::activation as a;
    use netaug_kernels::{Activation, activation};
    for (name, base) in devices() {
        let device = base.clone().autodiff();
        device.seed(13);
        for act in [
            Activation::Relu,
            Activation::Relu6,
            Activation::HardSwish,
            Activation::HardSigmoid,
        ] {
            // Spread over every piece of the hard functions: [-8, 8].
            let x = (random([3, 5, 4, 6], &device) * 4.0).require_grad();
            let ours = activation(x.clone(), act);
            let reference = match act {
                Activation::Relu => a::relu(x.clone()),
                Activation::Relu6 => a::relu6(x.clone()),
                Activation::HardSwish => a::hard_swish(x.clone()),
                Activation::HardSigmoid => a::hard_sigmoid(x.clone(), 1.0 / 6.0, 0.5),
            };
            let r = random([3, 5, 4, 6], &device);
            let g1 = (ours.clone() * r.clone()).sum().backward();
            let g2 = (reference.clone() * r).sum().backward();
            close(&format!("{name} {act:?}: output"), ours, reference);
            close(
                &format!("{name} {act:?}: dx"),
                x.grad(&g1).unwrap(),
                x.grad(&g2).unwrap(),
            );
        }
        // Rank 2 (the classifier's side of the SE block uses rank 4, heads rank 2).
        let x = random([4, 7], &base);
        close(
            &format!("{name} rank 2"),
            activation(x.clone(), Activation::Relu6),
            a::relu6(x),
        );
    }
}

#[test]
fn derivatives_match_finite_differences() {
    use netaug_kernels::Activation;
    for act in [
        Activation::Relu,
        Activation::Relu6,
        Activation::HardSwish,
        Activation::HardSigmoid,
    ] {
        for i in -80..80 {
            // Away from the kinks (multiples of 0.1 offset by 0.05).
            let x = i as f32 * 0.1 + 0.05;
            let h = 1e-3;
            let fd = (act.value(x + h) - act.value(x - h)) / (2.0 * h);
            let d = act.derivative(x);
            assert!((fd - d).abs() < 1e-2, "{act:?} at {x}: {fd} vs {d}");
        }
    }
}
