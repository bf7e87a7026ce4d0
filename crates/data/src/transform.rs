//! The official transforms: RandomResizedCrop, horizontal flip, color jitter and
//! normalization for training; resize + center crop for evaluation; AutoAugment
//! (ImageNet policy) and RandAugment for the regularization table. Resampling is
//! bilinear with antialiasing (PIL's, which torchvision uses on PIL images).
//!
//! Images are worked on as `f32` HWC buffers in 0..=255 and leave as normalized CHW.

use rand::Rng;

use crate::image::Image;

/// An HWC float image, values 0..=255.
#[derive(Clone, Debug, PartialEq)]
pub struct FImage {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Channels (1 or 3).
    pub channels: usize,
    /// `height * width * channels` values.
    pub data: Vec<f32>,
}

impl FImage {
    fn from_image(img: &Image) -> Self {
        Self {
            width: img.width,
            height: img.height,
            channels: img.channels,
            data: img.data.iter().map(|&v| v as f32).collect(),
        }
    }

    /// Normalized CHW values.
    pub fn to_chw(&self, mean: &[f32], std: &[f32]) -> Vec<f32> {
        let (w, h, c) = (self.width, self.height, self.channels);
        let mut out = vec![0.0; c * h * w];
        for ch in 0..c {
            let (m, s) = (mean[ch % mean.len()], std[ch % std.len()]);
            for i in 0..h * w {
                out[ch * h * w + i] = (self.data[i * c + ch] / 255.0 - m) / s;
            }
        }
        out
    }

    fn round_clamp(&mut self) {
        for v in &mut self.data {
            *v = v.round().clamp(0.0, 255.0);
        }
    }
}

/// ImageNet mean (RGB, 0..1 scale).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet std.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A learned augmentation policy applied after crop and flip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// AutoAugment, ImageNet policy (torchvision's).
    AutoAugment,
    /// RandAugment with `ops` operations at magnitude `magnitude` of 31 bins.
    RandAugment {
        /// Operations per image (2).
        ops: usize,
        /// Magnitude bin, 0..=30 (9).
        magnitude: usize,
    },
}

/// Training transform (the official recipe).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainTransform {
    /// Output side in pixels.
    pub size: usize,
    /// Crop area range, fraction of the image (0.08, 1.0).
    pub scale: (f64, f64),
    /// Crop aspect-ratio range (3/4, 4/3).
    pub ratio: (f64, f64),
    /// Random horizontal flip with p = 0.5.
    pub flip: bool,
    /// Brightness jitter: factor in [1 - b, 1 + b] (32/255).
    pub brightness: f32,
    /// Saturation jitter: factor in [1 - s, 1 + s] (0.5).
    pub saturation: f32,
    /// AutoAugment or RandAugment.
    pub policy: Option<Policy>,
}

impl TrainTransform {
    /// The official ImageNet training transform at `size` pixels.
    pub fn imagenet(size: usize) -> Self {
        Self {
            size,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: true,
            brightness: 32.0 / 255.0,
            saturation: 0.5,
            policy: None,
        }
    }

    /// Applies the transform.
    pub fn apply(&self, img: &Image, rng: &mut impl Rng) -> FImage {
        let (x, y, w, h) =
            random_resized_crop_box(img.width, img.height, self.scale, self.ratio, rng);
        let mut out = resize_box(
            img,
            (x as f64, y as f64, w as f64, h as f64),
            self.size,
            self.size,
        );
        if self.flip && rng.random_bool(0.5) {
            hflip(&mut out);
        }
        if let Some(policy) = self.policy {
            out.round_clamp();
            apply_policy(&mut out, policy, rng);
        }
        color_jitter(&mut out, self.brightness, self.saturation, rng);
        out
    }

    /// The smallest shorter side worth decoding: crops below `1/decode_factor` of the
    /// image are upsampled from a reduced decode. 2x the output keeps every crop of at
    /// least a quarter of the image at full detail.
    pub fn decode_min_side(&self) -> usize {
        self.size * 2
    }
}

