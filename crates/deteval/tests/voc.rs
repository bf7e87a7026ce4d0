//! `voc::evaluate` on a hand-computable case in a real VOC folder (Annotations/*.xml,
//! ImageSets/Main/test.txt, JPEGImages/), as the devkit's voc_eval.py computes it.
//!
//! aeroplane: 2 regular boxes and 1 difficult one. Detections in score order: a hit (TP),
//! one on the difficult box (neither), a duplicate of the hit (FP), a hit on image 2 (TP),
//! a miss (FP). Cumulative tp 1 1 1 2 2, fp 0 0 1 1 2 over 2 positives: recall .5 .5 .5 1 1,
//! precision 1 1 .5 2/3 .5.
//! - all-point AP: envelope 1 up to recall .5, 2/3 up to 1: 0.5 + 0.5 * 2/3 = 0.8333.
//! - 11-point AP: best precision 1 at recall >= 0, .1, ..., .5 (6 points), 2/3 at .6 .. 1
//!   (5 points): (6 + 10/3) / 11 = 0.8485.
//!
//! bird: one box, no detection: AP 0. bicycle: no box: no AP, left out of the mean.

use netaug_data::fixtures::voc_image;
use netaug_deteval::voc::{Metric, evaluate};
use netaug_deteval::{Detection, io};

fn det(image_id: u64, category_id: u64, bbox: [f64; 4], score: f64) -> Detection {
    Detection {
        image_id,
        category_id,
        bbox,
        score,
    }
}

#[test]
fn voc_ap_matches_the_devkit_on_a_hand_case() {
    let root = std::env::temp_dir().join(format!("netaug-deteval-voc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let base = root.join("VOCdevkit/VOC2007");
    // (image, its objects: class, box, difficult), both 200 x 200.
    let images = [
        (
            "000001",
            [
                ("aeroplane", [10, 10, 50, 50], false),
                ("aeroplane", [100, 100, 150, 150], true),
            ],
        ),
        (
            "000002",
            [
                ("aeroplane", [20, 20, 80, 60], false),
                ("bird", [5, 5, 40, 40], false),
            ],
        ),
    ];
    for (id, objects) in &images {
        voc_image(&base, id, 200, 200, objects).unwrap();
    }
    std::fs::create_dir_all(base.join("ImageSets/Main")).unwrap();
    std::fs::write(base.join("ImageSets/Main/test.txt"), "000001\n000002\n").unwrap();

    let gt = io::voc_gt_from_folder(&root, "2007", "test").unwrap();
    // Category ids are VOC class positions + 1: aeroplane 1, bicycle 2, bird 3.
    let dets = [
        det(1, 1, [10.0, 10.0, 40.0, 40.0], 0.9),
        det(1, 1, [100.0, 100.0, 50.0, 50.0], 0.8),
        det(1, 1, [11.0, 11.0, 40.0, 40.0], 0.7),
        det(2, 1, [20.0, 20.0, 60.0, 40.0], 0.6),
        det(2, 1, [150.0, 150.0, 10.0, 10.0], 0.5),
    ];
    let area = evaluate(&gt, &dets, Metric::Area).unwrap();
    let eleven = evaluate(&gt, &dets, Metric::ElevenPoint).unwrap();
    let ap = |r: &netaug_deteval::voc::VocResult, class: &str| {
        r.per_class.iter().find(|(n, _)| n == class).unwrap().1
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(
        ap(&area, "aeroplane").unwrap(),
        0.5 + 0.5 * 2.0 / 3.0
    ));
    assert!(close(
        ap(&eleven, "aeroplane").unwrap(),
        (6.0 + 10.0 / 3.0) / 11.0
    ));
    assert_eq!(ap(&area, "bird"), Some(0.0));
    assert_eq!(ap(&area, "bicycle"), None);
    assert!(close(area.map50, (0.5 + 1.0 / 3.0) / 2.0), "{}", area.map50);
    assert!(close(eleven.map50, (6.0 + 10.0 / 3.0) / 22.0));
    let json = area.to_json();
    assert!(json.starts_with("{\"map50\":0.41666"), "{json}");
    assert!(json.contains("\"bicycle\":null"), "{json}");

    // A detection on an image outside the set is refused.
    let e = evaluate(&gt, &[det(9, 1, [0.0, 0.0, 1.0, 1.0], 0.1)], Metric::Area).unwrap_err();
    assert!(e.to_string().contains("image 9"), "{e}");
}
