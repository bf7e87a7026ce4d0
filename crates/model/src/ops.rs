//! The one place where the dynamic layers call tensor kernels.
//!
//! Every convolution (dense and depthwise), batch norm and linear map of the model goes
//! through these functions. Convolutions without bias and training-mode batch norm run
//! on netaug-kernels' fast paths (direct depthwise backward on flex, ATen's backward on
//! LibTorch); the rest are burn's ops.

use burn::tensor::Tensor;
use burn::tensor::module as m;

/// 2-D convolution with "same" padding (`kernel / 2`), as every conv of the zoo uses.
pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    groups: usize,
) -> Tensor<4> {
    let kernel = weight.dims()[2];
    let pad = kernel / 2;
    match bias {
        None => netaug_kernels::conv2d(x, weight, stride, pad, groups),
        Some(b) => m::conv2d(
            x,
            weight,
            Some(b),
            netaug_kernels::conv_options(stride, pad, groups),
        ),
    }
}

/// Batch norm with the batch's own statistics; returns the output, the batch mean and the
/// biased batch variance.
pub(crate) fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    netaug_kernels::batch_norm_train(x, gamma, beta, eps)
}

/// Batch norm with given statistics (inference).
pub(crate) fn batch_norm_eval(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    eps: f64,
) -> Tensor<4> {
    m::batch_norm(x, gamma, beta, mean, var, eps)
}

/// `x @ weight^T + bias`, with the weight in PyTorch's `[out, in]` layout.
pub(crate) fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    m::linear(x, weight.transpose(), bias)
}

/// Global average pooling to `[N, C, 1, 1]`.
pub(crate) fn global_avg_pool(x: Tensor<4>) -> Tensor<4> {
    // A 1x1 map (a small input: 32 px and below end at 1x1) is its own average, the same
    // bits; burn-flex's adaptive pooling would still cost a pass each way (8% of an
    // mbv2-0.1 step at 16 px).
    let [_, _, h, w] = x.dims();
    if h == 1 && w == 1 {
        return x;
    }
    m::adaptive_avg_pool2d(x, [1, 1])
}

/// 3x3, stride 2, padding 1 max pooling (the ResNet stem).
pub(crate) fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    m::max_pool2d(
        x,
        burn::tensor::ops::MaxPoolOptions::new([3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
    )
}

/// `kernel x kernel`, stride 1 max pooling that keeps the spatial size (odd kernels).
pub(crate) fn max_pool_same(x: Tensor<4>, kernel: usize) -> Tensor<4> {
    m::max_pool2d(
        x,
        burn::tensor::ops::MaxPoolOptions::new([kernel, kernel])
            .with_stride([1, 1])
            .with_padding([kernel / 2, kernel / 2]),
    )
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    #[test]
    fn global_average_of_a_1x1_map_is_the_map_bit_for_bit() {
        let device = Device::flex();
        for [h, w] in [[1, 1], [2, 2], [3, 1]] {
            let values: Vec<f32> = (0..2 * 3 * h * w)
                .map(|i| (i as f32 * 0.37).sin() * 1e3)
                .collect();
            let x = Tensor::<4>::from_data(TensorData::new(values, [2, 3, h, w]), &device);
            let want = m::adaptive_avg_pool2d(x.clone(), [1, 1]).into_data();
            let got = global_avg_pool(x).into_data();
            let bits = |d: TensorData| -> Vec<u32> {
                d.try_to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            };
            assert_eq!(bits(got), bits(want), "{h}x{w}");
        }
    }
}
