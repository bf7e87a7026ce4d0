//! Direct convolutions, forward and both gradients, one `(image, channel)` plane per task:
//! depthwise layers, and dense layers with few input channels (a stem on RGB or grayscale
//! images). burn-flex runs these forward on one thread and inherits burn's generic backward
//! (for a grouped layer: per group a slice, a convolution whose "kernel" is the whole
//! output map, a slice-assign), where a handful of multiply-adds per output is all there is.

use std::ops::Range;

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::kernel::ConvKernel;
use super::output::Output;
use super::vector::{lanes, tensor, values, wide};

/// Dense layers with at most this many input channels run here (beyond, GEMMs win).
const DENSE_MAX_IN: usize = 4;

/// Part of an input row in one column phase of the phase buffer.
#[derive(Clone, Copy, Debug)]
struct RowRun {
    /// Where the row starts in the input plane.
    row: usize,
    /// Where its first value in this phase goes in the phase buffer.
    at: usize,
    /// Its first input column in this phase.
    first: usize,
}

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
    #[inline(always)]
    fn inputs_of(&self, co: usize) -> Range<usize> {
        let g = co / self.cout_g;
        g * self.cin_g..(g + 1) * self.cin_g
    }

    /// Rows of one phase of the zero-padded input plane (see [`Direct::phases`]).
    #[inline(always)]
    fn phase_rows(&self) -> usize {
        (self.h + 2 * self.padding).div_ceil(self.stride)
    }

    /// Width of one phase, and the row stride of the wide output (see [`Direct::span`]).
    #[inline(always)]
    fn phase_width(&self) -> usize {
        (self.w + 2 * self.padding).div_ceil(self.stride)
    }

    /// Length of one phase.
    #[inline(always)]
    fn phase_len(&self) -> usize {
        self.phase_rows() * self.phase_width()
    }

    /// Length of the phase buffer: `stride²` phases.
    #[inline(always)]
    fn phases_len(&self) -> usize {
        self.stride * self.stride * self.phase_len()
    }

    /// Length of the wide output: `oh` rows of [`Direct::phase_width`] values, the last
    /// one cut at `ow`. Output `(oy, ox)` sits at `oy * phase width + ox`; the columns past
    /// `ow` are scratch (discarded forward, zero in a gradient).
    #[inline(always)]
    fn span(&self) -> usize {
        (self.oh - 1) * self.phase_width() + self.ow
    }

    /// The zero-padded plane split into `stride²` phases, phase `(qy, qx)` holding padded
    /// rows `qy, qy + s, ...` and columns `qx, qx + s, ...`: tap `(ky, kx)` of output
    /// `(oy, ox)` is in phase `(ky % s, kx % s)` at row `oy + ky / s`, column
    /// `ox + kx / s`. Every tap of a whole plane is then one contiguous run of the wide
    /// output's length, starting at [`Direct::tap_offsets`], and the padding needs no
    /// bounds logic.
    #[inline(always)]
    fn phases(&self, buf: &mut Vec<f32>, plane: &[f32], rows: &[RowRun]) {
        // Every call writes the whole interior and never the border, so a buffer of this
        // geometry only needs zeroing once.
        let len = self.phases_len();
        if buf.len() != len {
            buf.clear();
            buf.resize(len, 0.0);
        }
        self.fill_phases(buf, plane, rows);
    }

    /// The interior of [`Direct::phases`] into `buf`, a phase buffer whose border is zero.
    #[inline(always)]
    fn fill_phases(&self, buf: &mut [f32], plane: &[f32], rows: &[RowRun]) {
        for r in rows {
            let (src, dst) = (&plane[r.row..][..self.w], &mut buf[r.at..]);
            if self.stride == 1 {
                dst[..self.w].copy_from_slice(src);
            } else {
                let cols = src[r.first..].iter().step_by(self.stride);
                dst.iter_mut().zip(cols).for_each(|(d, &v)| *d = v);
            }
        }
    }

    /// The input plane from a phase buffer (a padded plane's gradient): its interior.
    #[inline(always)]
    fn gather(&self, buf: &[f32], plane: &mut [f32], rows: &[RowRun]) {
        for r in rows {
            let (src, dst) = (&buf[r.at..], &mut plane[r.row..][..self.w]);
            if self.stride == 1 {
                dst.copy_from_slice(&src[..self.w]);
            } else {
                let cols = dst[r.first..].iter_mut().step_by(self.stride);
                cols.zip(src).for_each(|(d, &v)| *d = v);
            }
        }
    }

    /// Where the input plane's rows lie in the phase buffer, worked out once per op (the
    /// divisions by the stride cost more than copying a short row).
    fn row_runs(&self) -> Vec<RowRun> {
        let (s, p, pw, len) = (
            self.stride,
            self.padding,
            self.phase_width(),
            self.phase_len(),
        );
        let mut runs = Vec::with_capacity(self.h * s);
        for iy in 0..self.h {
            let (qy, row) = ((iy + p) % s, (iy + p) / s);
            for qx in 0..s {
                // The first padded column c >= p with c % s == qx, as an input column.
                let first = (qx + s - p % s) % s;
                if first < self.w {
                    runs.push(RowRun {
                        row: iy * self.w,
                        at: (qy * s + qx) * len + row * pw + (first + p) / s,
                        first,
                    });
                }
            }
        }
        runs
    }

    /// Per tap `(ky, kx)`, where its run starts in the phase buffer.
    fn tap_offsets(&self) -> Vec<usize> {
        let (s, pw, len) = (self.stride, self.phase_width(), self.phase_len());
        (0..self.k * self.k)
            .map(|t| {
                let (ky, kx) = (t / self.k, t % self.k);
                ((ky % s) * s + kx % s) * len + (ky / s) * pw + kx / s
            })
            .collect()
    }

    /// The `g` plane into `wide_g`, a buffer of [`Direct::span`] values at the wide
    /// output's layout whose scratch columns stay 0 (they are never written).
    #[inline(always)]
    fn widen(&self, g: &[f32], wide_g: &mut [f32]) {
        for (wr, gr) in wide_g
            .chunks_mut(self.phase_width())
            .zip(g.chunks_exact(self.ow))
        {
            wr[..self.ow].copy_from_slice(gr);
        }
    }
}

