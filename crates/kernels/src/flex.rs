//! `flex` (pure Rust CPU): depthwise and pointwise convolutions and batch norm with their
//! own backward.
//!
//! burn-flex has a direct depthwise forward but inherits burn's generic grouped backward:
//! per channel a slice, a convolution whose "kernel" is the whole output map, and a
//! slice-assign into the full weight gradient. These kernels compute both gradients
//! of a depthwise layer in one pass over each `(image, channel)` plane instead. Pointwise
//! convolutions run as matrix products on the NCHW data ([`pointwise`]), batch norm as
//! two fused passes each way ([`batch_norm`]).

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
mod gemm;
mod pointwise;

use batch_norm::BatchNorm;
use pointwise::Pointwise;

fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == burn::tensor::DType::F32
}

/// One group per input channel, one output channel per group.
fn is_depthwise(x: &FlexTensor, weight: &FlexTensor, groups: usize) -> bool {
    let [_, c_in, _, _] = x.shape().dims();
    let [c_out, per_group, _, _] = weight.shape().dims();
    groups == c_in && c_out == c_in && per_group == 1
}

impl Kernels for Flex {
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
        if f32s && is_depthwise(&x, &weight, groups) {
            let g = Geometry::forward(&x, &weight, stride, padding);
            // A kernel wider than the padded input is burn's error to report.
            if g.h + 2 * padding >= g.k && g.w + 2 * padding >= g.k {
                return depthwise_forward(&g, &x, &weight);
            }
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
        if !(f32s && is_depthwise(x.primitive(), weight.primitive(), groups)) {
            return Self::conv2d(x, weight, None, conv_options(stride, padding, groups));
        }

        #[derive(Debug)]
        struct DepthwiseBackward;

        impl Backward<Flex, 2> for DepthwiseBackward {
            type State = (FlexTensor, FlexTensor, usize, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w] = ops.parents;
                let grad = grads.consume::<Flex>(&ops.node);
                let (x, w, stride, padding) = ops.state;
                let g = Geometry::of(&x, &w, &grad, stride, padding);
                if let Some(node) = node_x {
                    let gx = depthwise_input_grad(&g, &w, &grad);
                    grads.register::<Flex>(node.id, gx);
                }
                if let Some(node) = node_w {
                    let gw = depthwise_weight_grad(&g, &x, &grad);
                    grads.register::<Flex>(node.id, gw);
                }
            }
        }

        let forward = |x, w| <Flex as Kernels>::conv2d_nobias(x, w, stride, padding, groups);
        match DepthwiseBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.into_primitive(), weight.into_primitive());
                let state = (xp.clone(), wp.clone(), stride, padding);
                prep.finish(state, forward(xp, wp))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.into_primitive(), weight.into_primitive()))
            }
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
            .for_each(|(g, x)| {
                for (g, &x) in g.iter_mut().zip(x) {
                    *g *= act.derivative(x);
                }
            });
        let gx = FlexTensor::from_data(TensorData::new(g, shape));
        grads.register::<Flex>(node.id, gx);
    }
}

