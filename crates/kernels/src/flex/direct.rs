//! Direct convolutions, forward and both gradients, one `(image, channel)` plane per task:
//! depthwise layers, and dense layers with few input channels (a stem on RGB or grayscale
//! images). burn-flex runs these forward on one thread and inherits burn's generic backward
//! (for a grouped layer: per group a slice, a convolution whose "kernel" is the whole
//! output map, a slice-assign), where a handful of multiply-adds per output is all there is.

use std::ops::Range;

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::{dot, tensor, values};

/// Dense layers with at most this many input channels run here (beyond, GEMMs win).
const DENSE_MAX_IN: usize = 4;

/// Sizes of one direct convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Direct {
    n: usize,
    c_in: usize,
    c_out: usize,
    /// Input channels per group.
    cin_g: usize,
    /// Output channels per group.
    cout_g: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    stride: usize,
    padding: usize,
}

impl Direct {
    /// The sizes when `x` `[N, C_in, H, W]` and `weight` `[C_out, C_in / groups, K, K]` make
    /// a depthwise layer or a dense one with few input channels, `None` otherwise (and when
    /// the kernel is wider than the padded input: burn's error to report).
    pub fn of(
        x: &FlexTensor,
        weight: &FlexTensor,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> Option<Self> {
        let [n, c_in, h, w] = x.shape().dims();
        let [c_out, cin_g, kh, kw] = weight.shape().dims();
        let depthwise = groups == c_in && c_out == c_in && cin_g == 1;
        let dense = groups == 1 && cin_g == c_in && c_in <= DENSE_MAX_IN;
        let fits = h + 2 * padding >= kh && w + 2 * padding >= kw && stride >= 1;
        let out = |len: usize| (len + 2 * padding - kh) / stride + 1;
        ((depthwise || dense) && kh == kw && fits).then(|| Self {
            n,
            c_in,
            c_out,
            cin_g,
            cout_g: c_out / groups,
            h,
            w,
            oh: out(h),
            ow: out(w),
            k: kh,
            stride,
            padding,
        })
    }

    fn plane_in(&self) -> usize {
        self.h * self.w
    }

    fn plane_out(&self) -> usize {
        self.oh * self.ow
    }

    /// The input channels of output channel `co`.
    fn inputs_of(&self, co: usize) -> Range<usize> {
        let g = co / self.cout_g;
        g * self.cin_g..(g + 1) * self.cin_g
    }

    /// Rows of the zero-padded input plane.
    fn padded_rows(&self) -> usize {
        self.h + 2 * self.padding
    }

    /// Width of one phase of the padded plane (see [`Direct::phases`]).
    fn phase_width(&self) -> usize {
        (self.w + 2 * self.padding).div_ceil(self.stride)
    }

    /// Length of the phase buffer.
    fn phases_len(&self) -> usize {
        self.stride * self.padded_rows() * self.phase_width()
    }

    /// The zero-padded plane split by column into `stride` phases, phase `q` holding
    /// padded columns `q, q + s, q + 2s, ...`: output column `ox` meets kernel column `kx`
    /// at `phase[kx % s][row][ox + kx / s]`, so every inner loop runs over contiguous
    /// memory whatever the stride, and the padding needs no bounds logic.
    fn phases(&self, buf: &mut Vec<f32>, plane: &[f32]) {
        buf.clear();
        buf.resize(self.phases_len(), 0.0);
        let (s, p, pw, rows) = (
            self.stride,
            self.padding,
            self.phase_width(),
            self.padded_rows(),
        );
        for iy in 0..self.h {
            let src = &plane[iy * self.w..][..self.w];
            if s == 1 {
                buf[(iy + p) * pw + p..][..self.w].copy_from_slice(src);
            } else {
                for (q, first, j0) in self.phase_starts() {
                    let dst = &mut buf[(q * rows + iy + p) * pw + j0..];
                    let cols = src[first..].iter().step_by(s);
                    dst.iter_mut().zip(cols).for_each(|(d, &v)| *d = v);
                }
            }
        }
    }

    /// Per phase `q`: the first input column in it and that column's index in the phase.
    fn phase_starts(&self) -> impl Iterator<Item = (usize, usize, usize)> {
        let (s, p, w) = (self.stride, self.padding, self.w);
        (0..s).filter_map(move |q| {
            // The first padded column c >= p with c % s == q, as an input column.
            let first = (q + s - p % s) % s;
            (first < w).then_some((q, first, (first + p) / s))
        })
    }

    /// Adds the interior of a phase buffer (the padded plane's gradient) into `plane`.
    fn gather(&self, buf: &[f32], plane: &mut [f32]) {
        let (s, p, pw, rows) = (
            self.stride,
            self.padding,
            self.phase_width(),
            self.padded_rows(),
        );
        for iy in 0..self.h {
            let dst = &mut plane[iy * self.w..][..self.w];
            if s == 1 {
                let src = &buf[(iy + p) * pw + p..][..self.w];
                dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
            } else {
                for (q, first, j0) in self.phase_starts() {
                    let src = &buf[(q * rows + iy + p) * pw + j0..];
                    let cols = dst[first..].iter_mut().step_by(s);
                    cols.zip(src).for_each(|(d, v)| *d += v);
                }
            }
        }
    }

    /// Phase row `oy * s + ky` of kernel column `kx`, from output column 0 on.
    #[cfg(test)]
    fn row_start(&self, oy: usize, ky: usize, kx: usize) -> usize {
        oy * self.stride * self.phase_width() + self.tap_offsets()[ky * self.k + kx]
    }

    /// Per tap `(ky, kx)`, where its phase row for output row 0 starts; output row `oy`
    /// adds `oy * s * phase width`.
    fn tap_offsets(&self) -> Vec<usize> {
        let (s, pw, rows) = (self.stride, self.phase_width(), self.padded_rows());
        (0..self.k * self.k)
            .map(|t| {
                let (ky, kx) = (t / self.k, t % self.k);
                ((kx % s) * rows + ky) * pw + kx / s
            })
            .collect()
    }

    /// `y[n, co] = Σ_{ci, ky, kx} x[n, ci, oy*s + ky - p, ox*s + kx - p] · W[co, ci, ky, kx]`.
    pub fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        let (xs, ws) = (values(x), values(weight));
        let (pin, pout, kk, ow) = (self.plane_in(), self.plane_out(), self.k * self.k, self.ow);
        let (taps, row) = (self.tap_offsets(), self.stride * self.phase_width());
        let mut out = vec![0f32; self.n * self.c_out * pout];
        if pout > 0 {
            out.par_chunks_mut(pout)
                .enumerate()
                .for_each_init(Vec::new, |buf, (plane, yp)| {
                    let (n, co) = (plane / self.c_out, plane % self.c_out);
                    for (j, ci) in self.inputs_of(co).enumerate() {
                        let wk = &ws[(co * self.cin_g + j) * kk..][..kk];
                        self.phases(buf, &xs[(n * self.c_in + ci) * pin..][..pin]);
                        for (oy, yr) in yp.chunks_exact_mut(ow).enumerate() {
                            for (&tap, &off) in wk.iter().zip(&taps) {
                                let src = &buf[oy * row + off..][..ow];
                                yr.iter_mut().zip(src).for_each(|(d, v)| *d += v * tap);
                            }
                        }
                    }
                });
        }
        tensor(out, [self.n, self.c_out, self.oh, self.ow])
    }