/// Evaluation transform: resize the shorter side to `ceil(size / 0.875)`, center crop.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalTransform {
    /// Output side in pixels.
    pub size: usize,
    /// Crop fraction (0.875).
    pub crop_ratio: f64,
}

impl EvalTransform {
    /// The official evaluation transform at `size` pixels.
    pub fn imagenet(size: usize) -> Self {
        Self {
            size,
            crop_ratio: 0.875,
        }
    }

    /// Shorter side after the resize.
    pub fn resize_side(&self) -> usize {
        (self.size as f64 / self.crop_ratio).ceil() as usize
    }

    /// Applies the transform.
    pub fn apply(&self, img: &Image) -> FImage {
        let side = self.resize_side();
        let (w, h) = (img.width as f64, img.height as f64);
        // torchvision Resize(int): the shorter side becomes `side`, the other truncates.
        let (rw, rh) = if w <= h {
            (side, (side as f64 * h / w) as usize)
        } else {
            ((side as f64 * w / h) as usize, side)
        };
        // Center crop of `size` in the resized image, mapped back to source pixels: the
        // filter taps are those of resizing the whole image, only fewer are computed.
        let (sx, sy) = (w / rw as f64, h / rh as f64);
        let (left, top) = (center_offset(rw, self.size), center_offset(rh, self.size));
        let region = (
            left * sx,
            top * sy,
            self.size as f64 * sx,
            self.size as f64 * sy,
        );
        resize_box(img, region, self.size, self.size)
    }
}

/// torchvision's `CenterCrop` offset of a `size` crop in `side` pixels:
/// `round((side - size) / 2)` with Python's rounding (half to even).
fn center_offset(side: usize, size: usize) -> f64 {
    ((side as f64 - size as f64) / 2.0)
        .round_ties_even()
        .max(0.0)
}

/// torchvision's `RandomResizedCrop.get_params`: (x, y, w, h).
pub fn random_resized_crop_box(
    width: usize,
    height: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> (usize, usize, usize, usize) {
    let area = (width * height) as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if w > 0 && h > 0 && w <= width && h <= height {
            let x = rng.random_range(0..=width - w);
            let y = rng.random_range(0..=height - h);
            return (x, y, w, h);
        }
    }
    // Fallback: the whole image cropped to the closest allowed aspect ratio.
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, (width as f64 / ratio.0).round() as usize)
    } else if in_ratio > ratio.1 {
        ((height as f64 * ratio.1).round() as usize, height)
    } else {
        (width, height)
    };
    ((width - w) / 2, (height - h) / 2, w.max(1), h.max(1))
}

/// Filter taps of one output coordinate: (first source index, weights).
fn taps(out_len: usize, src_start: f64, src_len: f64, in_len: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src_len / out_len as f64;
    // Antialiasing: the triangle filter widens with the downscale factor (PIL).
    let support = scale.max(1.0);
    (0..out_len)
        .map(|i| {
            let center = src_start + (i as f64 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(in_len);
            let mut w: Vec<f32> = (lo..hi)
                .map(|j| {
                    let d = ((j as f64 + 0.5 - center) / support).abs();
                    (1.0 - d).max(0.0) as f32
                })
                .collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // Degenerate box: nearest pixel.
                let j = (center.floor().max(0.0) as usize).min(in_len - 1);
                return (j, vec![1.0]);
            }
            (lo, w)
        })
        .collect()
}

