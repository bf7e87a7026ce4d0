//! Training-mode batch norm as two passes forward (statistics, then the affine output) and
//! two backward (per-channel sums, then the input gradient), each parallel over channels or
//! planes. burn's composite batch norm records a dozen element-wise ops, each allocating a
//! full-size tensor, and as many backward.

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::output::zip_map;
use super::vector::{lanes, lanes_sum, tensor, values, wide};

/// Sizes of one batch norm over `[N, C, H, W]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchNorm {
    n: usize,
    c: usize,
    plane: usize,
    shape: [usize; 4],
}

/// What the backward pass needs besides the input: per channel mean and 1/sqrt(var + eps).
#[derive(Clone, Debug)]
pub(super) struct Saved {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
}

impl BatchNorm {
    /// The sizes of `x`.
    pub fn of(x: &FlexTensor) -> Self {
        let shape: [usize; 4] = x.shape().dims();
        let [n, c, h, w] = shape;
        Self {
            n,
            c,
            plane: h * w,
            shape,
        }
    }

    /// Elements per channel.
    fn count(&self) -> usize {
        self.n * self.plane
    }

    /// Plane `(n, c)` of `xs`.
    #[inline(always)]
    fn plane<'a>(&self, xs: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &xs[(n * self.c + c) * self.plane..][..self.plane]
    }

    /// Channel `c`'s mean and biased variance, in two passes as burn and PyTorch's
    /// reference do: one pass of sum and sum of squares loses digits when |mean| >> std.
    #[inline(always)]
    fn stats(&self, xs: &[f32], c: usize) -> (f32, f32) {
        let m = self.count().max(1) as f64;
        let planes = || (0..self.n).map(|n| self.plane(xs, n, c));
        let mean = (planes().map(|p| lanes_sum(p) as f64).sum::<f64>() / m) as f32;
        let squares = |p: &[f32]| lanes(p, p, |x, _| (x - mean) * (x - mean)) as f64;
        let var = planes().map(squares).sum::<f64>() / m;
        (mean, var as f32)
    }

    /// Channel `c`'s `Σ dy` and `Σ dy · (x - mean)`.
    #[inline(always)]
    fn grad_sums(&self, dys: &[f32], xs: &[f32], mean: f32, c: usize) -> (f32, f32) {
        let (mut s, mut sx) = (0f64, 0f64);
        for n in 0..self.n {
            let (dy, x) = (self.plane(dys, n, c), self.plane(xs, n, c));
            s += lanes_sum(dy) as f64;
            sx += lanes(dy, x, |d, x| d * (x - mean)) as f64;
        }
        (s as f32, sx as f32)
    }

    /// `(y, mean, biased variance, saved)`.
    pub fn forward(
        &self,
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor, Saved) {
        let (xs, gs, bs) = (values(x), values(gamma), values(beta));
        let stats: Vec<(f32, f32)> = (0..self.c)
            .into_par_iter()
            .map(|c| {
                wide(
                    #[inline(always)]
                    || self.stats(&xs, c),
                )
            })
            .collect();
        let (mean, var): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
        let invstd: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        let scale: Vec<f32> = gs.iter().zip(&invstd).map(|(g, i)| g * i).collect();
        // Centered first: x·a + (β − μ·a) cancels digits when |μ| ≫ σ.
        let out = zip_map(&xs, &xs, self.plane, |i| {
            let c = i % self.c;
            let (mu, a, b) = (mean[c], scale[c], bs[c]);
            move |x, _| (x - mu) * a + b
        });
        let one_d = |v: &[f32]| tensor(v.to_vec(), [self.c]);
        let (mean_t, var_t) = (one_d(&mean), one_d(&var));
        (
            tensor(out, self.shape),
            mean_t,
            var_t,
            Saved { mean, invstd },
        )
    }

    /// `(dx, dgamma, dbeta)` for output gradient `grad`.
    pub fn backward(
        &self,
        x: &FlexTensor,
        gamma: &FlexTensor,
        saved: &Saved,
        grad: &FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (xs, gs, dys) = (values(x), values(gamma), values(grad));
        let m = self.count().max(1) as f32;
        // Per channel: Σ dy and Σ dy · (x - mean).
        let sums: Vec<(f32, f32)> = (0..self.c)
            .into_par_iter()
            .map(|c| {
                wide(
                    #[inline(always)]
                    || self.grad_sums(&dys, &xs, saved.mean[c], c),
                )
            })
            .collect();
        let dbeta: Vec<f32> = sums.iter().map(|s| s.0).collect();
        let dgamma: Vec<f32> = sums
            .iter()
            .zip(&saved.invstd)
            .map(|(s, i)| s.1 * i)
            .collect();
        // dx = γ·σ⁻¹·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) = dy·k1 + (x − μ)·k2 + k3 per channel.
        let coef: Vec<(f32, f32, f32, f32)> = (0..self.c)
            .map(|c| {
                let inv = saved.invstd[c];
                let k1 = gs[c] * inv;
                let k2 = -k1 * inv * dgamma[c] / m;
                let k3 = -k1 * dbeta[c] / m;
                (saved.mean[c], k1, k2, k3)
            })
            .collect();
        let dx = zip_map(&dys, &xs, self.plane, |i| {
            let (mu, k1, k2, k3) = coef[i % self.c];
            move |dy, x| dy * k1 + (x - mu) * k2 + k3
        });
        (
            tensor(dx, self.shape),
            tensor(dgamma, [self.c]),
            tensor(dbeta, [self.c]),
        )
    }
}