    /// `dx[n, ci, iy, ix] = Σ g[n, co, oy, ox] · W[co, ci, ky, kx]` over the output channels
    /// fed by `ci` and the taps with `oy*s + ky - p = iy`, `ox*s + kx - p = ix`.
    pub fn input_grad(&self, weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (ws, gs) = (values(weight), values(grad));
        let (pin, pout, kk, ow) = (self.plane_in(), self.plane_out(), self.k * self.k, self.ow);
        let (taps, row) = (self.tap_offsets(), self.stride * self.phase_width());
        let mut out = vec![0f32; self.n * self.c_in * pin];
        if pin > 0 && pout > 0 {
            out.par_chunks_mut(pin).enumerate().for_each_init(
                Vec::new,
                |buf: &mut Vec<f32>, (plane, xp)| {
                    let (n, ci) = (plane / self.c_in, plane % self.c_in);
                    let (g, j) = (ci / self.cin_g, ci % self.cin_g);
                    buf.clear();
                    buf.resize(self.phases_len(), 0.0);
                    for co in g * self.cout_g..(g + 1) * self.cout_g {
                        let wk = &ws[(co * self.cin_g + j) * kk..][..kk];
                        let gp = &gs[(n * self.c_out + co) * pout..][..pout];
                        for (oy, gr) in gp.chunks_exact(ow).enumerate() {
                            for (&tap, &off) in wk.iter().zip(&taps) {
                                let dst = &mut buf[oy * row + off..][..ow];
                                dst.iter_mut().zip(gr).for_each(|(d, v)| *d += v * tap);
                            }
                        }
                    }
                    self.gather(buf, xp);
                },
            );
        }
        tensor(out, [self.n, self.c_in, self.h, self.w])
    }

