//! `flex` (pure Rust CPU): convolutions, batch norm and activations with their own forward
//! and backward, parallel where burn-flex's run on one thread.
//!
//! - depthwise layers and dense ones with few input channels (the stem): direct loops over
//!   `(image, channel)` planes ([`direct`]) instead of burn's generic grouped backward (per
//!   channel a slice, a convolution whose "kernel" is the whole output map, a slice-assign);
//! - pointwise layers: matrix products on the NCHW data ([`pointwise`]);
//! - batch norm: two fused passes each way ([`batch_norm`]);
//! - activations: one parallel pass forward, one backward.
//!
//! The loops run compiled for AVX2 where the CPU has it (`wide`; the build itself targets
//! baseline x86-64), and every output is allocated without a serial zeroing pass: the
//! threads that write a chunk zero it first, or write it once (`output`). A training
//! thread inside rayon's pool ([`crate::join_pool`]) waits for these loops by taking part.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, TensorData, TensorMetadata};

use crate::{Activation, Kernels, conv_options};

mod batch_norm;
mod direct;
mod gemm;
mod kernel;
mod output;
mod pointwise;
mod vector;

use batch_norm::BatchNorm;
use direct::Direct;
use kernel::ConvKernel;
use output::zip_map;
use pointwise::Pointwise;
use vector::values;

fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == burn::tensor::DType::F32
}

impl Kernels for Flex {
    fn activate(x: FlexTensor, act: Activation) -> FlexTensor {
        if !is_f32(&x) {
            return crate::activate_reference::<Self>(x, act);
        }
        // burn-flex's unary ops run on one thread; activations are a large share of a
        // step's memory traffic.
        let shape = x.shape();
        let xs = values(&x);
        let y = apply(act, &xs);
        FlexTensor::from_data(TensorData::new(y, shape))
    }

    fn conv2d_nobias(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FlexTensor {
        let f32s = is_f32(&x) && is_f32(&weight);
        if let Some(p) = Pointwise::of(&x, &weight, stride, padding, groups).filter(|_| f32s) {
            return p.forward(&x, &weight);
        }
        if let Some(d) = Direct::of(&x, &weight, stride, padding, groups).filter(|_| f32s) {
            return d.forward(&x, &weight);
        }
        Self::conv2d(x, weight, None, conv_options(stride, padding, groups))
    }

    fn batch_norm_batch_stats(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if ![&x, &gamma, &beta].into_iter().all(is_f32) {
            let r = Self::batch_norm_train(x, gamma, beta, epsilon);
            return (r.output, r.mean, r.variance);
        }
        let (y, mean, var, _) = BatchNorm::of(&x).forward(&x, &gamma, &beta, epsilon);
        (y, mean, var)
    }
}

impl<C: CheckpointStrategy> Kernels for Autodiff<Flex, C> {
    fn conv2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self> {
        let f32s = is_f32(x.primitive()) && is_f32(weight.primitive());
        let (xp, wp) = (x.primitive(), weight.primitive());
        if let Some(p) = Pointwise::of(xp, wp, stride, padding, groups).filter(|_| f32s) {
            return conv_tracked::<_, C>(p, x, weight);
        }
        if let Some(d) = Direct::of(xp, wp, stride, padding, groups).filter(|_| f32s) {
            return conv_tracked::<_, C>(d, x, weight);
        }
        Self::conv2d(x, weight, None, conv_options(stride, padding, groups))
    }

    fn batch_norm_batch_stats(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if ![x.primitive(), gamma.primitive(), beta.primitive()]
            .into_iter()
            .all(is_f32)
        {
            let r = Self::batch_norm_train(x, gamma, beta, epsilon);
            return (r.output, r.mean, r.variance);
        }
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma, beta) = (
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                );
                let bn = BatchNorm::of(&x);
                let (y, mean, var, saved) = bn.forward(&x, &gamma, &beta, epsilon);
                (
                    prep.finish((bn, x, gamma, saved), y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = <Flex as Kernels>::batch_norm_batch_stats(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                (
                    prep.finish(y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
        }
    }

    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        if !is_f32(x.primitive()) {
            return crate::activate_reference::<Self>(x, act);
        }
        match ActivationBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                prep.finish((x.clone(), act), <Flex as Kernels>::activate(x, act))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as Kernels>::activate(x.into_primitive(), act))
            }
        }
    }
}

