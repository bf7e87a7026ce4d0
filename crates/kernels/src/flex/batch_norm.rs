//! Training-mode batch norm as two passes forward (statistics, then the affine output) and
//! two backward (per-channel sums, then the input gradient), each parallel over channels or
//! planes. burn's composite batch norm records a dozen element-wise ops, each allocating a
//! full-size tensor, and as many backward.

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::{tensor, values};

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
    fn plane<'a>(&self, xs: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &xs[(n * self.c + c) * self.plane..][..self.plane]
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
        let m = self.count().max(1) as f64;
        // Two passes per channel (mean, then squared deviations) as burn and PyTorch's
        // reference do: one pass of sum and sum of squares loses digits when |mean| >> std.
        let stats: Vec<(f32, f32)> = (0..self.c)
            .into_par_iter()
            .map(|c| {
                let planes = || (0..self.n).map(|n| self.plane(&xs, n, c));
                let mean = planes().map(|p| sum(p) as f64).sum::<f64>() / m;
                let mean = mean as f32;
                let var = planes().map(|p| squared_deviations(p, mean)).sum::<f64>() / m;
                (mean, var as f32)
            })
            .collect();
        let (mean, var): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
        let invstd: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        let scale: Vec<f32> = gs.iter().zip(&invstd).map(|(g, i)| g * i).collect();
        let mut out = vec![0f32; xs.len()];
        if self.plane > 0 {
            out.par_chunks_mut(self.plane)
                .zip(xs.par_chunks(self.plane))
                .enumerate()
                .for_each(|(i, (y, x))| {
                    // Centered first: x·a + (β − μ·a) cancels digits when |μ| ≫ σ.
                    let c = i % self.c;
                    let (mu, a, b) = (mean[c], scale[c], bs[c]);
                    y.iter_mut().zip(x).for_each(|(y, x)| *y = (x - mu) * a + b);
                });
        }
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
                let mean = saved.mean[c];
                let (mut s, mut sx) = (0f64, 0f64);
                for n in 0..self.n {
                    let (dy, x) = (self.plane(&dys, n, c), self.plane(&xs, n, c));
                    s += sum(dy) as f64;
                    sx += dot_centered(dy, x, mean) as f64;
                }
                (s as f32, sx as f32)
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
        let mut dx = vec![0f32; xs.len()];
        if self.plane > 0 {
            dx.par_chunks_mut(self.plane)
                .zip(dys.par_chunks(self.plane).zip(xs.par_chunks(self.plane)))
                .enumerate()
                .for_each(|(i, (d, (dy, x)))| {
                    let (mu, k1, k2, k3) = coef[i % self.c];
                    for ((d, dy), x) in d.iter_mut().zip(dy).zip(x) {
                        *d = dy * k1 + (x - mu) * k2 + k3;
                    }
                });
        }
        (
            tensor(dx, self.shape),
            tensor(dgamma, [self.c]),
            tensor(dbeta, [self.c]),
        )
    }
}

/// Σ a with eight partial sums (vectorizes).
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ (a - mean)², accumulated as `f64` per eight lanes.
fn squared_deviations(a: &[f32], mean: f32) -> f64 {
    let mut acc = [0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|x| (x - mean) * (x - mean))
        .sum();
    for c in chunks {
        for l in 0..8 {
            let d = c[l] - mean;
            acc[l] += d * d;
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// Σ dy · (x - mean).
fn dot_centered(dy: &[f32], x: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; 8];
    let (cd, cx) = (dy.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = cd
        .remainder()
        .iter()
        .zip(cx.remainder())
        .map(|(d, x)| d * (x - mean))
        .sum();
    for (d, x) in cd.zip(cx) {
        for l in 0..8 {
            acc[l] += d[l] * (x[l] - mean);
        }
    }
    acc.iter().sum::<f32>() + tail
}