    /// `dW[co, ci, ky, kx] = Σ_{n, oy, ox} g[n, co, oy, ox] · x[n, ci, oy*s + ky - p, ox*s + kx - p]`.
    pub fn weight_grad(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (xs, gs) = (values(x), values(grad));
        let (pin, pout, kk, ow) = (self.plane_in(), self.plane_out(), self.k * self.k, self.ow);
        let (taps, row) = (self.tap_offsets(), self.stride * self.phase_width());
        let per_out = self.cin_g * kk;
        let mut out = vec![0f32; self.c_out * per_out];
        if pout > 0 {
            out.par_chunks_mut(per_out.max(1))
                .enumerate()
                .for_each_init(Vec::new, |buf, (co, wc)| {
                    for n in 0..self.n {
                        let gp = &gs[(n * self.c_out + co) * pout..][..pout];
                        for (j, ci) in self.inputs_of(co).enumerate() {
                            self.phases(buf, &xs[(n * self.c_in + ci) * pin..][..pin]);
                            let wk = &mut wc[j * kk..][..kk];
                            for (oy, gr) in gp.chunks_exact(ow).enumerate() {
                                for (w, &off) in wk.iter_mut().zip(&taps) {
                                    *w += dot(gr, &buf[oy * row + off..][..ow]);
                                }
                            }
                        }
                    }
                });
        }
        tensor(out, [self.c_out, self.cin_g, self.k, self.k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(h: usize, w: usize, k: usize, stride: usize) -> Direct {
        let out = |len: usize| (len + 2 * (k / 2) - k) / stride + 1;
        Direct {
            n: 1,
            c_in: 1,
            c_out: 1,
            cin_g: 1,
            cout_g: 1,
            h,
            w,
            oh: out(h),
            ow: out(w),
            k,
            stride,
            padding: k / 2,
        }
    }

    #[test]
    fn phases_hold_the_padded_plane_and_gather_takes_its_interior_back() {
        for (h, w) in [(1, 1), (4, 7), (6, 5)] {
            for k in [1, 3, 5] {
                for stride in [1, 2, 3] {
                    let d = direct(h, w, k, stride);
                    let plane: Vec<f32> = (0..h * w).map(|i| i as f32 + 1.0).collect();
                    let mut buf = Vec::new();
                    d.phases(&mut buf, &plane);
                    let p = d.padding;
                    // Every padded position (r, c) sits at phase c % s, column c / s.
                    for r in 0..h + 2 * p {
                        for c in 0..w + 2 * p {
                            let at =
                                ((c % stride) * d.padded_rows() + r) * d.phase_width() + c / stride;
                            let inside = (p..h + p).contains(&r) && (p..w + p).contains(&c);
                            let want = if inside {
                                plane[(r - p) * w + c - p]
                            } else {
                                0.0
                            };
                            assert_eq!(buf[at], want, "{h}x{w} k {k} s {stride} at ({r}, {c})");
                        }
                    }
                    let mut back = vec![0.0; h * w];
                    d.gather(&buf, &mut back);
                    assert_eq!(back, plane);
                    // The first tap of output (oy, 0) is padded position (oy * s, 0).
                    for oy in 0..d.oh {
                        assert_eq!(d.row_start(oy, 0, 0), oy * stride * d.phase_width());
                    }
                }
            }
        }
    }
}