impl ConvKernel for Direct {
    /// `y[n, co] = Σ_{ci, ky, kx} x[n, ci, oy*s + ky - p, ox*s + kx - p] · W[co, ci, ky, kx]`.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        match self.block() {
            Some(images) => self.forward_batched(x, weight, images),
            None => self.forward_planes(x, weight),
        }
    }

    fn input_grad(&self, weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        match self.block() {
            Some(images) => self.input_grad_batched(weight, grad, images),
            None => self.input_grad_planes(weight, grad),
        }
    }

    fn weight_grad(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        self.weight_grad_planes(x, grad)
    }
}

/// Depthwise layers whose output planes have at most this many values run batched.
const BATCHED_MAX_PLANE: usize = 64;
/// Values of the phase buffers of one batched task (its images' planes side by side),
/// at most: 64 KiB, well inside L2.
const BATCHED_VALUES: usize = 16 * 1024;

impl Direct {
    /// Images per task of the batched path, for a depthwise layer on small planes: `None`
    /// where one plane per task is better (dense layers, large planes, one image).
    ///
    /// On a small plane (a 16-px input ends at 2x2 and 1x1) each tap's run is a few
    /// values; the planes of several images, side by side at a fixed stride (the phase
    /// buffer's length), make each tap one long run over all of them. An output's sum
    /// then takes its taps in the same order as on its own, so the values are the same;
    /// the batch split depends on the sizes alone, never on the threads.
    fn block(&self) -> Option<usize> {
        let depthwise = self.cin_g == 1 && self.cout_g == 1 && self.c_in == self.c_out;
        let images = (BATCHED_VALUES / self.phases_len().max(1)).min(self.n);
        (depthwise && self.plane_out() <= BATCHED_MAX_PLANE && images > 1).then_some(images)
    }

