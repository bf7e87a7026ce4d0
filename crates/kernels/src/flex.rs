//! `flex` (pure Rust CPU): convolutions, batch norm and activations with their own forward
//! and backward, parallel where burn-flex's run on one thread.
//!
//! - depthwise layers and dense ones with few input channels (the stem): direct loops over
//!   `(image, channel)` planes ([`direct`]) instead of burn's generic grouped backward (per
//!   channel a slice, a convolution whose "kernel" is the whole output map, a slice-assign);
//! - pointwise layers: matrix products on the NCHW data ([`pointwise`]);
//! - batch norm: two fused passes each way ([`batch_norm`]);
//! - activations: one parallel pass forward, one backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex, TensorData, TensorMetadata};
use rayon::prelude::*;

use crate::{Activation, Kernels, conv_options};

mod batch_norm;
mod direct;
mod gemm;
mod pointwise;

use batch_norm::BatchNorm;
use direct::Direct;
use pointwise::Pointwise;

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
        let mut v = values(&x).into_owned();
        v.par_chunks_mut(1 << 14).for_each(|c| apply(act, c));
        FlexTensor::from_data(TensorData::new(v, shape))
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
        if f32s
            && Pointwise::of(x.primitive(), weight.primitive(), stride, padding, groups).is_some()
        {
            return pointwise_tracked::<C>(x, weight);
        }
        match Direct::of(x.primitive(), weight.primitive(), stride, padding, groups) {
            Some(d) if f32s => direct_tracked::<C>(d, x, weight),
            _ => Self::conv2d(x, weight, None, conv_options(stride, padding, groups)),
        }
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

/// A direct convolution recorded as one op with [`Direct`]'s gradients.
fn direct_tracked<C: CheckpointStrategy>(
    d: Direct,
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    #[derive(Debug)]
    struct DirectBackward;

    impl Backward<Flex, 2> for DirectBackward {
        type State = (Direct, FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_w] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (d, x, w) = ops.state;
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, d.input_grad(&w, &grad));
            }
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, d.weight_grad(&x, &grad));
            }
        }
    }

    match DirectBackward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (xp, wp) = (x.into_primitive(), weight.into_primitive());
            let y = d.forward(&xp, &wp);
            prep.finish((d, xp, wp), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(d.forward(&x.into_primitive(), &weight.into_primitive()))
        }
    }
}

/// A pointwise convolution recorded as one op with [`Pointwise`]'s gradients.
fn pointwise_tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    #[derive(Debug)]
    struct PointwiseBackward;

    impl Backward<Flex, 2> for PointwiseBackward {
        type State = (Pointwise, FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_w] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (p, x, w) = ops.state;
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, p.input_grad(&w, &grad));
            }
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, p.weight_grad(&x, &grad));
            }
        }
    }

    let (xp, wp) = (x.primitive(), weight.primitive());
    let p = Pointwise::of(xp, wp, 1, 0, 1).expect("checked by the caller");
    match PointwiseBackward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (xp, wp) = (x.into_primitive(), weight.into_primitive());
            let y = p.forward(&xp, &wp);
            prep.finish((p, xp, wp), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(p.forward(&x.into_primitive(), &weight.into_primitive()))
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
        let (mut g, xs) = (values(&grad).into_owned(), values(&x));
        g.par_chunks_mut(1 << 14)
            .zip(xs.par_chunks(1 << 14))
            .for_each(|(g, x)| scale_by_derivative(act, g, x));
        let gx = FlexTensor::from_data(TensorData::new(g, shape));
        grads.register::<Flex>(node.id, gx);
    }
}

/// `v = act(v)` with the activation chosen once, outside the loop (a `match` per element
/// keeps the loop from vectorizing).
fn apply(act: Activation, v: &mut [f32]) {
    fn each(v: &mut [f32], f: impl Fn(f32) -> f32) {
        v.iter_mut().for_each(|e| *e = f(*e));
    }
    match act {
        Activation::Relu => each(v, |x| Activation::Relu.value(x)),
        Activation::Relu6 => each(v, |x| Activation::Relu6.value(x)),
        Activation::HardSwish => each(v, |x| Activation::HardSwish.value(x)),
        Activation::HardSigmoid => each(v, |x| Activation::HardSigmoid.value(x)),
    }
}

/// `g *= act'(x)`, the activation chosen outside the loop as in [`apply`].
fn scale_by_derivative(act: Activation, g: &mut [f32], x: &[f32]) {
    fn each(g: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
        g.iter_mut().zip(x).for_each(|(g, &x)| *g *= f(x));
    }
    match act {
        Activation::Relu => each(g, x, |x| Activation::Relu.derivative(x)),
        Activation::Relu6 => each(g, x, |x| Activation::Relu6.derivative(x)),
        Activation::HardSwish => each(g, x, |x| Activation::HardSwish.derivative(x)),
        Activation::HardSigmoid => each(g, x, |x| Activation::HardSigmoid.derivative(x)),
    }
}

/// The tensor's values in row-major order: borrowed when contiguous, copied otherwise.
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        // Only f32 tensors reach these kernels (checked before the op is recorded).
        None => std::borrow::Cow::Owned(
            t.clone()
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 tensor"),
        ),
    }
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// `sum(a[i] * b[i])` with eight partial sums, so that it vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}
