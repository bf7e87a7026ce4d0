//! A small real-image detection set: Fashion-MNIST items pasted at random scales and
//! places onto a black canvas, with their boxes known exactly (tight around each item's
//! visible pixels after scaling). Written as a COCO split (PNG images and
//! `annotations/instances_<split>.json`), it opens with [`crate::detection::coco`] and is
//! scored by `netaug det-eval`.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::detection::BBox;
use crate::error::DataError;
use crate::image::Image;

/// How the canvases are made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PasteOptions {
    /// Canvas side in pixels.
    pub canvas: usize,
    /// Items per canvas: 1 to this many.
    pub max_items: usize,
    /// Smallest pasted side in pixels.
    pub min_side: usize,
    /// Largest pasted side in pixels.
    pub max_side: usize,
    /// Seed: the same seed gives the same canvases.
    pub seed: u64,
}

/// A pixel is part of an item when brighter than this (Fashion-MNIST's background is 0).
const VISIBLE: u8 = 16;

/// `n` canvases made from `items` (gray images and their classes). Items overlap little:
/// a placement overlapping an earlier box by IoU > 0.3 is tried elsewhere, then dropped.
pub fn paste(items: &[(Image, u32)], n: usize, o: &PasteOptions) -> Vec<(Image, Vec<BBox>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let side_hi = o.max_side.min(o.canvas).max(1);
    let side_lo = o.min_side.clamp(1, side_hi);
    (0..n)
        .map(|_| {
            let mut canvas = Image::new(o.canvas, o.canvas, 1, vec![0; o.canvas * o.canvas]);
            let mut boxes: Vec<BBox> = Vec::new();
            if items.is_empty() {
                return (canvas, boxes);
            }
            let count = rng.random_range(1..=o.max_items.max(1));
            for _ in 0..count {
                let (item, class) = &items[rng.random_range(0..items.len())];
                for _attempt in 0..10 {
                    let side = rng.random_range(side_lo..=side_hi);
                    let x0 = rng.random_range(0..=o.canvas - side);
                    let y0 = rng.random_range(0..=o.canvas - side);
                    let scaled = scale(item, side);
                    let Some(b) = tight(&scaled, x0, y0, *class) else {
                        break; // an empty item has no box
                    };
                    if boxes.iter().any(|o| iou(o, &b) > 0.3) {
                        continue;
                    }
                    for y in 0..side {
                        for x in 0..side {
                            let p = &mut canvas.data[(y0 + y) * o.canvas + x0 + x];
                            *p = (*p).max(scaled.data[y * side + x]);
                        }
                    }
                    boxes.push(b);
                    break;
                }
            }
            (canvas, boxes)
        })
        .collect()
}

/// Nearest-neighbour scaling of a gray image to `side` x `side`.
fn scale(img: &Image, side: usize) -> Image {
    let mut data = Vec::with_capacity(side * side);
    for y in 0..side {
        let sy = y * img.height / side;
        for x in 0..side {
            data.push(img.at(x * img.width / side, sy, 0));
        }
    }
    Image::new(side, side, 1, data)
}

/// The box around the visible pixels of `img` placed at (x0, y0); corners exclusive.
fn tight(img: &Image, x0: usize, y0: usize, class: u32) -> Option<BBox> {
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..img.height {
        for x in 0..img.width {
            if img.at(x, y, 0) > VISIBLE {
                x1 = x1.min(x);
                y1 = y1.min(y);
                x2 = x2.max(x + 1);
                y2 = y2.max(y + 1);
            }
        }
    }
    (x1 != usize::MAX).then(|| BBox {
        x1: (x0 + x1) as f32,
        y1: (y0 + y1) as f32,
        x2: (x0 + x2) as f32,
        y2: (y0 + y2) as f32,
        class,
        difficult: false,
        crowd: false,
    })
}

