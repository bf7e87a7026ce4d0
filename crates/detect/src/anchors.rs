//! Anchors: 9 sizes (w, h) in pixels, smallest first; three per output scale (stride 8,
//! 16, 32). The YOLOv3 set (for 416 px) scaled to a resolution, or k-means over the
//! training boxes with the distance 1 - IoU of shapes (YOLOv2/v3's clustering).

use crate::geometry::shape_iou;

/// YOLOv3's anchors for 416x416 input (COCO), smallest first.
pub const YOLOV3: [(f32, f32); 9] = [
    (10.0, 13.0),
    (16.0, 30.0),
    (33.0, 23.0),
    (30.0, 61.0),
    (62.0, 45.0),
    (59.0, 119.0),
    (116.0, 90.0),
    (156.0, 198.0),
    (373.0, 326.0),
];

/// The YOLOv3 anchors scaled from 416 px to `resolution`.
pub fn yolov3_scaled(resolution: usize) -> Vec<(f32, f32)> {
    let s = resolution as f32 / 416.0;
    YOLOV3.iter().map(|&(w, h)| (w * s, h * s)).collect()
}

/// `k` anchors by k-means on box sizes with the 1 - IoU distance, sorted by area.
/// Deterministic: the initial centres are the sizes at evenly spaced area quantiles.
/// Fewer distinct sizes than `k` gives fewer anchors; none gives none.
pub fn kmeans(sizes: &[(f32, f32)], k: usize, iterations: usize) -> Vec<(f32, f32)> {
    let mut sorted: Vec<(f32, f32)> = sizes
        .iter()
        .copied()
        .filter(|&(w, h)| w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite())
        .collect();
    if sorted.is_empty() || k == 0 {
        return Vec::new();
    }
    sorted.sort_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)));
    let mut centres: Vec<(f32, f32)> = (0..k)
        .map(|i| sorted[((2 * i + 1) * sorted.len()) / (2 * k)])
        .collect();
    centres.dedup();
    for _ in 0..iterations {
        let mut sum = vec![(0.0f64, 0.0f64, 0usize); centres.len()];
        for &s in &sorted {
            let best = nearest(&centres, s);
            sum[best].0 += s.0 as f64;
            sum[best].1 += s.1 as f64;
            sum[best].2 += 1;
        }
        let next: Vec<(f32, f32)> = sum
            .iter()
            .zip(&centres)
            .map(|(&(w, h, n), &c)| {
                if n == 0 {
                    c
                } else {
                    ((w / n as f64) as f32, (h / n as f64) as f32)
                }
            })
            .collect();
        if next == centres {
            break;
        }
        centres = next;
    }
    centres.sort_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)));
    centres
}

/// Index of the centre with the largest shape IoU with `s`.
fn nearest(centres: &[(f32, f32)], s: (f32, f32)) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &c) in centres.iter().enumerate() {
        let v = shape_iou(c, s);
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Mean over boxes of the best shape IoU with any anchor: how well anchors fit a set.
pub fn mean_best_iou(sizes: &[(f32, f32)], anchors: &[(f32, f32)]) -> f32 {
    if sizes.is_empty() || anchors.is_empty() {
        return 0.0;
    }
    let total: f32 = sizes
        .iter()
        .map(|&s| anchors.iter().map(|&a| shape_iou(a, s)).fold(0.0, f32::max))
        .sum();
    total / sizes.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_three_size_clusters() {
        let mut sizes = Vec::new();
        for i in 0..30 {
            let j = (i % 5) as f32;
            sizes.push((10.0 + j * 0.2, 12.0 + j * 0.1));
            sizes.push((50.0 + j, 30.0 + j));
            sizes.push((120.0 - j, 200.0 + j));
        }
        let a = kmeans(&sizes, 3, 50);
        assert_eq!(a.len(), 3);
        assert!(
            (a[0].0 - 10.4).abs() < 0.5 && (a[1].0 - 52.0).abs() < 1.5,
            "{a:?}"
        );
        assert!((a[2].1 - 202.0).abs() < 1.5, "{a:?}");
        assert!(mean_best_iou(&sizes, &a) > 0.95);
        // The generic YOLOv3 set fits these boxes worse than the clustered one.
        assert!(mean_best_iou(&sizes, &yolov3_scaled(416)) < mean_best_iou(&sizes, &a));
    }

    #[test]
    fn degenerate_inputs() {
        assert!(kmeans(&[], 9, 10).is_empty());
        assert_eq!(kmeans(&[(5.0, 5.0); 4], 9, 10), vec![(5.0, 5.0)]);
        let s = yolov3_scaled(208);
        assert_eq!(s[0], (5.0, 6.5));
    }
}
