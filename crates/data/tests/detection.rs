//! Pascal VOC and COCO annotations, and box-aware transforms.

use std::path::PathBuf;

use netaug_data::detection::{self, BBox};
use netaug_data::{fixtures, image};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("netaug-det-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn voc_image_sets_with_difficult_flags() {
    let root = temp("voc");
    let base = root.join("VOCdevkit/VOC2007");
    fixtures::voc_image(
        &base,
        "000005",
        500,
        375,
        &[
            ("chair", [263, 211, 324, 339], false),
            ("chair", [5, 244, 67, 374], true),
        ],
    )
    .unwrap();
    fixtures::voc_image(
        &base,
        "000007",
        500,
        333,
        &[("car", [141, 50, 500, 330], false)],
    )
    .unwrap();
    std::fs::create_dir_all(base.join("ImageSets/Main")).unwrap();
    std::fs::write(base.join("ImageSets/Main/test.txt"), "000005\n000007\n").unwrap();
    for r in [root.clone(), root.join("VOCdevkit")] {
        let ds = detection::voc(&r, &[("2007", "test")]).unwrap();
        assert_eq!(ds.classes.len(), 20);
        assert_eq!(ds.samples.len(), 2);
        let s = &ds.samples[0];
        assert_eq!((s.id, s.width, s.height), (5, 500, 375));
        assert_eq!(s.boxes.len(), 2);
        assert_eq!(
            s.boxes[1],
            BBox {
                x1: 5.0,
                y1: 244.0,
                x2: 67.0,
                y2: 374.0,
                class: 8,
                difficult: true,
                crowd: false
            }
        );
        assert_eq!(ds.samples[1].boxes[0].class, 6);
    }
    let err = detection::voc(&root, &[("2012", "trainval")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("VOC2012/ImageSets/Main/trainval.txt"), "{err}");
    assert!(detection::parse_voc_xml("<annotation><size><width>1</width><height>1</height></size><object><name>unicorn</name></object></annotation>").unwrap_err().contains("unicorn"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn coco_categories_become_contiguous_and_crowds_are_flagged() {
    let root = temp("coco");
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    let json = r#"{
      "images": [{"id": 42, "file_name": "000000000042.jpg", "width": 640, "height": 480},
                 {"id": 7, "file_name": "000000000007.jpg", "width": 320, "height": 240}],
      "annotations": [
        {"id": 1, "image_id": 42, "category_id": 90, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0},
        {"id": 2, "image_id": 42, "category_id": 1, "bbox": [0, 0, 100, 50], "area": 5000, "iscrowd": 1}],
      "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}]
    }"#;
    std::fs::write(root.join("annotations/instances_val2017.json"), json).unwrap();
    let (ds, ids) = detection::coco(&root, "val2017").unwrap();
    assert_eq!(ds.classes, vec!["person", "toothbrush"]);
    assert_eq!(ids, vec![1, 90]);
    let s = &ds.samples[0];
    assert_eq!(s.id, 42);
    assert_eq!(
        s.boxes[0],
        BBox {
            x1: 10.0,
            y1: 20.0,
            x2: 40.0,
            y2: 60.0,
            class: 1,
            difficult: false,
            crowd: false
        }
    );
    assert!(s.boxes[1].crowd);
    assert!(
        ds.samples[1].boxes.is_empty(),
        "images without boxes are kept"
    );
    assert!(ds.samples[0].image.ends_with("val2017/000000000042.jpg"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn boxes_follow_resize_flip_and_crop() {
    let root = temp("boxes");
    fixtures::jpeg(&root.join("a.jpg"), 200, 100, false, 1).unwrap();
    let img = image::load(&netaug_data::ImageRef::File(root.join("a.jpg")), None).unwrap();
    let b = BBox {
        x1: 20.0,
        y1: 10.0,
        x2: 60.0,
        y2: 50.0,
        class: 3,
        difficult: false,
        crowd: false,
    };
    let (mut out, mut boxes) = detection::resize(&img, std::slice::from_ref(&b), 100, 100);
    assert_eq!((out.width, out.height), (100, 100));
    assert_eq!(
        (boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2),
        (10.0, 10.0, 30.0, 50.0)
    );
    detection::flip(&mut out, &mut boxes);
    assert_eq!((boxes[0].x1, boxes[0].x2), (70.0, 90.0));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..50 {
        let (out, boxes) =
            detection::random_crop_resize(&img, std::slice::from_ref(&b), 0.5, 64, 64, &mut rng);
        assert_eq!((out.width, out.height), (64, 64));
        for bb in boxes {
            assert!(
                bb.x1 >= 0.0 && bb.x2 <= 64.0 && bb.y1 >= 0.0 && bb.y2 <= 64.0 && bb.x1 <= bb.x2
            );
            assert_eq!(bb.class, 3);
        }
    }
    std::fs::remove_dir_all(root).unwrap();
}
