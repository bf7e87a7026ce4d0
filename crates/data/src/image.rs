//! Image decoding: JPEG (with DCT-domain downscaling when the target is small) and PNG;
//! grayscale, RGBA and CMYK all become RGB, as PIL's `convert("RGB")`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dataset::ImageRef;
use crate::error::DataError;

/// The default of [`max_pixels`]: 100 megapixels, ten times a 12-megapixel photo.
pub const DEFAULT_MAX_PIXELS: usize = 100_000_000;

/// 0 = not yet read from the environment.
static MAX_PIXELS: AtomicUsize = AtomicUsize::new(0);

/// The most pixels (width x height, as the file's header declares them) an image may
/// have: larger ones are refused before decoding, so a damaged or hostile header cannot
/// make the loader allocate gigabytes. `NETAUG_MAX_PIXELS` sets it for a process, else
/// [`DEFAULT_MAX_PIXELS`].
pub fn max_pixels() -> usize {
    match MAX_PIXELS.load(Ordering::Relaxed) {
        0 => {
            let n = max_pixels_from_env()
                .ok()
                .flatten()
                .unwrap_or(DEFAULT_MAX_PIXELS);
            MAX_PIXELS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// `NETAUG_MAX_PIXELS` as a limit: `None` when unset, an error naming it when it is not a
/// whole number above 0 (a program checks this once at its start: a typo would otherwise
/// leave the default in force without a word).
pub fn max_pixels_from_env() -> Result<Option<usize>, String> {
    let Some(v) = std::env::var_os("NETAUG_MAX_PIXELS") else {
        return Ok(None);
    };
    let text = v.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "NETAUG_MAX_PIXELS={text:?}: a whole number of pixels above 0 (default {DEFAULT_MAX_PIXELS})"
        )),
    }
}

/// Sets [`max_pixels`] for this process (at least 1).
pub fn set_max_pixels(n: usize) {
    MAX_PIXELS.store(n.max(1), Ordering::Relaxed);
}

/// Refuses a declared size over [`max_pixels`].
fn check_pixels(kind: &str, w: usize, h: usize) -> Result<(), String> {
    let limit = max_pixels();
    if w.saturating_mul(h) > limit {
        return Err(format!(
            "{kind} of {w} x {h} pixels is over the limit of {limit} pixels \
             (NETAUG_MAX_PIXELS raises it)"
        ));
    }
    Ok(())
}

/// An 8-bit image, row-major, channels interleaved (1 or 3 channels).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// A new image; `data` must hold `height * width * channels` bytes.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width * height * channels);
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    /// Pixel value at (x, y), channel c.
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }
}

/// Reads the pixels of `image`. With `min_side`, a JPEG is decoded at the smallest DCT
/// scale (1/8 .. 1) whose shorter side is still at least `min_side` pixels.
pub fn load(image: &ImageRef, min_side: Option<usize>) -> Result<Image, DataError> {
    match image {
        ImageRef::Gray { images, index } => Ok(Image::new(
            images.width,
            images.height,
            1,
            images.image(*index).to_vec(),
        )),
        ImageRef::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            decode(&bytes, min_side).map_err(|reason| DataError::bad(path, reason))
        }
    }
}

/// Decodes JPEG or PNG bytes to RGB.
pub fn decode(bytes: &[u8], min_side: Option<usize>) -> Result<Image, String> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        decode_jpeg(bytes, min_side)
    } else if bytes.starts_with(b"\x89PNG") {
        // The IHDR chunk comes first: width and height, big-endian, at bytes 16..24.
        if let (Some(w), Some(h)) = (bytes.get(16..20), bytes.get(20..24)) {
            let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            check_pixels("PNG", be(w), be(h))?;
        }
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .map_err(|e| format!("corrupt PNG: {e}"))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        Ok(Image::new(w as usize, h as usize, 3, img.into_raw()))
    } else {
        Err("not a JPEG or PNG image".into())
    }
}

/// Whether the data ends with the EOI marker (`FF D9`), ignoring trailing padding.
fn ends_with_eoi(bytes: &[u8]) -> bool {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0 && !b.is_ascii_whitespace());
    end.is_some_and(|e| e >= 1 && bytes[e - 1] == 0xff && bytes[e] == 0xd9)
}

fn decode_jpeg(bytes: &[u8], min_side: Option<usize>) -> Result<Image, String> {
    let corrupt = |e: jpeg_decoder::Error| format!("corrupt JPEG: {e}");
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    dec.read_info().map_err(corrupt)?;
    let info = dec.info().ok_or("corrupt JPEG: no frame header")?;
    let (w, h) = (info.width as usize, info.height as usize);
    check_pixels("JPEG", w, h)?;
    let short = w.min(h).max(1);
    // DCT scaling pays only from a factor of 2 down (the scales are 1/2, 1/4, 1/8).
    let scaled = min_side.is_some_and(|m| 2 * m <= short);
    if !scaled && info.pixel_format != jpeg_decoder::PixelFormat::CMYK32 && ends_with_eoi(bytes) {
        // Full-size RGB/gray: zune-jpeg (SIMD) decodes about 1.7x faster here. It fills a
        // truncated file with gray instead of failing, hence the end-of-image check: files
        // without one go to jpeg-decoder, which reports the truncation.
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .map_err(|e| format!("corrupt JPEG: {e}"))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        return Ok(Image::new(w as usize, h as usize, 3, img.into_raw()));
    }
    if let Some(min_side) = min_side.filter(|_| scaled) {
        // The decoder picks the smallest scale at least this large.
        let req = |d: usize| (d * min_side).div_ceil(short).clamp(1, u16::MAX as usize) as u16;
        dec.scale(req(w), req(h)).map_err(corrupt)?;
    }
    let pixels = dec.decode().map_err(corrupt)?;
    let info = dec.info().ok_or("corrupt JPEG: no frame header")?;
    let (w, h) = (info.width as usize, info.height as usize);
    let n = w * h;
    use jpeg_decoder::PixelFormat as P;
    let rgb: Vec<u8> = match info.pixel_format {
        P::RGB24 => pixels,
        P::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        P::L16 => pixels
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0]])
            .collect(),
        // jpeg-decoder undoes Adobe's inversion: these are ink amounts.
        P::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - p[3] as u32;
                [0, 1, 2].map(|i| ((255 - p[i] as u32) * k / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() != n * 3 {
        return Err("corrupt JPEG: truncated pixel data".into());
    }
    Ok(Image::new(w, h, 3, rgb))
}