    /// Runs `task(channel, first image, images)` for every channel and block of `images`
    /// images in parallel; each returns the channel's planes of those images, which are
    /// put in place in a `[N, C, plane]` buffer.
    fn batched(
        &self,
        images: usize,
        plane: usize,
        task: impl Fn(&mut (Vec<f32>, Vec<f32>), usize, usize, usize) -> Vec<f32> + Sync,
    ) -> Vec<f32> {
        let (c, blocks) = (self.c_out, self.n.div_ceil(images));
        let parts: Vec<Vec<f32>> = (0..c * blocks)
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |scratch, t| {
                    let (ch, b) = (t / blocks, t % blocks);
                    let first = b * images;
                    task(scratch, ch, first, images.min(self.n - first))
                },
            )
            .collect();
        let mut out = vec![0f32; self.n * c * plane];
        for (t, part) in parts.iter().enumerate() {
            let (ch, first) = (t / blocks, (t % blocks) * images);
            for (i, p) in part.chunks_exact(plane).enumerate() {
                out[((first + i) * c + ch) * plane..][..plane].copy_from_slice(p);
            }
        }
        out
    }

    /// [`ConvKernel::forward`] of a depthwise layer, `images` images per task.
    fn forward_batched(&self, x: &FlexTensor, weight: &FlexTensor, images: usize) -> FlexTensor {
        let (xs, ws) = (values(x), values(weight));
        let (pin, pout, kk) = (self.plane_in(), self.plane_out(), self.k * self.k);
        let (taps, pw, span, len) = (
            self.tap_offsets(),
            self.phase_width(),
            self.span(),
            self.phases_len(),
        );
        let runs = self.row_runs();
        let out = self.batched(images, pout, |(buf, wide_out), co, first, m| {
            wide(
                #[inline(always)]
                || {
                    buf.clear();
                    buf.resize(m * len, 0.0);
                    for (i, b) in buf.chunks_exact_mut(len).enumerate() {
                        self.fill_phases(
                            b,
                            &xs[((first + i) * self.c_in + co) * pin..][..pin],
                            &runs,
                        );
                    }
                    // Image i's wide output at i * len; the values between are scratch.
                    let run = (m - 1) * len + span;
                    wide_out.clear();
                    wide_out.resize(run, 0.0);
                    for (&tap, &off) in ws[co * kk..][..kk].iter().zip(&taps) {
                        let pairs = wide_out.iter_mut().zip(&buf[off..][..run]);
                        pairs.for_each(|(d, v)| *d += v * tap);
                    }
                    let mut y = vec![0f32; m * pout];
                    for (i, yp) in y.chunks_exact_mut(pout).enumerate() {
                        let rows = wide_out[i * len..].chunks(pw);
                        for (yr, wr) in yp.chunks_exact_mut(self.ow).zip(rows) {
                            yr.copy_from_slice(&wr[..self.ow]);
                        }
                    }
                    y
                },
            )
        });
        tensor(out, [self.n, self.c_out, self.oh, self.ow])
    }

    /// [`ConvKernel::input_grad`] of a depthwise layer, `images` images per task. The
    /// gradient's scratch values are 0, so the taps' long runs add only zeros outside
    /// each image's own values.
    fn input_grad_batched(
        &self,
        weight: &FlexTensor,
        grad: &FlexTensor,
        images: usize,
    ) -> FlexTensor {
        let (ws, gs) = (values(weight), values(grad));
        let (pin, pout, kk) = (self.plane_in(), self.plane_out(), self.k * self.k);
        let (taps, span, len, runs) = (
            self.tap_offsets(),
            self.span(),
            self.phases_len(),
            self.row_runs(),
        );
        let out = self.batched(images, pin, |(buf, wide_g), ci, first, m| {
            wide(
                #[inline(always)]
                || {
                    buf.clear();
                    buf.resize(m * len, 0.0);
                    let run = (m - 1) * len + span;
                    wide_g.clear();
                    wide_g.resize(m * len, 0.0);
                    for (i, wg) in wide_g.chunks_exact_mut(len).enumerate() {
                        let g = &gs[((first + i) * self.c_out + ci) * pout..][..pout];
                        self.widen(g, &mut wg[..span]);
                    }
                    for (&tap, &off) in ws[ci * kk..][..kk].iter().zip(&taps) {
                        let pairs = buf[off..][..run].iter_mut().zip(&wide_g[..run]);
                        pairs.for_each(|(d, v)| *d += v * tap);
                    }
                    let mut dx = vec![0f32; m * pin];
                    for (xp, b) in dx.chunks_exact_mut(pin).zip(buf.chunks_exact(len)) {
                        self.gather(b, xp, &runs);
                    }
                    dx
                },
            )
        });
        tensor(out, [self.n, self.c_in, self.h, self.w])
    }
}

