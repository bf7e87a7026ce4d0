//! LibTorch (`tch-cpu`, `tch-cuda`): convolution and batch norm backward through ATen.
//!
//! burn-tch runs the forward of both in libtorch but inherits burn's generic backward: a
//! grouped convolution's weight gradient is one small convolution per group, batch norm's
//! backward a dozen element-wise kernels. Here burn's graph records one operation each,
//! whose backward step calls ATen's `convolution_backward` (cudnn on CUDA) and
//! `native_batch_norm_backward` (cpp/aten.cpp; tch does not bind them), as PyTorch does.

use std::ffi::{c_char, c_int};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::{LibTorch, TchTensor};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use torch_sys::C_tensor;

use crate::{Activation, Kernels, conv_options};

unsafe extern "C" {
    fn netaug_conv2d_backward(
        grad: *mut C_tensor,
        input: *mut C_tensor,
        weight: *mut C_tensor,
        stride: i64,
        padding: i64,
        groups: i64,
        want_input: c_int,
        want_weight: c_int,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;

    fn netaug_batch_norm_backward(
        grad: *mut C_tensor,
        input: *mut C_tensor,
        weight: *mut C_tensor,
        save_mean: *mut C_tensor,
        save_invstd: *mut C_tensor,
        eps: f64,
        want_input: c_int,
        want_weight: c_int,
        want_bias: c_int,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
        grad_bias: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// The handle ATen reads (the C side takes `at::Tensor*` and does not modify it).
fn raw(t: &TchTensor) -> *mut C_tensor {
    t.tensor.as_ptr() as *mut C_tensor
}

/// Calls one of the shims with an error buffer and turns its output handles into tensors.
/// A failure here is a broken invariant (shapes come from a forward that ran), so it panics
/// with ATen's message.
fn call<const N: usize>(
    what: &str,
    f: impl FnOnce(&mut [*mut C_tensor; N], *mut c_char, usize) -> c_int,
) -> [Option<TchTensor>; N] {
    let mut out = [std::ptr::null_mut(); N];
    let mut err = [0 as c_char; 512];
    let rc = f(&mut out, err.as_mut_ptr(), err.len());
    if rc != 0 {
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("ATen {what} failed: {}", msg.to_string_lossy());
    }
    // SAFETY: the shim hands over fresh `at::Tensor*` allocations (or null when not wanted);
    // tch's Tensor takes ownership and frees them.
    out.map(|p| (!p.is_null()).then(|| TchTensor::new(unsafe { tch::Tensor::from_ptr(p) })))
}

/// Registers each tracked parent's gradient (a macro: burn's node type is not nameable).
macro_rules! hand_over {
    ($parents:expr, $got:expr, $grads:expr) => {
        for (parent, g) in $parents.into_iter().zip($got) {
            if let (Some(node), Some(g)) = (parent, g) {
                $grads.register::<LibTorch>(node.id, g);
            }
        }
    };
}

impl Kernels for LibTorch {
    fn activate(x: TchTensor, act: Activation) -> TchTensor {
        TchTensor::new(forward_activation(&x.tensor, act))
    }

    fn batch_norm_batch_stats(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let (y, mean, invstd) = native_batch_norm(&x, &gamma, &beta, epsilon);
        (
            TchTensor::new(y),
            TchTensor::new(mean),
            TchTensor::new(variance(&invstd, epsilon)),
        )
    }
}

/// `native_batch_norm` in training mode without running statistics: (output, batch mean,
/// 1 / sqrt(biased variance + eps)).
fn native_batch_norm(
    x: &TchTensor,
    gamma: &TchTensor,
    beta: &TchTensor,
    epsilon: f64,
) -> (tch::Tensor, tch::Tensor, tch::Tensor) {
    tch::no_grad(|| {
        tch::Tensor::native_batch_norm(
            &x.tensor,
            Some(&gamma.tensor),
            Some(&beta.tensor),
            None::<&tch::Tensor>,
            None::<&tch::Tensor>,
            true,
            0.0,
            epsilon,
        )
    })
}

fn forward_activation(x: &tch::Tensor, act: Activation) -> tch::Tensor {
    match act {
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.relu6(),
        Activation::HardSwish => x.hardswish(),
        Activation::HardSigmoid => x.hardsigmoid(),
    }
}

/// ATen's backward of `act` at input `x` for output gradient `grad`.
fn activation_backward(x: &tch::Tensor, grad: &tch::Tensor, act: Activation) -> tch::Tensor {
    match act {
        Activation::Relu => x.threshold_backward(grad, 0.0),
        Activation::Relu6 => x.hardtanh_backward(grad, 0.0, 6.0),
        Activation::HardSwish => x.hardswish_backward(grad),
        Activation::HardSigmoid => x.hardsigmoid_backward(grad),
    }
}

/// The biased variance back from `1 / sqrt(var + eps)`.
fn variance(invstd: &tch::Tensor, epsilon: f64) -> tch::Tensor {
    invstd.pow_tensor_scalar(-2.0) - epsilon
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<LibTorch, 2> for ConvBackward {
    /// Input, weight (kept by burn's handles, so burn-tch never updates them in place),
    /// stride, padding, groups.
    type State = (TchTensor, TchTensor, usize, usize, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (x, w, stride, padding, groups) = ops.state;
        let [want_x, want_w] = ops.parents.each_ref().map(|p| c_int::from(p.is_some()));
        let got = call("convolution_backward", |out: &mut [_; 2], err, len| {
            let [gx, gw] = out;
            // SAFETY: every handle is a live tensor for the duration of the call.
            unsafe {
                netaug_conv2d_backward(
                    raw(&grad),
                    raw(&x),
                    raw(&w),
                    stride as i64,
                    padding as i64,
                    groups as i64,
                    want_x,
                    want_w,
                    gx,
                    gw,
                    err,
                    len,
                )
            }
        });
        hand_over!(ops.parents, got, grads);
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<LibTorch, 3> for BatchNormBackward {
    /// Input, gamma, the batch mean and 1 / std that the forward saved, epsilon.
    type State = (TchTensor, TchTensor, TchTensor, TchTensor, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (x, gamma, mean, invstd, eps) = ops.state;
        let [want_x, want_g, want_b] = ops.parents.each_ref().map(|p| c_int::from(p.is_some()));
        let got = call(
            "native_batch_norm_backward",
            |out: &mut [_; 3], err, len| {
                let [gx, gg, gb] = out;
                // SAFETY: every handle is a live tensor for the duration of the call.
                unsafe {
                    netaug_batch_norm_backward(
                        raw(&grad),
                        raw(&x),
                        raw(&gamma),
                        raw(&mean),
                        raw(&invstd),
                        eps,
                        want_x,
                        want_g,
                        want_b,
                        gx,
                        gg,
                        gb,
                        err,
                        len,
                    )
                }
            },
        );
        hand_over!(ops.parents, got, grads);
    }
}

#[derive(Debug)]
struct ActivationBackward;

impl Backward<LibTorch, 1> for ActivationBackward {
    /// The input and the activation.
    type State = (TchTensor, Activation);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        if let [Some(node)] = ops.parents {
            let (x, act) = ops.state;
            let g = activation_backward(&x.tensor, &grad.tensor, act);
            grads.register::<LibTorch>(node.id, TchTensor::new(g));
        }
    }
}

impl<C: CheckpointStrategy> Kernels for Autodiff<LibTorch, C> {
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        match ActivationBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let y = LibTorch::activate(x.clone(), act);
                prep.finish((x, act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(LibTorch::activate(x.into_primitive(), act)),
        }
    }

    fn conv2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self> {
        let forward = |x, w| LibTorch::conv2d(x, w, None, conv_options(stride, padding, groups));
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.into_primitive(), weight.into_primitive());
                let state = (x.clone(), w.clone(), stride, padding, groups);
                prep.finish(state, forward(x, w))
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
                let (y, mean, invstd) = native_batch_norm(&x, &gamma, &beta, epsilon);
                let var = TchTensor::new(variance(&invstd, epsilon));
                let (mean, invstd) = (TchTensor::new(mean), TchTensor::new(invstd));
                let state = (x, gamma, mean.clone(), invstd, epsilon);
                (
                    prep.finish(state, TchTensor::new(y)),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = LibTorch::batch_norm_batch_stats(
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
}
