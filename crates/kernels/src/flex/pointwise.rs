//! Pointwise (1x1, stride 1, no padding, one group) convolutions as matrix products on
//! the NCHW data itself: per image `y = W · x` with `x` a `C_in x HW` matrix, and in the
//! backward pass `dx = Wᵀ · dy` and `dW = Σ dy · xᵀ`, the transposes being strided views.
//! burn's generic backward runs these as a transposed convolution and a convolution whose
//! kernel is the whole output map, each through im2col copies.

use std::mem::MaybeUninit;

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::gemm::{View, matmul, matmul_into};
use super::kernel::ConvKernel;
use super::vector::{tensor, values};

/// Most shares a pointwise weight gradient's batch is cut into.
const SHARES: usize = 8;

/// `Σ leaf(i)` over `range` (not empty), added in the halving tree of the range: the
/// same order, and so the same bits, however rayon schedules the halves.
fn tree_sum(range: std::ops::Range<usize>, leaf: &(impl Fn(usize) -> Vec<f32> + Sync)) -> Vec<f32> {
    if range.len() == 1 {
        return leaf(range.start);
    }
    let mid = range.start + range.len() / 2;
    let (mut a, b) = rayon::join(
        || tree_sum(range.start..mid, leaf),
        || tree_sum(mid..range.end, leaf),
    );
    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    a
}

/// Sizes of one pointwise convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pointwise {
    n: usize,
    c_in: usize,
    c_out: usize,
    /// Pixels per image (H x W, the same in and out).
    plane: usize,
    h: usize,
    w: usize,
}

impl Pointwise {
    /// The sizes when `x` `[N, C_in, H, W]` and `weight` `[C_out, C_in, 1, 1]` make a
    /// pointwise convolution with these options, `None` otherwise.
    pub fn of(
        x: &FlexTensor,
        weight: &FlexTensor,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> Option<Self> {
        let [n, c_in, h, w] = x.shape().dims();
        let [c_out, per_group, kh, kw] = weight.shape().dims();
        let fits = (kh, kw, stride, padding, groups, per_group) == (1, 1, 1, 0, 1, c_in);
        fits.then_some(Self {
            n,
            c_in,
            c_out,
            plane: h * w,
            h,
            w,
        })
    }

    /// For every image, `out[n] = a · src[n]` (`src[n]` a `src_rows x HW` matrix):
    /// images in parallel when there are enough of them, otherwise each product split.
    fn per_image(&self, a: View<'_>, src: &[f32], src_rows: usize) -> Vec<f32> {
        let (dst_len, src_len) = (a.rows * self.plane, src_rows * self.plane);
        let mut out = Box::<[f32]>::new_uninit_slice(self.n * dst_len);
        if dst_len > 0 {
            let threads = rayon::current_num_threads();
            let run = |dst: &mut [MaybeUninit<f32>], s: &[f32], inner: usize| {
                matmul_into(dst, a, View::rows(s, src_rows, self.plane), inner);
            };
            // An empty `src` (no input rows) still pairs one chunk with every image.
            let srcs = (0..self.n).map(|n| &src[n * src_len..][..src_len]);
            if self.n >= threads {
                let srcs: Vec<&[f32]> = srcs.collect();
                out.par_chunks_mut(dst_len)
                    .zip(srcs)
                    .for_each(|(d, s)| run(d, s, 1));
            } else {
                for (d, s) in out.chunks_mut(dst_len).zip(srcs) {
                    run(d, s, threads);
                }
            }
        }
        // SAFETY: every image's chunk was written by its product (the chunks cover the
        // buffer: `n` of `dst_len` values), or the buffer is empty.
        unsafe { out.assume_init() }.into_vec()
    }
}

impl ConvKernel for Pointwise {
    /// `y[n] = W · x[n]`.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        let (xs, ws) = (values(x), values(weight));
        let wm = View::rows(&ws, self.c_out, self.c_in);
        let out = self.per_image(wm, &xs, self.c_in);
        tensor(out, [self.n, self.c_out, self.h, self.w])
    }

    /// `dx[n] = Wᵀ · dy[n]`.
    fn input_grad(&self, weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (ws, gs) = (values(weight), values(grad));
        let wt = View::rows(&ws, self.c_out, self.c_in).t();
        let out = self.per_image(wt, &gs, self.c_out);
        tensor(out, [self.n, self.c_in, self.h, self.w])
    }

    /// `dW = Σ_n dy[n] · x[n]ᵀ`: the batch is cut into at most [`SHARES`] contiguous
    /// shares, each summed into its own buffer, and the buffers are added in a fixed tree.
    /// Both depend on the batch size alone, so the gradient has the same bits on any number
    /// of threads (a share per thread would make a run's numbers depend on its cores).
    fn weight_grad(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (xs, gs) = (values(x), values(grad));
        let size = self.c_out * self.c_in;
        let shares = self.n.clamp(1, SHARES);
        // Threads the shares leave idle split each product instead.
        let inner = (rayon::current_num_threads() / shares).max(1);
        let partial = |share: usize| {
            let images = share * self.n / shares..(share + 1) * self.n / shares;
            let mut acc = vec![0f32; size];
            for (i, n) in images.enumerate() {
                let g = View::rows(&gs[n * self.c_out * self.plane..], self.c_out, self.plane);
                let x = View::rows(&xs[n * self.c_in * self.plane..], self.c_in, self.plane);
                matmul(&mut acc, i > 0, g, x.t(), inner);
            }
            acc
        };
        let out = tree_sum(0..shares, &partial);
        tensor(out, [self.c_out, self.c_in, 1, 1])
    }
}