/// The backward node of a [`ConvKernel`].
#[derive(Debug)]
struct ConvBackward<K>(std::marker::PhantomData<K>);

impl<K: ConvKernel> Backward<Flex, 2> for ConvBackward<K> {
    /// The kernel's sizes, the input and the weight.
    type State = (K, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (k, x, w) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, k.input_grad(&w, &grad));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, k.weight_grad(&x, &grad));
        }
    }
}

/// Convolution `k` of `x` by `weight`, recorded as one op with `k`'s gradients.
fn conv_tracked<K: ConvKernel, C: CheckpointStrategy>(
    k: K,
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match ConvBackward::<K>(std::marker::PhantomData)
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (xp, wp) = (x.into_primitive(), weight.into_primitive());
            let y = k.forward(&xp, &wp);
            prep.finish((k, xp, wp), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(k.forward(&x.into_primitive(), &weight.into_primitive()))
        }
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The sizes, input, scale and the forward pass's statistics.
    type State = (BatchNorm, FlexTensor, FlexTensor, batch_norm::Saved);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (bn, x, gamma, saved) = ops.state;
        let (dx, dgamma, dbeta) = bn.backward(&x, &gamma, &saved, &grad);
        let [node_x, node_g, node_b] = ops.parents;
        for (node, g) in [(node_x, dx), (node_g, dgamma), (node_b, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct ActivationBackward;

impl Backward<Flex, 1> for ActivationBackward {
    /// The input and the activation.
    type State = (FlexTensor, Activation);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [Some(node)] = ops.parents else {
            return;
        };
        let (x, act) = ops.state;
        let shape = grad.shape();
        let g = chain(act, &values(&grad), &values(&x));
        let gx = FlexTensor::from_data(TensorData::new(g, shape));
        grads.register::<Flex>(node.id, gx);
    }
}

/// Elements per parallel task of the activations.
const ACTIVATION_CHUNK: usize = 1 << 14;

/// `act(x)`, with the activation chosen once, outside the loop (a `match` per element
/// keeps the loop from vectorizing).
fn apply(act: Activation, x: &[f32]) -> Vec<f32> {
    fn each(x: &[f32], f: impl Fn(f32) -> f32 + Copy + Sync) -> Vec<f32> {
        zip_map(x, x, ACTIVATION_CHUNK, |_| move |x, _| f(x))
    }
    match act {
        Activation::Relu => each(x, |x| Activation::Relu.value(x)),
        Activation::Relu6 => each(x, |x| Activation::Relu6.value(x)),
        Activation::HardSwish => each(x, |x| Activation::HardSwish.value(x)),
        Activation::HardSigmoid => each(x, |x| Activation::HardSigmoid.value(x)),
    }
}

/// `g · act'(x)`, the activation chosen outside the loop as in [`apply`].
fn chain(act: Activation, g: &[f32], x: &[f32]) -> Vec<f32> {
    fn each(g: &[f32], x: &[f32], f: impl Fn(f32) -> f32 + Copy + Sync) -> Vec<f32> {
        zip_map(g, x, ACTIVATION_CHUNK, |_| move |g, x| g * f(x))
    }
    match act {
        Activation::Relu => each(g, x, |x| Activation::Relu.derivative(x)),
        Activation::Relu6 => each(g, x, |x| Activation::Relu6.derivative(x)),
        Activation::HardSwish => each(g, x, |x| Activation::HardSwish.derivative(x)),
        Activation::HardSigmoid => each(g, x, |x| Activation::HardSigmoid.derivative(x)),
    }
}
