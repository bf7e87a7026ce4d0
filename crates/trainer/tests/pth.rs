//! Official NetAug `.pth` checkpoints (written by fixtures/make_official_pth.py from the
//! official model definitions) load into our nets and compute the official logits.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use netaug_model::{Active, AugFactors, InitKind, Mode, Net, zoo};
use netaug_trainer::pth::load_official;
use netaug_trainer::transfer::init_from;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn input(device: &Device) -> Tensor<4> {
    let n = 2 * 3 * 32 * 32;
    let v: Vec<f32> = (0..n).map(|i| (0.37 * i as f64).sin() as f32).collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 32, 32]), device)
}

#[test]
fn official_checkpoints_give_the_official_logits() {
    let device = Device::flex();
    for name in ["tinymbv2", "mcunet", "mbv3-0.35"] {
        let net = load_official(name, &fixture(&format!("{name}.pth")), None, &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let expected: Vec<f32> = expected["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        let got = net
            .forward(input(&device), Mode::Eval)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&expected)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.1, "{name}: degenerate fixture");
        assert!(
            worst <= 1e-4 * scale,
            "{name}: logits differ by {worst} (scale {scale})"
        );
    }
}

#[test]
fn an_official_checkpoint_initializes_a_netaug_run_on_another_dataset() {
    let device = Device::flex();
    let spec = zoo::spec("tinymbv2", 5, 3).unwrap();
    let factors = AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).unwrap();
    let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 2, &device);
    let report = init_from(&mut net, &fixture("tinymbv2.pth"), &device).unwrap();
    assert_eq!(report.fresh_classifier, 2, "{report}");
    // The target net now computes the official features: its pooled features equal the
    // official model's up to the classifier, checked through the head conv output.
    net.set_active(Active::Min);
    let official = load_official("tinymbv2", &fixture("tinymbv2.pth"), None, &device).unwrap();
    let stem = |n: &Net| {
        n.stem
            .forward(input(&device), n.active().stem, Mode::Eval)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    assert_eq!(stem(&net), stem(&official));

    let e = init_from(&mut net, &fixture("mcunet.pth"), &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mcunet.pth"), "{e}");
}