/// Resamples the source region `(x, y, w, h)` to `out_w x out_h` (bilinear, antialiased).
pub fn resize_box(img: &Image, region: (f64, f64, f64, f64), out_w: usize, out_h: usize) -> FImage {
    let (x0, y0, rw, rh) = region;
    let c = img.channels;
    let xt = taps(out_w, x0, rw, img.width);
    let yt = taps(out_h, y0, rh, img.height);
    // Rows needed by the vertical pass.
    let row_lo = yt.iter().map(|(s, _)| *s).min().unwrap_or(0);
    let row_hi = yt.iter().map(|(s, w)| s + w.len()).max().unwrap_or(0);
    // Horizontal pass over those rows.
    let mut tmp = vec![0f32; (row_hi - row_lo) * out_w * c];
    for y in row_lo..row_hi {
        let src = &img.data[y * img.width * c..(y + 1) * img.width * c];
        let dst = &mut tmp[(y - row_lo) * out_w * c..(y - row_lo + 1) * out_w * c];
        for (ox, (start, w)) in xt.iter().enumerate() {
            for ch in 0..c {
                let mut acc = 0.0;
                for (k, wk) in w.iter().enumerate() {
                    acc += wk * src[(start + k) * c + ch] as f32;
                }
                dst[ox * c + ch] = acc;
            }
        }
    }
    // Vertical pass.
    let mut data = vec![0f32; out_h * out_w * c];
    for (oy, (start, w)) in yt.iter().enumerate() {
        let dst = &mut data[oy * out_w * c..(oy + 1) * out_w * c];
        for (k, wk) in w.iter().enumerate() {
            let row = &tmp[(start + k - row_lo) * out_w * c..(start + k - row_lo + 1) * out_w * c];
            for (d, s) in dst.iter_mut().zip(row) {
                *d += wk * s;
            }
        }
    }
    let mut out = FImage {
        width: out_w,
        height: out_h,
        channels: c,
        data,
    };
    out.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 255.0));
    out
}

/// Mirrors the image left-right.
pub fn hflip(img: &mut FImage) {
    let (w, c) = (img.width, img.channels);
    for row in img.data.chunks_exact_mut(w * c) {
        for x in 0..w / 2 {
            for ch in 0..c {
                row.swap(x * c + ch, (w - 1 - x) * c + ch);
            }
        }
    }
}

/// ITU-R 601 luma, as PIL's `convert("L")`.
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// `img = blend(img, other, f)` per pixel with clamping: `other + f * (img - other)`.
fn blend_with(img: &mut FImage, f: f32, other: impl Fn(&[f32]) -> [f32; 3]) {
    let c = img.channels;
    for px in img.data.chunks_exact_mut(c) {
        let o = other(px);
        for ch in 0..c {
            px[ch] = (o[ch] + f * (px[ch] - o[ch])).clamp(0.0, 255.0);
        }
    }
}

fn brightness(img: &mut FImage, f: f32) {
    blend_with(img, f, |_| [0.0; 3]);
}

fn saturation(img: &mut FImage, f: f32) {
    if img.channels == 3 {
        blend_with(img, f, |p| [luma(p[0], p[1], p[2]); 3]);
    }
}

fn contrast(img: &mut FImage, f: f32) {
    let c = img.channels;
    let n = (img.data.len() / c) as f32;
    let mean = if c == 3 {
        img.data
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .sum::<f32>()
            / n
    } else {
        img.data.iter().sum::<f32>() / n
    };
    blend_with(img, f, |_| [mean; 3]);
}

/// torchvision's ColorJitter with brightness and saturation, in random order.
pub(crate) fn color_jitter(img: &mut FImage, b: f32, s: f32, rng: &mut impl Rng) {
    let bf = (b > 0.0).then(|| rng.random_range(1.0 - b..=1.0 + b));
    let sf = (s > 0.0).then(|| rng.random_range((1.0 - s).max(0.0)..=1.0 + s));
    let brightness_first = rng.random_bool(0.5);
    let apply_b = |img: &mut FImage| bf.map(|f| brightness(img, f));
    let apply_s = |img: &mut FImage| sf.map(|f| saturation(img, f));
    if brightness_first {
        apply_b(img);
        apply_s(img);
    } else {
        apply_s(img);
        apply_b(img);
    }
}

// ---- AutoAugment / RandAugment operations (on rounded 0..=255 values) ----

#[derive(Clone, Copy, Debug)]
enum Op {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
}

/// The magnitude of `op` at bin `bin` of `bins` (torchvision's augmentation space), and
/// whether it takes a random sign.
fn magnitude(op: Op, bin: usize, bins: usize, img: &FImage) -> (f32, bool) {
    let lin = |hi: f32| hi * bin as f32 / (bins - 1) as f32;
    match op {
        Op::ShearX | Op::ShearY => (lin(0.3), true),
        Op::TranslateX => (lin(150.0 / 331.0 * img.width as f32), true),
        Op::TranslateY => (lin(150.0 / 331.0 * img.height as f32), true),
        Op::Rotate => (lin(30.0), true),
        Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => (lin(0.9), true),
        Op::Posterize => (
            8.0 - (bin as f32 / ((bins - 1) as f32 / 4.0)).round(),
            false,
        ),
        Op::Solarize => (255.0 - lin(255.0), false),
        _ => (0.0, false),
    }
}

