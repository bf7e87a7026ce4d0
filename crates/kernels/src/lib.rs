//! The training kernels netaug's nets spend their time in, with per-backend fast paths.
//!
//! burn's generic backward of a grouped convolution runs one small convolution per group,
//! so a depthwise layer costs hundreds of kernels (or host loops) per step on backends
//! that do not override it (burn-tch, burn-flex); its batch-norm backward is a dozen
//! element-wise ops and its ReLU6 four masked passes forward, two backward. The
//! [`Kernels`] backend extension gives convolution, training-mode batch norm and the
//! activations (ReLU, ReLU6, hard swish, hard sigmoid) their own implementations:
//!
//! - `flex` (pure Rust): pointwise convolutions run as GEMMs on the NCHW data, depthwise
//!   and stem convolutions as direct loops, batch norm as fused passes, activations in one
//!   parallel pass, each forward and backward ([`flex`]); everything else is burn's.
//! - `tch-cpu` / `tch-cuda` (LibTorch): one recorded op per layer whose backward calls
//!   ATen's own kernels: `convolution_backward` (cudnn on CUDA),
//!   `native_batch_norm_backward`, `hardtanh_backward` and friends ([`libtorch`]).
//! - any other backend: burn's ops, unchanged.
//!
//! The model calls [`conv2d`], [`batch_norm_train`] and [`activation`]; nothing else needs
//! to know.
#![warn(missing_docs)]
// burn-tch is deprecated upstream but is our fast GPU path (docs/backends.md).
#![cfg_attr(feature = "tch", allow(deprecated))]

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::tensor::{Device, Tensor};

mod flex;
#[cfg(feature = "tch")]
mod libtorch;

/// Convolution and batch norm as one backend extension: a default body (burn's op) that a
/// backend overrides where it has something faster.
#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait Kernels: Backend {
    /// 2-D convolution without bias, dilation 1, square stride and padding.
    fn conv2d_nobias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, conv_options(stride, padding, groups))
    }

    /// Batch norm with the batch's own statistics: (output, mean, biased variance).
    fn batch_norm_batch_stats(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let r = Self::batch_norm_train(x, gamma, beta, epsilon);
        (r.output, r.mean, r.variance)
    }

    /// An element-wise activation.
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        activate_reference::<Self>(x, act)
    }
}

/// burn's own ops for `act` (the default of [`Kernels::activate`]).
pub fn activate_reference<B: Backend>(x: FloatTensor<B>, act: Activation) -> FloatTensor<B> {
    use burn::backend::Scalar;
    let hard_sigmoid = |x| B::hard_sigmoid(x, Scalar::Float(1.0 / 6.0), Scalar::Float(0.5));
    match act {
        Activation::Relu => B::relu(x),
        Activation::Relu6 => B::float_clamp(x, Scalar::Float(0.0), Scalar::Float(6.0)),
        Activation::HardSwish => B::float_mul(x.clone(), hard_sigmoid(x)),
        Activation::HardSigmoid => hard_sigmoid(x),
    }
}

/// The activations of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// min(max(0, x), 6)
    Relu6,
    /// x * relu6(x + 3) / 6
    HardSwish,
    /// relu6(x + 3) / 6
    HardSigmoid,
}

impl Activation {
    /// The activation at `x`.
    #[inline]
    pub fn value(self, x: f32) -> f32 {
        let hs = |x: f32| (x + 3.0).clamp(0.0, 6.0) / 6.0;
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::HardSwish => x * hs(x),
            Activation::HardSigmoid => hs(x),
        }
    }

    /// Its derivative at `x` (PyTorch's choice at the kinks: 0 at the ends of ReLU6's and
    /// hard sigmoid's flat parts, 0 at ReLU's 0; hard swish's is `(2x + 3) / 6` inside).
    #[inline]
    pub fn derivative(self, x: f32) -> f32 {
        match self {
            Activation::Relu => f32::from(x > 0.0),
            Activation::Relu6 => f32::from(x > 0.0 && x < 6.0),
            Activation::HardSwish => {
                if x < -3.0 {
                    0.0
                } else if x <= 3.0 {
                    (2.0 * x + 3.0) / 6.0
                } else {
                    1.0
                }
            }
            Activation::HardSigmoid => {
                if x > -3.0 && x < 3.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// burn's options for [`Kernels::conv2d_nobias`].
pub fn conv_options(stride: usize, padding: usize, groups: usize) -> ConvOptions<2> {
    ConvOptions::new([stride, stride], [padding, padding], [1, 1], groups)
}

/// Environment variable that, set to `burn`, routes every call to burn's reference ops
/// (to compare speed or results with the fast paths in one binary).
pub const SWITCH: &str = "NETAUG_KERNELS";

/// Whether [`SWITCH`] asks for burn's reference ops (read once per process).
pub fn reference_only() -> bool {
    static REFERENCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REFERENCE.get_or_init(|| std::env::var(SWITCH).is_ok_and(|v| v == "burn"))
}

/// Whether `device` runs on a backend with an implementation of [`Kernels`] (the extension
/// panics on others, e.g. CubeCL's CUDA, which keep burn's ops).
fn has_kernels(device: &Device) -> bool {
    if reference_only() {
        return false;
    }
    fn plain(d: &DispatchDevice) -> bool {
        match d {
            DispatchDevice::Flex(_) => true,
            #[cfg(feature = "tch")]
            DispatchDevice::LibTorch(_) => true,
            DispatchDevice::Autodiff(a) => plain(a),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    plain(device.as_dispatch())
}

/// 2-D convolution without bias: `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in / groups, K, K]`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Tensor<4> {
    if !has_kernels(&x.device()) {
        return burn::tensor::module::conv2d(
            x,
            weight,
            None,
            conv_options(stride, padding, groups),
        );
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::conv2d_nobias(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
        groups,
    ))
}

/// `act` applied element-wise.
pub fn activation<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    let fast = has_kernels(&x.device());
    let x = x.into_dispatch();
    Tensor::from_dispatch(if fast {
        <Dispatch as Kernels>::activate(x, act)
    } else {
        // Dispatch is a backend too, so burn's ops reach any device from here.
        activate_reference::<Dispatch>(x, act)
    })
}

/// Batch norm of `x` `[N, C, H, W]` with the batch's statistics; returns the output, the
/// batch mean and the biased batch variance (what running statistics are fed).
pub fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    if !has_kernels(&x.device()) {
        let r = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
        return (r.output, r.mean, r.variance);
    }
    let (y, mean, var) = <Dispatch as Kernels>::batch_norm_batch_stats(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Makes the calling thread one of the threads of rayon's global pool, which keeps its
/// size (`RAYON_NUM_THREADS`, or one per core). The `flex` kernels' parallel loops,
/// called from a pool thread, wait for their tasks by taking part in them; called from
/// outside, every loop is a round trip of thread wake-ups through the OS (a futex wake and
/// sleep per op, hundreds per step). The pool adopts the thread that trains instead of
/// taking the steps onto its own threads because the steps must stay on one thread: burn
/// keeps batch norm's running statistics per thread and averages them when read.
///
/// Call it once, from the thread that will train, before any parallel work: it fails when
/// the global pool exists already.
pub fn join_pool() -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
}
