//! Slices and sums the kernels share: a tensor's values, a tensor from values, AVX2
//! dispatch and lane-parallel sums.

use burn::backend::TensorData;
use burn::backend::flex::FlexTensor;

/// The tensor's values in row-major order: borrowed when contiguous, copied otherwise.
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
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

/// A tensor of `shape` holding `v` (row-major).
pub(super) fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// Runs `f` compiled for AVX2 where the CPU has it (the build targets baseline x86-64, whose
/// vectors are half as wide), as is otherwise. `f` and what it calls must be inlined into
/// it (`#[inline(always)]`) to be compiled that way.
#[inline(always)]
pub(super) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2, checked above.
        return unsafe { avx2(f) };
    }
    f()
}

/// Partial sums of [`lanes`]: one AVX2 vector (32 lanes, four independent chains, measured
/// no faster on the nets' short planes).
const LANES: usize = 8;

/// `Σ term(a[i], b[i])` over [`LANES`] partial sums, so that the loop vectorizes (one
/// running sum is a dependency chain the compiler may not reorder).
#[inline(always)]
pub(super) fn lanes(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += term(x[l], y[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a[i]`, over [`lanes`].
#[inline(always)]
pub(super) fn lanes_sum(a: &[f32]) -> f32 {
    lanes(a, a, |x, _| x)
}