impl Direct {
    /// [`ConvKernel::forward`], one `(image, channel)` plane per task.
    fn forward_planes(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        let (xs, ws) = (values(x), values(weight));
        let (pin, pout, kk) = (self.plane_in(), self.plane_out(), self.k * self.k);
        let (taps, pw, span) = (self.tap_offsets(), self.phase_width(), self.span());
        let runs = self.row_runs();
        let mut out = Output::new(self.n * self.c_out * pout);
        if pout > 0 {
            out.par_chunks_mut(pout).enumerate().for_each_init(
                || (Vec::new(), vec![0f32; span]),
                |(buf, wide_out), (plane, yp)| {
                    let (n, co) = (plane / self.c_out, plane % self.c_out);
                    wide(
                        #[inline(always)]
                        || {
                            wide_out.fill(0.0);
                            for (j, ci) in self.inputs_of(co).enumerate() {
                                let wk = &ws[(co * self.cin_g + j) * kk..][..kk];
                                self.phases(buf, &xs[(n * self.c_in + ci) * pin..][..pin], &runs);
                                for (&tap, &off) in wk.iter().zip(&taps) {
                                    let src = &buf[off..][..span];
                                    let pairs = wide_out.iter_mut().zip(src);
                                    pairs.for_each(|(d, v)| *d += v * tap);
                                }
                            }
                            for (yr, wr) in yp.chunks_exact_mut(self.ow).zip(wide_out.chunks(pw)) {
                                yr.copy_from_slice(&wr[..self.ow]);
                            }
                        },
                    );
                },
            );
        }
        tensor(out.into_vec(), [self.n, self.c_out, self.oh, self.ow])
    }

    /// `dx[n, ci, iy, ix] = Σ g[n, co, oy, ox] · W[co, ci, ky, kx]` over the output channels
    /// fed by `ci` and the taps with `oy*s + ky - p = iy`, `ox*s + kx - p = ix`: every tap
    /// adds the wide gradient times its weight into its run of the phase buffer (the
    /// padded plane's gradient), whose interior is then the input's gradient.
    fn input_grad_planes(&self, weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (ws, gs) = (values(weight), values(grad));
        let (pin, pout, kk) = (self.plane_in(), self.plane_out(), self.k * self.k);
        let (taps, span, runs) = (self.tap_offsets(), self.span(), self.row_runs());
        let mut out = Output::new(self.n * self.c_in * pin);
        if pin > 0 && pout > 0 {
            out.par_chunks_mut(pin).enumerate().for_each_init(
                || (Vec::new(), vec![0f32; span]),
                |(buf, wide_g): &mut (Vec<f32>, Vec<f32>), (plane, xp)| {
                    let (n, ci) = (plane / self.c_in, plane % self.c_in);
                    let (g, j) = (ci / self.cin_g, ci % self.cin_g);
                    wide(
                        #[inline(always)]
                        || {
                            buf.clear();
                            buf.resize(self.phases_len(), 0.0);
                            for co in g * self.cout_g..(g + 1) * self.cout_g {
                                let wk = &ws[(co * self.cin_g + j) * kk..][..kk];
                                self.widen(&gs[(n * self.c_out + co) * pout..][..pout], wide_g);
                                for (&tap, &off) in wk.iter().zip(&taps) {
                                    let dst = &mut buf[off..][..span];
                                    let pairs = dst.iter_mut().zip(wide_g.iter());
                                    pairs.for_each(|(d, v)| *d += v * tap);
                                }
                            }
                            self.gather(buf, xp, &runs);
                        },
                    );
                },
            );
        }
        tensor(out.into_vec(), [self.n, self.c_in, self.h, self.w])
    }

