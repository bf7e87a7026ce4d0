//! `netaug det-eval` on COCO-format files: the JSON key orders of both formats, a VOC
//! ground truth with a difficult box given as COCO JSON, and a bad file refused (exit 2).

mod common;

use common::{assert_exit, assert_ok, netaug, temp};

#[test]
fn det_eval_prints_coco_and_voc_numbers() {
    let dir = temp("det-eval");
    let gt = dir.join("gt.json");
    std::fs::write(
        &gt,
        r#"{"images": [{"id": 1}, {"id": 2}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0},
              {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0, "difficult": 1},
              {"id": 3, "image_id": 2, "category_id": 2, "bbox": [30, 30, 100, 100], "area": 10000, "iscrowd": 0}]}"#,
    )
    .unwrap();
    let dt = dir.join("dt.json");
    std::fs::write(
        &dt,
        r#"[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.9},
            {"image_id": 2, "category_id": 2, "bbox": [200, 200, 10, 10], "score": 0.8}]"#,
    )
    .unwrap();
    let run = |format: &str| {
        let out = netaug()
            .args(["det-eval", "--json", "--format", format, "--gt"])
            .arg(&gt)
            .arg("--dt")
            .arg(&dt)
            .output()
            .unwrap();
        assert_ok(&out, format);
        String::from_utf8(out.stdout).unwrap()
    };
    let coco = run("coco");
    let keys = [
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
    ];
    let mut at = 0;
    for k in keys {
        let i = coco[at..]
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} out of order: {coco}"))
            + at;
        at = i + 1;
    }
    let v: serde_json::Value = serde_json::from_str(&coco).unwrap();
    // COCO knows no `difficult`: cat has 2 boxes, 1 found (precision 1 at the 51 recall
    // points up to 0.5), dog 1 box missed: (51 / 101) / 2, as pycocotools prints it.
    let ap50 = v["AP50"].as_f64().unwrap();
    assert!((ap50 - 51.0 / 101.0 / 2.0).abs() < 1e-12, "{coco}");
    assert_eq!(v["APs"], 0.0, "the small cat box is missed");

    // VOC: the difficult cat box is ignored, so cat AP is 1 and dog AP 0.
    let voc: serde_json::Value = serde_json::from_str(&run("voc")).unwrap();
    assert_eq!(voc["per_class"]["cat"], 1.0);
    assert_eq!(voc["per_class"]["dog"], 0.0);
    assert_eq!(voc["map50"], 0.5);

    std::fs::write(&dt, "[{\"image_id\": 1}]").unwrap();
    let out = netaug()
        .args(["det-eval", "--format", "coco", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&dt)
        .output()
        .unwrap();
    let err = assert_exit(&out, 2, "a bad dt.json");
    assert!(
        err.contains("dt.json") && err.contains("category_id"),
        "{err}"
    );
}