fn iou(a: &BBox, b: &BBox) -> f32 {
    let w = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let h = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = w * h;
    let area = |c: &BBox| (c.x2 - c.x1) * (c.y2 - c.y1);
    inter / (area(a) + area(b) - inter)
}

/// Writes `canvases` as COCO split `split` under `root`: `<split>/<i>.png` and
/// `annotations/instances_<split>.json` (category ids = class + 1, image ids from 1).
pub fn write_coco(
    root: &Path,
    split: &str,
    canvases: &[(Image, Vec<BBox>)],
    classes: &[String],
) -> Result<(), DataError> {
    let images_dir = root.join(split);
    let ann_dir = root.join("annotations");
    for d in [&images_dir, &ann_dir] {
        std::fs::create_dir_all(d).map_err(|e| DataError::io(d, e))?;
    }
    let mut images = Vec::new();
    let mut anns = Vec::new();
    for (i, (img, boxes)) in canvases.iter().enumerate() {
        let id = i + 1;
        let file = format!("{id:06}.png");
        let path = images_dir.join(&file);
        image::save_buffer(
            &path,
            &img.data,
            img.width as u32,
            img.height as u32,
            image::ColorType::L8,
        )
        .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?;
        images.push(json!({"id": id, "file_name": file, "width": img.width, "height": img.height}));
        for b in boxes {
            let (w, h) = (b.x2 - b.x1, b.y2 - b.y1);
            anns.push(
                json!({"id": anns.len() + 1, "image_id": id, "category_id": b.class + 1,
                "bbox": [b.x1, b.y1, w, h], "area": w * h, "iscrowd": 0}),
            );
        }
    }
    let categories: Vec<_> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"id": i + 1, "name": c}))
        .collect();
    let path = ann_dir.join(format!("instances_{split}.json"));
    let text = json!({"images": images, "annotations": anns, "categories": categories});
    std::fs::write(&path, text.to_string()).map_err(|e| DataError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(class: u32) -> (Image, u32) {
        // A 28x28 item whose visible part is the centre 14x14.
        let mut data = vec![0u8; 28 * 28];
        for y in 7..21 {
            for x in 7..21 {
                data[y * 28 + x] = 200;
            }
        }
        (Image::new(28, 28, 1, data), class)
    }

    #[test]
    fn pasted_canvases_round_trip_through_the_coco_reader() {
        let o = PasteOptions {
            canvas: 96,
            max_items: 4,
            min_side: 28,
            max_side: 56,
            seed: 3,
        };
        let canvases = paste(&[item(0), item(2)], 6, &o);
        assert_eq!(canvases, paste(&[item(0), item(2)], 6, &o), "seeded");
        let n_boxes: usize = canvases.iter().map(|(_, b)| b.len()).sum();
        assert!(n_boxes >= 6, "{n_boxes}");
        for (img, boxes) in &canvases {
            for b in boxes {
                // Tight: half the pasted side, inside the canvas, the box's pixels lit.
                assert!(b.x2 <= 96.0 && b.y2 <= 96.0);
                let (w, h) = (b.x2 - b.x1, b.y2 - b.y1);
                assert!((14.0..=28.0).contains(&w) && (w - h).abs() <= 1.0, "{b:?}");
                assert!(img.at(b.x1 as usize, b.y1 as usize, 0) > VISIBLE);
                assert_eq!(img.at(b.x2 as usize - 1, b.y2 as usize - 1, 0), 200);
            }
        }
        let root = std::env::temp_dir().join(format!("netaug-pasted-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let classes: Vec<String> = (0..3).map(|c| format!("c{c}")).collect();
        write_coco(&root, "val", &canvases, &classes).unwrap();
        let (ds, ids) = crate::detection::coco(&root, "val").unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(ds.samples.len(), 6);
        assert_eq!(ds.samples[0].boxes, canvases[0].1);
        assert!(ds.samples[0].image.is_file());
        let _ = std::fs::remove_dir_all(&root);
    }
}
