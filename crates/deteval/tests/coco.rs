//! `coco::evaluate` against pycocotools: a ground truth and detections made here (three
//! categories with non-contiguous ids, small / medium / large and crowd boxes, areas that
//! differ from the box areas, images without boxes, detections that are jittered
//! matches, duplicates, wrong classes, false positives, more than 100 in one image, and
//! tied scores). The expected numbers in tests/coco_expected.json were computed once by
//! pycocotools 2.0.11 (PyPI) from these files with tests/pycocotools_expected.py; set
//! NETAUG_DETEVAL_FIXTURES=DIR to write the files there.

use std::path::PathBuf;

use netaug_deteval::coco::{STAT_NAMES, evaluate};
use netaug_deteval::io;
use serde_json::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n
    }
}

/// Rounds to 2 decimals, as detectors' JSON often is (and so that scores tie).
fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn fixture() -> (serde_json::Value, serde_json::Value) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cats = [1u64, 3, 7];
    let mut images = Vec::new();
    let mut anns = Vec::new();
    let mut dets = Vec::new();
    let mut ann_id = 1u64;
    for img in 1..=40u64 {
        images.push(
            json!({"id": img, "width": 640, "height": 480, "file_name": format!("{img}.jpg")}),
        );
        // Every fifth image has no boxes (but may get false detections).
        let n = if img % 5 == 0 { 0 } else { 1 + rng.below(6) };
        for _ in 0..n {
            let cat = cats[rng.below(3)];
            // Sizes spanning small (< 32 px), medium and large (> 96 px).
            let side =
                [8.0, 20.0, 40.0, 70.0, 120.0, 200.0][rng.below(6)] * (0.8 + 0.4 * rng.next());
            let (w, h) = (r2(side * (0.7 + 0.6 * rng.next())), r2(side));
            let (x, y) = (r2(rng.next() * (640.0 - w)), r2(rng.next() * (480.0 - h)));
            let crowd = rng.below(12) == 0;
            // A segmentation-like area: below the box area, sometimes across a range edge.
            let area = r2(w * h * (0.6 + 0.4 * rng.next()));
            anns.push(json!({"id": ann_id, "image_id": img, "category_id": cat,
                "bbox": [x, y, w, h], "area": area, "iscrowd": crowd as u8}));
            ann_id += 1;
            // Detections of this box: a good one, sometimes a duplicate, sometimes the wrong
            // class, sometimes missed.
            if rng.below(6) != 0 {
                let jit = 0.25 * side;
                let mut j = |v: f64| r2(v + (rng.next() - 0.5) * jit);
                let bbox = [j(x), j(y), j(w).max(1.0), j(h).max(1.0)];
                dets.push(json!({"image_id": img, "category_id": cat, "bbox": bbox,
                    "score": r2(0.3 + 0.7 * rng.next())}));
            }
            if rng.below(4) == 0 {
                dets.push(json!({"image_id": img, "category_id": cat,
                    "bbox": [r2(x + 2.0), r2(y + 1.0), w, h], "score": r2(0.2 + 0.5 * rng.next())}));
            }
            if rng.below(8) == 0 {
                dets.push(json!({"image_id": img, "category_id": cats[rng.below(3)],
                    "bbox": [x, y, w, h], "score": r2(rng.next())}));
            }
        }
        // False positives anywhere.
        for _ in 0..rng.below(4) {
            let s = 10.0 + 150.0 * rng.next();
            dets.push(json!({"image_id": img, "category_id": cats[rng.below(3)],
                "bbox": [r2(rng.next() * 500.0), r2(rng.next() * 380.0), r2(s), r2(s * 0.8)],
                "score": r2(rng.next() * 0.6)}));
        }
    }
    // One image with 130 detections of one class: maxDets 1 / 10 / 100 cut it.
    for i in 0..130 {
        let s = 30.0 + (i % 7) as f64 * 10.0;
        dets.push(json!({"image_id": 3, "category_id": 1,
            "bbox": [r2((i * 37 % 600) as f64), r2((i * 53 % 440) as f64), s, s],
            "score": r2(0.05 + 0.9 * rng.next())}));
    }
    let categories: Vec<_> = cats
        .iter()
        .map(|c| json!({"id": c, "name": format!("c{c}")}))
        .collect();
    (
        json!({"images": images, "annotations": anns, "categories": categories}),
        serde_json::Value::Array(dets),
    )
}

#[test]
fn the_twelve_numbers_equal_pycocotools() {
    let (gt, dt) = fixture();
    let dir = std::env::var_os("NETAUG_DETEVAL_FIXTURES").map_or_else(
        || std::env::temp_dir().join(format!("netaug-deteval-coco-{}", std::process::id())),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let (gt_path, dt_path) = (dir.join("gt.json"), dir.join("dt.json"));
    std::fs::write(&gt_path, gt.to_string()).unwrap();
    std::fs::write(&dt_path, dt.to_string()).unwrap();
    let stats = evaluate(
        &io::coco_gt(&gt_path).unwrap(),
        &io::detections(&dt_path).unwrap(),
    )
    .unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("coco_expected.json")).unwrap();
    for (name, ours) in STAT_NAMES.iter().zip(stats.0) {
        let theirs = expected[name].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() < 1e-4,
            "{name}: ours {ours}, pycocotools {theirs}\nall: {}",
            stats.to_json()
        );
    }
    // The fixture reaches every corner it claims to.
    let n = |v: &serde_json::Value| v.as_array().unwrap().len();
    assert!(n(&dt) > 200 && n(&gt["annotations"]) > 80);
    assert!(expected["APs"].as_f64().unwrap() > -1.0, "no small boxes");
}
