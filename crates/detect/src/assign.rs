//! YOLOv3 target assignment: each ground-truth box goes to the one anchor (of all scales)
//! whose shape fits it best, at the cell of that anchor's scale holding its centre. The
//! regression targets are the centre's offset in the cell and the log of the size over
//! the anchor's.

use crate::geometry::{Corners, shape_iou};

/// Where a box is learned and what the head should output there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// Output scale (0: stride 8, ...).
    pub scale: usize,
    /// Anchor within the scale.
    pub anchor: usize,
    /// Cell column.
    pub gx: usize,
    /// Cell row.
    pub gy: usize,
    /// Centre offset in the cell, 0..1 (the target of sigmoid(tx)).
    pub tx: f32,
    /// Centre offset in the cell, 0..1.
    pub ty: f32,
    /// ln(box width / anchor width).
    pub tw: f32,
    /// ln(box height / anchor height).
    pub th: f32,
    /// Class index.
    pub class: usize,
    /// The box.
    pub bbox: Corners,
}

/// Assigns `boxes` (with their classes) of an image of `size` (w, h) to `anchors` (all
/// scales, smallest first, `anchors.len() / strides.len()` per scale). Two boxes wanting
/// the same slot: the larger keeps it (the smaller, learned elsewhere or not at all, is
/// the usual YOLOv3 loss). Boxes with no area are skipped.
pub fn assign(
    boxes: &[(Corners, usize)],
    anchors: &[(f32, f32)],
    strides: &[usize],
    size: (usize, usize),
) -> Vec<Target> {
    let per_scale = anchors.len() / strides.len().max(1);
    if per_scale == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    // Larger boxes first, so they win contested slots.
    order.sort_by(|&a, &b| boxes[b].0.area().total_cmp(&boxes[a].0.area()));
    let mut out: Vec<Target> = Vec::new();
    for i in order {
        let (bbox, class) = boxes[i];
        let (w, h) = (bbox.width(), bbox.height());
        if w <= 0.0 || h <= 0.0 {
            continue;
        }
        let mut best = (0usize, f32::NEG_INFINITY);
        for (a, &anchor) in anchors.iter().enumerate() {
            let v = shape_iou(anchor, (w, h));
            if v > best.1 {
                best = (a, v);
            }
        }
        let (scale, anchor) = (best.0 / per_scale, best.0 % per_scale);
        let Some(&stride) = strides.get(scale) else {
            continue;
        };
        let (cols, rows) = (size.0.div_ceil(stride), size.1.div_ceil(stride));
        let (cx, cy) = bbox.center();
        let fx = (cx / stride as f32).clamp(0.0, cols as f32 - 1e-3);
        let fy = (cy / stride as f32).clamp(0.0, rows as f32 - 1e-3);
        let (gx, gy) = (fx as usize, fy as usize);
        if out
            .iter()
            .any(|t| t.scale == scale && t.anchor == anchor && t.gx == gx && t.gy == gy)
        {
            continue;
        }
        let (aw, ah) = anchors[best.0];
        out.push(Target {
            scale,
            anchor,
            gx,
            gy,
            tx: fx - gx as f32,
            ty: fy - gy as f32,
            tw: (w / aw).ln(),
            th: (h / ah).ln(),
            class,
            bbox,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchors::yolov3_scaled;

    #[test]
    fn boxes_go_to_the_scale_and_cell_of_their_size_and_centre() {
        let anchors = yolov3_scaled(416);
        let small = Corners::from_center(100.0, 60.0, 12.0, 14.0);
        let large = Corners::from_center(200.0, 200.0, 150.0, 190.0);
        let t = assign(
            &[(small, 2), (large, 5)],
            &anchors,
            &[8, 16, 32],
            (416, 416),
        );
        assert_eq!(t.len(), 2);
        let s = t.iter().find(|t| t.class == 2).unwrap();
        assert_eq!((s.scale, s.anchor, s.gx, s.gy), (0, 0, 12, 7));
        assert!((s.tx - 0.5).abs() < 1e-5 && (s.ty - 0.5).abs() < 1e-5);
        assert!((s.tw - (12.0f32 / 10.0).ln()).abs() < 1e-5);
        let l = t.iter().find(|t| t.class == 5).unwrap();
        assert_eq!((l.scale, l.anchor), (2, 1), "156x198 fits 150x190 best");
        assert_eq!((l.gx, l.gy), (6, 6));
        // Reconstructing the box from the targets gives it back.
        let (aw, ah) = anchors[7];
        let cx = (l.gx as f32 + l.tx) * 32.0;
        assert!((cx - 200.0).abs() < 1e-3 && (aw * l.tw.exp() - 150.0).abs() < 1e-3);
        assert!((ah * l.th.exp() - 190.0).abs() < 1e-3);
    }

    #[test]
    fn a_contested_slot_goes_to_the_larger_box_and_empty_boxes_are_skipped() {
        let anchors = yolov3_scaled(416);
        let a = Corners::from_center(100.0, 100.0, 30.0, 60.0);
        let b = Corners::from_center(101.0, 101.0, 28.0, 58.0);
        let empty = Corners::from_center(50.0, 50.0, 0.0, 10.0);
        let t = assign(
            &[(b, 1), (a, 0), (empty, 3)],
            &anchors,
            &[8, 16, 32],
            (416, 416),
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].class, 0);
    }
}
