//! `netaug profile` end to end.

mod common;

use common::netaug;
use predicates::prelude::*;

#[test]
fn json_output_is_one_object_with_raw_counts() {
    let out = netaug()
        .args([
            "profile",
            "--model",
            "tinymbv2",
            "--resolution",
            "144",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "tinymbv2");
    assert_eq!(v["resolution"], 144);
    assert_eq!(v["classes"], 1000);
    let params = v["params"].as_u64().unwrap();
    let macs = v["macs"].as_u64().unwrap();
    assert_eq!((params as f64 / 1e4).round() / 100.0, 0.75);
    assert_eq!((macs as f64 / 1e5).round() / 10.0, 23.5);
    // int8 deployment memory: above the weights and below a MiB for the tiny net.
    let flash = v["flash_bytes"].as_u64().unwrap();
    let sram = v["peak_sram_bytes"].as_u64().unwrap();
    assert!(flash > params / 2 && flash < 1 << 20, "{flash}");
    assert!(sram >= 3 * 144 * 144, "{sram}");
    assert_eq!(v.as_object().unwrap().len(), 7);
}

#[test]
fn memory_of_the_seven_nets_and_per_layer() {
    for (model, r) in [
        ("tinymbv2", 144),
        ("mbv2-0.35", 160),
        ("proxylessnas-0.35", 160),
        ("mcunet", 176),
        ("mbv3-0.35", 160),
        ("mbv2-1.0", 224),
        ("resnet50", 224),
    ] {
        let out = netaug()
            .args(["profile", "--json", "--layers", "--model", model])
            .args(["--resolution", &r.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{model}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = v["layers"].as_array().unwrap();
        let flash: u64 = layers
            .iter()
            .map(|l| l["flash_bytes"].as_u64().unwrap())
            .sum();
        let peak = layers
            .iter()
            .map(|l| l["sram_bytes"].as_u64().unwrap())
            .max()
            .unwrap();
        assert_eq!(v["flash_bytes"].as_u64(), Some(flash), "{model}");
        assert_eq!(v["peak_sram_bytes"].as_u64(), Some(peak), "{model}");
        // The first layer holds at least the input image and the stem's output.
        assert!(layers[0]["sram_bytes"].as_u64().unwrap() > (3 * r * r) as u64);
    }
}

#[test]
fn classes_change_the_classifier() {
    let run = |classes: &str| -> u64 {
        let out = netaug()
            .args([
                "profile",
                "--model",
                "mcunet",
                "--resolution",
                "32",
                "--json",
            ])
            .args(["--classes", classes])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["params"].as_u64().unwrap()
    };
    // The classifier is 160 -> classes with bias.
    assert_eq!(run("1000") - run("10"), 990 * 161);
}

#[test]
fn text_output_names_the_model() {
    netaug()
        .args(["profile", "--model", "mbv2-0.35", "--resolution", "160"])
        .assert()
        .success()
        .stdout(predicate::str::contains("mbv2-0.35").and(predicate::str::contains("30.9M")));
}

#[test]
fn unknown_model_exits_2_and_lists_the_zoo() {
    netaug()
        .args(["profile", "--model", "vgg16"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("vgg16")
                .and(predicate::str::contains("tinymbv2"))
                .and(predicate::str::contains("resnet50")),
        );
}

#[test]
fn bad_values_exit_2() {
    netaug()
        .args(["profile", "--model", "mbv2-x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mbv2-x"));
    netaug()
        .args(["profile", "--model", "mcunet", "--resolution", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--resolution"));
    netaug()
        .args(["profile", "--model", "mcunet", "--classes", "0"])
        .assert()
        .code(2);
    // clap's own usage errors also exit 2.
    netaug().args(["profile"]).assert().code(2);
}

#[test]
fn detector_profile_is_the_detector_of_the_library() {
    let out = netaug()
        .args(["profile", "--model", "mcunet", "--resolution", "160"])
        .args(["--classes", "20", "--detector", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["detector"], true);
    let spec = netaug_model::zoo::spec("mcunet", 20, 3).unwrap();
    let det = netaug_model::Detector::new(
        &spec,
        &netaug_model::AugFactors::none(),
        20,
        3,
        netaug_model::InitKind::HeFout,
        0,
        &burn::tensor::Device::flex(),
    );
    let p = det.profile(160);
    assert_eq!(v["params"].as_u64(), Some(p.params));
    assert_eq!(v["macs"].as_u64(), Some(p.macs));
}

#[test]
fn spec_output_is_the_zoo_description() {
    let out = netaug()
        .args([
            "profile",
            "--model",
            "tinymbv2",
            "--classes",
            "10",
            "--spec",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let spec: netaug_model::NetSpec = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec, netaug_model::zoo::spec("tinymbv2", 10, 3).unwrap());
}

#[test]
fn arches_are_the_supernets_sub_networks_in_the_bench_order() {
    use burn::tensor::Device;
    use netaug_model::{Active, ActiveArch, AugFactors, InitKind, Net, zoo};
    let out = netaug()
        .args(["profile", "--model", "mbv2-0.35", "--arches", "5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arch = |v: &serde_json::Value| serde_json::from_value::<ActiveArch>(v.clone()).unwrap();
    let spec = zoo::spec("mbv2-0.35", 1000, 3).unwrap();
    let (e, w) = zoo::paper_factors(&spec.name);
    let net = Net::new(
        &spec,
        &AugFactors::new(e, w).unwrap(),
        InitKind::HeFout,
        0,
        &Device::flex(),
    );
    assert_eq!(arch(&v["min"]), net.sample(Active::Min));
    assert_eq!(arch(&v["max"]), net.sample(Active::Max));
    // The draws of `netaug bench train --netaug`, from its generator, in its order.
    let mut rng = netaug_trainer::bench::arch_rng();
    let sampled = v["sampled"].as_array().unwrap();
    assert_eq!(sampled.len(), 5);
    for s in sampled {
        assert_eq!(arch(s), net.sample(Active::Random(&mut rng)));
    }
    assert_ne!(sampled[0], sampled[1], "one draw per step");
    assert_eq!(arch(&v["min"]).stem, spec.stem.out);
}
