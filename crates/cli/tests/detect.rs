//! A detection run through the CLI on a pasted set made by `netaug data pasted` from a
//! real-format Fashion-MNIST fixture: `train` writes mAP metrics, `detect` writes a COCO
//! results file that `det-eval` scores to the run's own number, `eval` and `export` take
//! the detector, `report` makes the detection table and the mAP-vs-resolution plot.
mod common;

use std::path::Path;

use common::{assert_exit, assert_ok, export, netaug, temp, train};
use netaug_data::fixtures;
use serde_json::Value;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_detect_det_eval_eval_export_and_report_agree() {
    let dir = temp("detect");
    let fm = dir.join("fm");
    fixtures::fashion_mnist(&fm, 40, 20, false).unwrap();
    let set = dir.join("pasted");
    let o = netaug()
        .args([
            "data", "pasted", "--train", "16", "--val", "6", "--canvas", "64",
        ])
        .args(["--sides", "20", "36", "--root"])
        .arg(&fm)
        .arg("--out")
        .arg(&set)
        .output()
        .unwrap();
    assert_ok(&o, "data pasted");
    let config = dir.join("det.yaml");
    std::fs::write(
        &config,
        format!(
            "data: {{dataset: coco, root: {}, image_size: 64, batch_size: 8}}
model: {{name: tinymbv2}}
run: {{epochs: 1, warmup_epochs: 0}}
detection: {{score_threshold: 0.0}}
",
            set.display()
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let o = train(&config, &run, &[]);
    assert_ok(&o, "train");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("final val mAP50"), "{stdout}");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["status"], "done");
    assert!(summary.get("final_val_top1").is_none(), "{summary}");
    let map50 = summary["final_val_map50"].as_f64().unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    assert!(metrics.contains("\"val_map50\""));

    // detect on the run's evaluation split, scored by det-eval: the run's own number.
    let dets = dir.join("dets.json");
    let o = netaug()
        .args(["detect", "--quiet", "--checkpoint"])
        .arg(&run)
        .arg("--out")
        .arg(&dets)
        .output()
        .unwrap();
    assert_ok(&o, "detect");
    let list = json(&dets);
    let list = list.as_array().unwrap();
    assert!(!list.is_empty());
    for d in list {
        let c = d["category_id"].as_u64().unwrap();
        let id = d["image_id"].as_u64().unwrap();
        assert!((1..=10).contains(&c) && (1..=6).contains(&id), "{d}");
        assert_eq!(d["bbox"].as_array().unwrap().len(), 4);
    }
    let gt = set.join("annotations/instances_val.json");
    let o = netaug()
        .args(["det-eval", "--format", "coco", "--json", "--gt"])
        .arg(&gt)
        .arg("--dt")
        .arg(&dets)
        .output()
        .unwrap();
    assert_ok(&o, "det-eval");
    let stats: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ap50 = stats["AP50"].as_f64().unwrap().max(0.0);
    assert!((100.0 * ap50 - map50).abs() < 1e-6, "{ap50} vs {map50}");

    // eval of the run's detector: the same number.
    let o = netaug()
        .args(["eval", "--json", "--checkpoint"])
        .arg(&run)
        .output()
        .unwrap();
    assert_ok(&o, "eval");
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((e["map50"].as_f64().unwrap() - map50).abs() < 1e-6, "{e}");

    // A detector is not exported as ONNX: one line, exit 2, nothing written.
    let o = export(&["--format", "onnx"], &run, &dir.join("det.onnx"));
    let err = assert_exit(&o, 2, "a detector as ONNX");
    assert!(err.contains("is a detector"), "{err}");
    assert!(!dir.join("det.onnx").exists());

    // export writes a detector that detect reads from a plain folder of images.
    let tiny = dir.join("tiny");
    let o = export(&[], &run, &tiny);
    assert_ok(&o, "export");
    assert!(String::from_utf8_lossy(&o.stdout).contains("detector"));
    // `detect` of a saved detector on the val images of the set, into `out`.
    let detect_images = |checkpoint: &Path, out: &Path| {
        netaug()
            .args([
                "detect",
                "--quiet",
                "--image-size",
                "64",
                "--score-threshold",
                "0",
            ])
            .arg("--checkpoint")
            .arg(checkpoint)
            .arg("--images")
            .arg(set.join("val"))
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let o = detect_images(&tiny, &dir.join("folder.json"));
    assert_ok(&o, "detect --images");
    // Image ids from the file names (000001.png -> 1), the same detections.
    let same = json(&dir.join("folder.json")) == json(&dets);
    assert!(same, "detect --images differs from detect on the split");
    // Out of its run, the exported detector exports again (a folder `detect` reads) ...
    let again = dir.join("again");
    let o = export(&["--resolution", "64"], &tiny, &again);
    assert_ok(&o, "export of an exported detector");
    assert!(String::from_utf8_lossy(&o.stdout).contains("detector"));
    // (The same net: the same detections.)
    let o = detect_images(&again, &dir.join("again.json"));
    assert_ok(&o, "detect with the re-exported detector");
    assert!(json(&dir.join("again.json")) == json(&dir.join("folder.json")));
    // ... and is named for what it is by ONNX export and eval.
    fixtures::folder(&dir.join("fo"), &["a", "b"], 1, 1).unwrap();
    for args in [
        vec![
            "export",
            "--format",
            "onnx",
            "--out",
            "x.onnx",
            "--checkpoint",
        ],
        vec![
            "eval",
            "--dataset",
            "folder",
            "--root",
            "fo",
            "--checkpoint",
        ],
    ] {
        let o = netaug()
            .current_dir(&dir)
            .args(&args)
            .arg(&tiny)
            .output()
            .unwrap();
        let err = assert_exit(&o, 2, &format!("{args:?}"));
        assert!(
            err.contains("is a detector, not a classifier"),
            "{args:?}: {err}"
        );
    }

    // Bad input: a folder without images, a checkpoint that is not a detector.
    let o = netaug()
        .args(["detect", "--checkpoint"])
        .arg(&tiny)
        .arg("--images")
        .arg(&fm)
        .arg("--out")
        .arg(dir.join("x.json"))
        .output()
        .unwrap();
    let err = assert_exit(&o, 2, "a folder without images");
    assert!(err.contains("no .jpg, .jpeg or .png"), "{err}");

    // report: the detection table and the mAP-vs-resolution figure.
    let o = netaug().arg("report").arg(&run).output().unwrap();
    assert_ok(&o, "report");
    let table = std::fs::read_to_string(run.join("tables/coco.md")).unwrap();
    assert!(table.contains("final validation mAP50"), "{table}");
    assert!(table.contains("baseline mAP50 (%)"), "{table}");
    assert!(run.join("plots/coco-map50-vs-resolution.png").is_file());
    assert!(run.join("plots/coco-tinymbv2-val-map50.svg").is_file());
    let csv = std::fs::read_to_string(run.join("tables/coco.csv")).unwrap();
    assert!(
        csv.starts_with("dataset,model,resolution,setting,params,macs,method,mean_map50"),
        "{csv}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
