//! `netaug bench train` and `netaug bench report` end to end.

mod common;

use std::path::PathBuf;

use common::{assert_exit, assert_ok, netaug, temp};

fn probe() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/probe.json")
}

fn bench_train(args: &[&str]) -> std::process::Output {
    netaug()
        .args([
            "bench", "train", "--batch", "2", "--steps", "1", "--warmup", "1",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn train_both_prints_both_rates_and_the_cost() {
    let out = bench_train(&[
        "--model",
        "tinymbv2",
        "--resolution",
        "16",
        "--classes",
        "5",
        "--both",
        "--json",
    ]);
    assert_ok(&out, "bench train");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "tinymbv2");
    let base = v["baseline"]["images_per_second"].as_f64().unwrap();
    let aug = v["netaug"]["images_per_second"].as_f64().unwrap();
    assert!(base > 0.0 && aug > 0.0);
    let cost = v["netaug_cost"].as_f64().unwrap();
    assert!((cost - base / aug).abs() < 1e-9 * cost);
}

#[test]
fn train_builds_a_spec_file() {
    let out = bench_train(&["--resolution", "16", "--json", "--spec"]);
    assert!(!out.status.success(), "--spec needs a file");
    let out = netaug()
        .args([
            "bench", "train", "--batch", "2", "--steps", "1", "--warmup", "0",
        ])
        .args(["--resolution", "16", "--json", "--spec"])
        .arg(probe())
        .output()
        .unwrap();
    assert_ok(&out, "bench train --spec");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "probe");
    assert!(v["images_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn train_refuses_a_bad_spec_with_exit_2() {
    let dir = temp("bench-spec");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"name\": \"x\"}").unwrap();
    let refused = |needle: &str| {
        let out = netaug()
            .args(["bench", "train", "--steps", "1", "--spec"])
            .arg(&bad)
            .output()
            .unwrap();
        let err = assert_exit(&out, 2, needle);
        assert!(err.contains(needle), "{err}");
    };
    refused("bad.json");
    // A description that parses but cannot be built is refused too.
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(probe()).unwrap()).unwrap();
    spec["blocks"][0]["kernel"] = 4.into();
    std::fs::write(&bad, spec.to_string()).unwrap();
    refused("--spec");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn report_times_synthetic_runs() {
    let out = netaug()
        .args([
            "bench", "report", "--runs", "10", "--epochs", "2", "--repeat", "1", "--json",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "bench report");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"], 10);
}

#[test]
fn train_refuses_a_resolution_no_allocation_can_hold() {
    // Was an abort (exit 134) in a failed allocation.
    let out = bench_train(&["--resolution", "100000"]);
    let err = common::assert_exit(&out, 2, "--resolution 100000");
    assert!(
        err.contains("--resolution: 100000 is above 2048 pixels"),
        "{err}"
    );
}
