//! Boxes, the images that carry them, and the resize / flip / crop that move both.

use std::path::PathBuf;

use rand::Rng;

use crate::image::Image;
use crate::transform::{FImage, hflip, resize_box};

/// One box, corners in pixels (VOC: as written in the XML, 1-based; COCO: x, y, x+w, y+h).
#[derive(Clone, Debug, PartialEq)]
pub struct BBox {
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
    /// Contiguous class index.
    pub class: u32,
    /// VOC `difficult` flag (ignored by the VOC metric).
    pub difficult: bool,
    /// COCO `iscrowd` flag.
    pub crowd: bool,
}

/// An image and its boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct DetSample {
    /// The image file.
    pub image: PathBuf,
    /// Dataset id of the image (VOC: file stem's number, or its position; COCO: `id`).
    pub id: u64,
    /// Width from the annotation.
    pub width: u32,
    /// Height from the annotation.
    pub height: u32,
    /// Boxes.
    pub boxes: Vec<BBox>,
}

/// A detection split.
#[derive(Clone, Debug)]
pub struct DetDataset {
    /// Class names; `BBox::class` indexes them.
    pub classes: Vec<String>,
    /// Images.
    pub samples: Vec<DetSample>,
}

/// Resamples `img` to `w x h` and scales the boxes with it.
pub fn resize(img: &Image, boxes: &[BBox], w: usize, h: usize) -> (FImage, Vec<BBox>) {
    let out = resize_box(img, (0.0, 0.0, img.width as f64, img.height as f64), w, h);
    let (sx, sy) = (w as f32 / img.width as f32, h as f32 / img.height as f32);
    let boxes = boxes
        .iter()
        .map(|b| BBox {
            x1: b.x1 * sx,
            y1: b.y1 * sy,
            x2: b.x2 * sx,
            y2: b.y2 * sy,
            ..b.clone()
        })
        .collect();
    (out, boxes)
}

/// Mirrors image and boxes left-right.
pub fn flip(img: &mut FImage, boxes: &mut [BBox]) {
    hflip(img);
    let w = img.width as f32;
    for b in boxes {
        (b.x1, b.x2) = (w - b.x2, w - b.x1);
    }
}

/// A random crop covering `min_scale..=1` of each side, resized to `w x h`. Boxes are
/// clipped to the crop; those whose center falls outside are dropped.
pub fn random_crop_resize(
    img: &Image,
    boxes: &[BBox],
    min_scale: f64,
    w: usize,
    h: usize,
    rng: &mut impl Rng,
) -> (FImage, Vec<BBox>) {
    let (iw, ih) = (img.width as f64, img.height as f64);
    let cw = iw * rng.random_range(min_scale.min(1.0)..=1.0);
    let ch = ih * rng.random_range(min_scale.min(1.0)..=1.0);
    let x0 = rng.random_range(0.0..=iw - cw);
    let y0 = rng.random_range(0.0..=ih - ch);
    let out = resize_box(img, (x0, y0, cw, ch), w, h);
    let (sx, sy) = (w as f64 / cw, h as f64 / ch);
    let boxes = boxes
        .iter()
        .filter(|b| {
            let (cx, cy) = (((b.x1 + b.x2) / 2.0) as f64, ((b.y1 + b.y2) / 2.0) as f64);
            cx >= x0 && cx <= x0 + cw && cy >= y0 && cy <= y0 + ch
        })
        .map(|b| {
            let tx = |x: f32| (((x as f64 - x0).clamp(0.0, cw)) * sx) as f32;
            let ty = |y: f32| (((y as f64 - y0).clamp(0.0, ch)) * sy) as f32;
            BBox {
                x1: tx(b.x1),
                y1: ty(b.y1),
                x2: tx(b.x2),
                y2: ty(b.y2),
                ..b.clone()
            }
        })
        .collect();
    (out, boxes)
}