    /// `dW[co, ci, ky, kx] = Σ_{n, oy, ox} g[n, co, oy, ox] · x[n, ci, oy*s + ky - p, ox*s + kx - p]`:
    /// per image and tap, one dot product of the wide gradient with the tap's run.
    fn weight_grad_planes(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (xs, gs) = (values(x), values(grad));
        let (pin, pout, kk) = (self.plane_in(), self.plane_out(), self.k * self.k);
        let (taps, span, runs) = (self.tap_offsets(), self.span(), self.row_runs());
        let per_out = self.cin_g * kk;
        let mut out = Output::new(self.c_out * per_out);
        if pout > 0 && per_out > 0 {
            out.par_chunks_mut(per_out).enumerate().for_each_init(
                || (Vec::new(), vec![0f32; span]),
                |(buf, wide_g), (co, wc)| {
                    wide(
                        #[inline(always)]
                        || {
                            for n in 0..self.n {
                                self.widen(&gs[(n * self.c_out + co) * pout..][..pout], wide_g);
                                for (j, ci) in self.inputs_of(co).enumerate() {
                                    self.phases(
                                        buf,
                                        &xs[(n * self.c_in + ci) * pin..][..pin],
                                        &runs,
                                    );
                                    for (w, &off) in wc[j * kk..][..kk].iter_mut().zip(&taps) {
                                        *w += lanes(wide_g, &buf[off..][..span], |g, v| g * v);
                                    }
                                }
                            }
                        },
                    );
                },
            );
        }
        tensor(out.into_vec(), [self.c_out, self.cin_g, self.k, self.k])
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

    /// A depthwise layer: `n` images of `c` channels of `h x w`.
    fn depthwise(n: usize, c: usize, (h, w): (usize, usize), k: usize, stride: usize) -> Direct {
        Direct {
            n,
            c_in: c,
            c_out: c,
            ..direct(h, w, k, stride)
        }
    }

    fn noise(len: usize, seed: u32) -> Vec<f32> {
        // Signed values, some exactly zero (as after a ReLU).
        (0..len as u32)
            .map(|i| {
                let v = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 1000;
                if v.is_multiple_of(7) {
                    0.0
                } else {
                    v as f32 / 250.0 - 2.0
                }
            })
            .collect()
    }

    #[test]
    fn batched_depthwise_gives_the_values_of_one_plane_at_a_time() {
        for (h, w) in [(1, 1), (2, 2), (3, 5), (4, 4), (8, 8)] {
            for (k, stride) in [(3, 1), (3, 2), (5, 1), (5, 2), (7, 2)] {
                let d = depthwise(5, 3, (h, w), k, stride);
                let x = tensor(noise(5 * 3 * h * w, 1), [5, 3, h, w]);
                let wt = tensor(noise(3 * k * k, 2), [3, 1, k, k]);
                let g = tensor(noise(5 * 3 * d.plane_out(), 3), [5, 3, d.oh, d.ow]);
                let one = (d.forward_planes(&x, &wt), d.input_grad_planes(&wt, &g));
                // Blocks of 1, 2 (with a last block of 1) and all 5 images.
                for images in [1, 2, 5] {
                    let case = format!("{h}x{w} k {k} s {stride}, {images} images a task");
                    let y = d.forward_batched(&x, &wt, images);
                    assert_eq!(values(&y), values(&one.0), "forward, {case}");
                    let dx = d.input_grad_batched(&wt, &g, images);
                    assert_eq!(values(&dx), values(&one.1), "input gradient, {case}");
                }
            }
        }
        // Which layers take the batched path.
        assert!(depthwise(128, 16, (2, 2), 3, 1).block().is_some());
        assert!(depthwise(128, 16, (32, 32), 3, 1).block().is_none());
        assert!(depthwise(1, 16, (2, 2), 3, 1).block().is_none());
    }

    #[test]
    fn phases_hold_the_padded_plane_and_gather_takes_its_interior_back() {
        for (h, w) in [(1, 1), (4, 7), (6, 5)] {
            for k in [1, 3, 5] {
                for stride in [1, 2, 3] {
                    let d = direct(h, w, k, stride);
                    let (p, s, pw) = (d.padding, stride, d.phase_width());
                    let mut buf = Vec::new();
                    // A second plane in the same buffer: the border must still read 0.
                    for scale in [1.0, -2.0] {
                        let plane: Vec<f32> =
                            (0..h * w).map(|i| scale * (i as f32 + 1.0)).collect();
                        d.phases(&mut buf, &plane, &d.row_runs());
                        let padded = |r: usize, c: usize| {
                            let inside = (p..h + p).contains(&r) && (p..w + p).contains(&c);
                            if inside {
                                plane[(r - p) * w + c - p]
                            } else {
                                0.0
                            }
                        };
                        // Padded (r, c) sits in phase (r % s, c % s) at (r / s, c / s).
                        for r in 0..h + 2 * p {
                            for c in 0..w + 2 * p {
                                let phase = (r % s) * s + c % s;
                                let at = phase * d.phase_len() + (r / s) * pw + c / s;
                                let want = padded(r, c);
                                assert_eq!(buf[at], want, "{h}x{w} k {k} s {s} at ({r}, {c})");
                            }
                        }
                        // Each tap's run, read at the wide output's index of (oy, ox), is
                        // the padded value that output meets, and stays in the buffer.
                        for (t, &off) in d.tap_offsets().iter().enumerate() {
                            let (ky, kx) = (t / k, t % k);
                            assert!(off + d.span() <= d.phases_len());
                            for oy in 0..d.oh {
                                for ox in 0..d.ow {
                                    let want = padded(oy * s + ky, ox * s + kx);
                                    assert_eq!(buf[off + oy * pw + ox], want);
                                }
                            }
                        }
                        let mut back = vec![0.0; h * w];
                        d.gather(&buf, &mut back, &d.row_runs());
                        assert_eq!(back, plane);
                    }
                }
            }
        }
    }
}
