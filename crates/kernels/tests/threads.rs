//! The flex kernels give the same bits on any number of threads, forward and backward,
//! so that a run's numbers depend on its seed and configuration, not on its machine's
//! cores.

use burn::tensor::{Device, Distribution, Tensor};
use netaug_kernels::{Activation, activation, batch_norm_train, conv2d};

/// Every value a kernel case gives: its output and gradients, as bits.
type Bits = Vec<Vec<u32>>;

fn bits<const D: usize>(t: Tensor<D>) -> Vec<u32> {
    let v = t.into_data().try_into_vec::<f32>().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// Output, dx and dW of a convolution of `x` by `w`, the output weighted by `r`.
fn conv_case(x: &Tensor<4>, w: &Tensor<4>, r: &Tensor<4>, stride: usize, groups: usize) -> Bits {
    let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
    let padding = w.dims()[2] / 2;
    let y = conv2d(x.clone(), w.clone(), stride, padding, groups);
    let g = (y.clone() * r.clone()).sum().backward();
    vec![
        bits(y),
        bits(x.grad(&g).unwrap()),
        bits(w.grad(&g).unwrap()),
    ]
}

/// Every case on a pool of `threads` threads, inputs drawn from seed 3.
fn all_cases(device: &Device, threads: usize) -> Vec<(String, Bits)> {
    device.seed(3);
    let random =
        |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    // (case, x shape, w shape, stride, groups): pointwise at batches below, at and above
    // any thread count and the weight gradient's share count; depthwise; a dense stem.
    let convs = [
        ("pointwise n1", [1, 16, 8, 8], [24, 16, 1, 1], 1, 1),
        ("pointwise n3", [3, 16, 8, 8], [24, 16, 1, 1], 1, 1),
        ("pointwise n8", [8, 16, 8, 8], [24, 16, 1, 1], 1, 1),
        ("pointwise n21", [21, 16, 8, 8], [24, 16, 1, 1], 1, 1),
        ("pointwise n64", [64, 32, 4, 4], [48, 32, 1, 1], 1, 1),
        ("depthwise", [5, 16, 9, 9], [16, 1, 3, 3], 2, 16),
        ("depthwise 2x2", [9, 8, 2, 2], [8, 1, 3, 3], 1, 8),
        ("stem", [5, 1, 16, 16], [8, 1, 3, 3], 2, 1),
        ("dense 3x3", [5, 6, 8, 8], [10, 6, 3, 3], 1, 1),
    ];
    let inputs: Vec<_> = convs
        .iter()
        .map(|&(case, xs, ws, stride, groups)| (case, random(xs), random(ws), stride, groups))
        .collect();
    let outputs: Vec<_> = inputs
        .iter()
        .map(|(case, x, w, stride, groups)| {
            let y = conv2d(x.clone(), w.clone(), *stride, w.dims()[2] / 2, *groups);
            (*case, random(y.dims()))
        })
        .collect();
    let bn_x = random([6, 16, 8, 8]) * 2.0 + 0.5;
    let bn_r = random([6, 16, 8, 8]);
    let [gamma, beta] = [random([1, 1, 1, 16]), random([1, 1, 1, 16])].map(|t| t.reshape([16]));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut cases: Vec<(String, Bits)> = inputs
            .iter()
            .zip(&outputs)
            .map(|((case, x, w, stride, groups), (_, r))| {
                (case.to_string(), conv_case(x, w, r, *stride, *groups))
            })
            .collect();
        let (x, gamma, beta) = (
            bn_x.clone().require_grad(),
            gamma.clone().require_grad(),
            beta.clone().require_grad(),
        );
        let (y, mean, var) = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let y = activation(y, Activation::HardSwish);
        let g = (y.clone() * bn_r.clone()).sum().backward();
        let values = vec![
            bits(y),
            bits(mean),
            bits(var),
            bits(x.grad(&g).unwrap()),
            bits(gamma.grad(&g).unwrap()),
            bits(beta.grad(&g).unwrap()),
        ];
        cases.push(("batch norm, hard swish".into(), values));
        cases
    })
}

#[test]
fn kernels_give_the_same_bits_on_any_number_of_threads() {
    let device = Device::flex().autodiff();
    let one = all_cases(&device, 1);
    for threads in [2, 3, 4] {
        for ((case, a), (_, b)) in one.iter().zip(all_cases(&device, threads)) {
            for (k, (a, b)) in a.iter().zip(&b).enumerate() {
                let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert_eq!(
                    differ,
                    0,
                    "{case}, value {k}: {differ} of {} differ on {threads} threads",
                    a.len()
                );
            }
        }
    }
}