/// Samples the source image at (sx, sy), nearest neighbour, black outside.
fn affine(img: &mut FImage, map: impl Fn(f32, f32) -> (f32, f32)) {
    let (w, h, c) = (img.width, img.height, img.channels);
    let src = img.data.clone();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = map(x as f32 + 0.5, y as f32 + 0.5);
            let (ix, iy) = (sx.floor(), sy.floor());
            let dst = (y * w + x) * c;
            if ix >= 0.0 && iy >= 0.0 && (ix as usize) < w && (iy as usize) < h {
                let s = (iy as usize * w + ix as usize) * c;
                img.data[dst..dst + c].copy_from_slice(&src[s..s + c]);
            } else {
                img.data[dst..dst + c].iter_mut().for_each(|v| *v = 0.0);
            }
        }
    }
}

fn sharpness(img: &mut FImage, f: f32) {
    // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]] / 13; borders keep their pixels.
    let (w, h, c) = (img.width, img.height, img.channels);
    if w < 3 || h < 3 {
        return;
    }
    let src = img.data.clone();
    let mut blurred = src.clone();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for ch in 0..c {
                let mut acc = 0.0;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let k = if dx == 1 && dy == 1 { 5.0 } else { 1.0 };
                        acc += k * src[((y + dy - 1) * w + x + dx - 1) * c + ch];
                    }
                }
                blurred[(y * w + x) * c + ch] = (acc / 13.0).round();
            }
        }
    }
    for (v, b) in img.data.iter_mut().zip(blurred) {
        *v = (b + f * (*v - b)).clamp(0.0, 255.0);
    }
}

fn per_channel(img: &mut FImage, mut f: impl FnMut(&mut [f32], usize, usize)) {
    let c = img.channels;
    for ch in 0..c {
        f(&mut img.data, ch, c);
    }
}

