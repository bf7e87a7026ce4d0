//! `netaug data info`, `netaug data pasted` and `netaug bench loader` on real-format fixtures.
mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_exit, assert_ok, netaug, temp};
use netaug_data::fixtures;
use predicates::prelude::*;

/// `netaug data info --dataset <dataset> <flags> --root <root>`.
fn info(dataset: &str, root: &Path, flags: &[&str]) -> Output {
    netaug()
        .args(["data", "info", "--dataset", dataset])
        .args(flags)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn info_json(dataset: &str, root: &Path) -> serde_json::Value {
    let out = info(dataset, root, &["--json"]);
    assert_ok(&out, "netaug");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn info_json_is_the_contract_for_every_layout() {
    let root = temp("info");
    // Each layout in a folder named after its dataset.
    let at = |name: &str| root.join(name);
    fixtures::food101(&at("food101"), &["a", "b"], 2, 1).unwrap();
    fixtures::flowers102(&at("flowers102"), &[1, 2, 3, 1], &[1], &[2], &[3, 4]).unwrap();
    fixtures::cars(&at("cars"), &["x", "y"], &[1, 2, 2], &[1]).unwrap();
    let birds = [(1, true), (2, false)];
    fixtures::cub200(&at("cub200"), &["001.A", "002.B"], &birds).unwrap();
    let pets = [("Bengal", 1), ("pug", 2)];
    fixtures::pets(&at("pets"), &pets[..1], &pets).unwrap();
    fixtures::folder(&at("folder"), &["x", "y", "z"], 1, 1).unwrap();
    fixtures::fashion_mnist(&at("fashion-mnist"), 20, 10, true).unwrap();
    // (dataset, classes, images per split)
    let cases = [
        ("food101", 2, r#"{"train":4,"test":2}"#),
        ("flowers102", 102, r#"{"train":1,"val":1,"test":2}"#),
        ("cars", 2, r#"{"train":3,"test":1}"#),
        ("cub200", 2, r#"{"train":1,"test":1}"#),
        ("pets", 2, r#"{"trainval":1,"test":2}"#),
        ("folder", 3, r#"{"train":3,"val":3}"#),
        ("fashion-mnist", 10, r#"{"train":20,"test":10}"#),
    ];
    for (name, classes, splits) in cases {
        let want = format!(r#"{{"dataset":"{name}","classes":{classes},"splits":{splits}}}"#);
        assert_eq!(info_json(name, &at(name)).to_string(), want, "{name}");
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn info_text_names_training_and_evaluation_splits() {
    let root = temp("text");
    fixtures::pets(&root, &[("Bengal", 1)], &[("pug", 2)]).unwrap();
    netaug()
        .args(["data", "info", "--dataset", "pets", "--root"])
        .arg(&root)
        .assert()
        .success()
        .stdout(predicate::str::contains("trainval").and(predicate::str::contains("(training)")));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn bad_roots_and_names_exit_2_with_one_line() {
    let root = temp("bad");
    let err = assert_exit(&info("cub200", &root, &[]), 2, "cub200 in an empty folder");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("CUB_200_2011/images.txt") && err.contains("image_class_labels.txt"),
        "{err}"
    );
    netaug()
        .args(["data", "info", "--dataset", "imagenet", "--root", "/tmp"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("food101"));
    netaug()
        .args(["data", "info", "--dataset", "cars"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--root"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn bench_loader_reports_both_rates() {
    let root = temp("bench");
    fixtures::folder(&root, &["a", "b"], 6, 1).unwrap();
    let out = netaug()
        .args([
            "bench",
            "loader",
            "--dataset",
            "folder",
            "--size",
            "16",
            "--images",
            "12",
            "--batch",
            "4",
            "--json",
            "--root",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert_ok(&out, "netaug");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"], 12);
    assert!(v["single_core_images_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["all_cores_images_per_second"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn pasted_writes_a_coco_detection_set_that_det_eval_reads() {
    let dir = temp("data-pasted");
    let fm = dir.join("fm");
    fixtures::fashion_mnist(&fm, 40, 20, false).unwrap();
    let out = dir.join("det");
    let o = netaug()
        .args([
            "data", "pasted", "--train", "12", "--val", "5", "--canvas", "64",
        ])
        .args(["--sides", "16", "32", "--root"])
        .arg(&fm)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o, "data pasted");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("train: 12 canvases") && text.contains("val: 5 canvases"),
        "{text}"
    );
    assert!(out.join("train/000012.png").is_file() && out.join("val/000005.png").is_file());
    // The ground truth as detections scores AP 1 with det-eval.
    let gt = out.join("annotations/instances_val.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&gt).unwrap()).unwrap();
    assert_eq!(v["categories"].as_array().unwrap().len(), 10);
    let dets: Vec<serde_json::Value> = v["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            serde_json::json!({"image_id": a["image_id"], "category_id": a["category_id"],
            "bbox": a["bbox"], "score": 1.0})
        })
        .collect();
    let dt = dir.join("dt.json");
    std::fs::write(&dt, serde_json::Value::Array(dets).to_string()).unwrap();
    let o = netaug()
        .args(["det-eval", "--format", "coco", "--json", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&dt)
        .output()
        .unwrap();
    assert_ok(&o, "det-eval");
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((s["AP50"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{s}");

    let o = netaug()
        .args(["data", "pasted", "--sides", "40", "20", "--root"])
        .arg(&fm)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn verify_checks_published_counts_and_names_what_is_missing() {
    let root = temp("verify");
    // Flowers-102 at its published size (1,020 / 1,020 / 6,149 images, small JPEGs).
    let labels: Vec<u32> = (0..8189).map(|i| i % 102 + 1).collect();
    let ids: Vec<u32> = (1..=8189).collect();
    let flowers = root.join("flowers");
    fixtures::flowers102(
        &flowers,
        &labels,
        &ids[..1020],
        &ids[1020..2040],
        &ids[2040..],
    )
    .unwrap();
    let verify = |extra: &[&str]| info("flowers102", &flowers, &[&["--verify"], extra].concat());
    let out = verify(&[]);
    assert_ok(&out, "verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("complete: every split has its published count"),
        "{text}"
    );

    std::fs::remove_file(flowers.join("jpg/image_00005.jpg")).unwrap();
    let out = verify(&[]);
    let err = assert_exit(&out, 2, "verify with an image missing");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("flowers102 is incomplete: train: 1019 of 1020 published images, 1 named by the annotations but missing"),
        "{err}"
    );
    assert!(!err.contains("val:") && !err.contains("test:"), "{err}");
    assert!(
        text.contains("missing ") && text.contains("jpg/image_00005.jpg"),
        "{text}"
    );
    let out = verify(&["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], false);
    assert_eq!(v["splits"]["train"]["found"], 1019);
    assert_eq!(v["splits"]["train"]["published"], 1020);
    assert_eq!(v["splits"]["test"]["found"], 6149);
    let missing = v["splits"]["train"]["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].as_str().unwrap().ends_with("image_00005.jpg"));

    // An empty file and one that is no JPEG are there, but are no images.
    std::fs::write(flowers.join("jpg/image_00006.jpg"), b"").unwrap();
    std::fs::write(
        flowers.join("jpg/image_00007.jpg"),
        b"<html>not found</html>",
    )
    .unwrap();
    let out = verify(&[]);
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("train: 2 files are no image (first: ")
            && err.contains("image_00006.jpg: empty file"),
        "{err}"
    );
    assert!(
        text.contains("no image ") && text.contains("image_00007.jpg: not a PNG or JPEG image"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&verify(&["--json"]).stdout).unwrap();
    assert_eq!(v["splits"]["train"]["found"], 1017);
    assert_eq!(
        v["splits"]["train"]["unreadable"].as_array().unwrap().len(),
        2
    );

    // Without --verify, a missing image is the layout error naming it.
    let err = assert_exit(&info("flowers102", &flowers, &[]), 2, "an image missing");
    assert!(err.contains("image_00005.jpg"), "{err}");

    // A user's own folder has no published counts.
    fixtures::folder(&root.join("fo"), &["x"], 1, 1).unwrap();
    let err = assert_exit(
        &info("folder", &root.join("fo"), &["--verify"]),
        2,
        "--verify",
    );
    assert!(err.contains("no published counts"), "{err}");
}