/// Sizes of one depthwise convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    fn of(
        x: &FlexTensor,
        w: &FlexTensor,
        grad: &FlexTensor,
        stride: usize,
        padding: usize,
    ) -> Self {
        let [n, c, h, wd] = x.shape().dims();
        let [_, _, k, _] = w.shape().dims();
        let [_, _, oh, ow] = grad.shape().dims();
        Self {
            n,
            c,
            h,
            w: wd,
            oh,
            ow,
            k,
            stride,
            padding,
        }
    }

    /// The sizes of the forward pass of `x` with `w` (before there is an output).
    fn forward(x: &FlexTensor, w: &FlexTensor, stride: usize, padding: usize) -> Self {
        let [n, c, h, wd] = x.shape().dims();
        let [_, _, k, _] = w.shape().dims();
        let out = |len: usize| (len + 2 * padding).saturating_sub(k) / stride + 1;
        Self {
            n,
            c,
            h,
            w: wd,
            oh: out(h),
            ow: out(wd),
            k,
            stride,
            padding,
        }
    }

    /// The output positions `o` in `0..out` whose input `o * stride + tap - padding` lies in
    /// `0..len`.
    fn valid(&self, tap: usize, len: usize, out: usize) -> std::ops::Range<usize> {
        let (s, p) = (self.stride, self.padding);
        // o * s + tap >= p  and  o * s + tap <= len - 1 + p
        let lo = p.saturating_sub(tap).div_ceil(s);
        let hi = if len + p > tap {
            ((len - 1 + p - tap) / s + 1).min(out)
        } else {
            0
        };
        lo.min(hi)..hi
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

/// `y[n, c, oy, ox] = sum_{ky, kx} x[n, c, oy*s + ky - p, ox*s + kx - p] * W[c, 0, ky, kx]`,
/// one `(image, channel)` plane per task (burn-flex's own runs the planes on one thread).
fn depthwise_forward(g: &Geometry, x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let (xs, ws) = (values(x), values(w));
    let (plane_in, plane_out, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let mut out = vec![0f32; g.n * g.c * plane_out];
    let cols: Vec<_> = (0..g.k).map(|kx| g.valid(kx, g.w, g.ow)).collect();
    if plane_out > 0 {
        out.par_chunks_mut(plane_out)
            .enumerate()
            .for_each(|(plane, yp)| {
                let wc = &ws[(plane % g.c) * kk..][..kk];
                let xp = &xs[plane * plane_in..][..plane_in];
                for ky in 0..g.k {
                    for oy in g.valid(ky, g.h, g.oh) {
                        let iy = oy * g.stride + ky - g.padding;
                        let yrow = &mut yp[oy * g.ow..][..g.ow];
                        let xrow = &xp[iy * g.w..][..g.w];
                        for (kx, cols) in cols.iter().enumerate() {
                            if cols.is_empty() {
                                continue;
                            }
                            let tap = wc[ky * g.k + kx];
                            let x0 = cols.start * g.stride + kx - g.padding;
                            let yr = &mut yrow[cols.clone()];
                            if g.stride == 1 {
                                for (d, s) in yr.iter_mut().zip(&xrow[x0..]) {
                                    *d += s * tap;
                                }
                            } else {
                                for (d, s) in yr.iter_mut().zip(xrow[x0..].iter().step_by(g.stride))
                                {
                                    *d += s * tap;
                                }
                            }
                        }
                    }
                }
            });
    }
    tensor(out, [g.n, g.c, g.oh, g.ow])
}

/// `dL/dW[c, 0, ky, kx] = sum_{n, oy, ox} g[n, c, oy, ox] * x[n, c, oy*s + ky - p, ox*s + kx - p]`.
fn depthwise_weight_grad(g: &Geometry, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (xs, gs) = (values(x), values(grad));
    let (plane_in, plane_out, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let mut out = vec![0f32; g.c * kk];
    let cols: Vec<_> = (0..g.k).map(|kx| g.valid(kx, g.w, g.ow)).collect();
    out.par_chunks_mut(kk).enumerate().for_each(|(c, wc)| {
        for n in 0..g.n {
            let xp = &xs[(n * g.c + c) * plane_in..][..plane_in];
            let gp = &gs[(n * g.c + c) * plane_out..][..plane_out];
            for ky in 0..g.k {
                for oy in g.valid(ky, g.h, g.oh) {
                    let iy = oy * g.stride + ky - g.padding;
                    let grow = &gp[oy * g.ow..][..g.ow];
                    let xrow = &xp[iy * g.w..][..g.w];
                    for (kx, cols) in cols.iter().enumerate() {
                        if cols.is_empty() {
                            continue;
                        }
                        let x0 = cols.start * g.stride + kx - g.padding;
                        let gr = &grow[cols.clone()];
                        wc[ky * g.k + kx] += if g.stride == 1 {
                            dot(gr, &xrow[x0..x0 + gr.len()])
                        } else {
                            gr.iter()
                                .zip(xrow[x0..].iter().step_by(g.stride))
                                .map(|(a, b)| a * b)
                                .sum::<f32>()
                        };
                    }
                }
            }
        }
    });
    tensor(out, [g.c, 1, g.k, g.k])
}

/// `dL/dx[n, c, iy, ix] = sum_{ky, kx} g[n, c, oy, ox] * W[c, 0, ky, kx]` over the taps with
/// `oy*s + ky - p = iy`, `ox*s + kx - p = ix`.
fn depthwise_input_grad(g: &Geometry, w: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (ws, gs) = (values(w), values(grad));
    let (plane_in, plane_out, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let mut out = vec![0f32; g.n * g.c * plane_in];
    let cols: Vec<_> = (0..g.k).map(|kx| g.valid(kx, g.w, g.ow)).collect();
    out.par_chunks_mut(plane_in)
        .enumerate()
        .for_each(|(plane, xp)| {
            let c = plane % g.c;
            let wc = &ws[c * kk..][..kk];
            let gp = &gs[plane * plane_out..][..plane_out];
            for ky in 0..g.k {
                for oy in g.valid(ky, g.h, g.oh) {
                    let iy = oy * g.stride + ky - g.padding;
                    let grow = &gp[oy * g.ow..][..g.ow];
                    let xrow = &mut xp[iy * g.w..][..g.w];
                    for (kx, cols) in cols.iter().enumerate() {
                        if cols.is_empty() {
                            continue;
                        }
                        let tap = wc[ky * g.k + kx];
                        let x0 = cols.start * g.stride + kx - g.padding;
                        let gr = &grow[cols.clone()];
                        if g.stride == 1 {
                            for (d, s) in xrow[x0..x0 + gr.len()].iter_mut().zip(gr) {
                                *d += s * tap;
                            }
                        } else {
                            for (d, s) in xrow[x0..].iter_mut().step_by(g.stride).zip(gr) {
                                *d += s * tap;
                            }
                        }
                    }
                }
            }
        });
    tensor(out, [g.n, g.c, g.h, g.w])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(len: usize, k: usize, stride: usize) -> Geometry {
        let out = (len + 2 * (k / 2) - k) / stride + 1;
        Geometry {
            n: 1,
            c: 1,
            h: len,
            w: len,
            oh: out,
            ow: out,
            k,
            stride,
            padding: k / 2,
        }
    }

    #[test]
    fn valid_ranges_match_a_brute_force_scan() {
        for len in 1..9 {
            for k in [1, 3, 5, 7] {
                for stride in [1, 2, 3] {
                    let g = geom(len, k, stride);
                    for tap in 0..k {
                        let want: Vec<usize> = (0..g.oh)
                            .filter(|&o| {
                                let i = (o * stride + tap) as isize - g.padding as isize;
                                (0..len as isize).contains(&i)
                            })
                            .collect();
                        let got: Vec<usize> = g.valid(tap, len, g.oh).collect();
                        assert_eq!(got, want, "len {len} k {k} s {stride} tap {tap}");
                    }
                }
            }
        }
    }
}