fn autocontrast(img: &mut FImage) {
    per_channel(img, |d, ch, c| {
        let vals = d.iter().skip(ch).step_by(c);
        let (lo, hi) = vals.fold((255f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
        if hi > lo {
            let s = 255.0 / (hi - lo);
            d.iter_mut()
                .skip(ch)
                .step_by(c)
                .for_each(|v| *v = ((*v - lo) * s).round().clamp(0.0, 255.0));
        }
    });
}

fn equalize(img: &mut FImage) {
    // PIL's ImageOps.equalize, per channel.
    per_channel(img, |d, ch, c| {
        let mut hist = [0usize; 256];
        d.iter()
            .skip(ch)
            .step_by(c)
            .for_each(|&v| hist[v as usize] += 1);
        let nonzero: Vec<usize> = hist.iter().copied().filter(|&n| n > 0).collect();
        if nonzero.len() <= 1 {
            return;
        }
        let step = (nonzero.iter().sum::<usize>() - nonzero[nonzero.len() - 1]) / 255;
        if step == 0 {
            return;
        }
        let mut lut = [0f32; 256];
        let mut n = step / 2;
        for (i, count) in hist.iter().enumerate() {
            lut[i] = (n / step).min(255) as f32;
            n += count;
        }
        d.iter_mut()
            .skip(ch)
            .step_by(c)
            .for_each(|v| *v = lut[*v as usize]);
    });
}

fn apply_op(img: &mut FImage, op: Op, m: f32) {
    let (cx, cy) = (img.width as f32 / 2.0, img.height as f32 / 2.0);
    match op {
        Op::Identity => {}
        Op::ShearX => affine(img, |x, y| (x + m * y, y)),
        Op::ShearY => affine(img, |x, y| (x, y + m * x)),
        Op::TranslateX => affine(img, |x, y| (x - m, y)),
        Op::TranslateY => affine(img, |x, y| (x, y - m)),
        Op::Rotate => {
            let (s, c) = m.to_radians().sin_cos();
            affine(img, |x, y| {
                let (dx, dy) = (x - cx, y - cy);
                (cx + c * dx - s * dy, cy + s * dx + c * dy)
            })
        }
        Op::Brightness => brightness(img, 1.0 + m),
        Op::Color => saturation(img, 1.0 + m),
        Op::Contrast => contrast(img, 1.0 + m),
        Op::Sharpness => sharpness(img, 1.0 + m),
        Op::Posterize => {
            let mask = !((1u32 << (8 - m as u32)) - 1);
            img.data
                .iter_mut()
                .for_each(|v| *v = ((*v as u32) & mask) as f32);
        }
        Op::Solarize => img.data.iter_mut().for_each(|v| {
            if *v >= m {
                *v = 255.0 - *v
            }
        }),
        Op::AutoContrast => autocontrast(img),
        Op::Equalize => equalize(img),
        Op::Invert => img.data.iter_mut().for_each(|v| *v = 255.0 - *v),
    }
    img.round_clamp();
}

/// torchvision's ImageNet AutoAugment policy: (op, probability, magnitude bin).
const IMAGENET_POLICY: [[(Op, f64, usize); 2]; 25] = {
    use Op::*;
    [
        [(Posterize, 0.4, 8), (Rotate, 0.6, 9)],
        [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
        [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
        [(Posterize, 0.6, 7), (Posterize, 0.6, 6)],
        [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
        [(Equalize, 0.4, 0), (Rotate, 0.8, 8)],
        [(Solarize, 0.6, 3), (Equalize, 0.6, 0)],
        [(Posterize, 0.8, 5), (Equalize, 1.0, 0)],
        [(Rotate, 0.2, 3), (Solarize, 0.6, 8)],
        [(Equalize, 0.6, 0), (Posterize, 0.4, 6)],
        [(Rotate, 0.8, 8), (Color, 0.4, 0)],
        [(Rotate, 0.4, 9), (Equalize, 0.6, 0)],
        [(Equalize, 0.0, 0), (Equalize, 0.8, 0)],
        [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
        [(Color, 0.6, 4), (Contrast, 1.0, 8)],
        [(Rotate, 0.8, 8), (Color, 1.0, 2)],
        [(Color, 0.8, 8), (Solarize, 0.8, 7)],
        [(Sharpness, 0.4, 7), (Invert, 0.6, 0)],
        [(ShearX, 0.6, 5), (Equalize, 1.0, 0)],
        [(Color, 0.4, 0), (Equalize, 0.6, 0)],
        [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
        [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
        [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
        [(Color, 0.6, 4), (Contrast, 1.0, 8)],
        [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
    ]
};

const RAND_AUGMENT_OPS: [Op; 14] = [
    Op::Identity,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
];

fn signed(m: f32, sign: bool, rng: &mut impl Rng) -> f32 {
    if sign && rng.random_bool(0.5) { -m } else { m }
}

/// Applies AutoAugment or RandAugment to a rounded image.
pub fn apply_policy(img: &mut FImage, policy: Policy, rng: &mut impl Rng) {
    match policy {
        Policy::AutoAugment => {
            let sub = IMAGENET_POLICY[rng.random_range(0..IMAGENET_POLICY.len())];
            for (op, p, bin) in sub {
                if rng.random_bool(p) {
                    let (m, sign) = magnitude(op, bin, 10, img);
                    let m = signed(m, sign, rng);
                    apply_op(img, op, m);
                }
            }
        }
        Policy::RandAugment {
            ops,
            magnitude: bin,
        } => {
            for _ in 0..ops {
                let op = RAND_AUGMENT_OPS[rng.random_range(0..RAND_AUGMENT_OPS.len())];
                let (m, sign) = magnitude(op, bin.min(30), 31, img);
                let m = signed(m, sign, rng);
                apply_op(img, op, m);
            }
        }
    }
}

/// Converts a decoded image for the transforms.
pub fn to_float(img: &Image) -> FImage {
    FImage::from_image(img)
}

#[cfg(test)]
mod tests;
