//! A short run's curves: `steps.jsonl` at the log interval, and the TensorBoard files
//! read back by TensorBoard's own reader (`tools/tb_read.py`, EventAccumulator) equal to
//! `metrics.jsonl` and `steps.jsonl`. `make test` sets `NETAUG_TB_PYTHON` to a venv with
//! the `tensorboard` package; without it the reader part says SKIPPED, and under CI=true it
//! fails.

use std::path::Path;

mod common;

use common::{assert_ok, setup, train};
use serde_json::Value;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `v` as TensorBoard stores scalars: float32. (Comparing as float32 also absorbs the
/// last-bit error of serde_json's default float parsing of the reader's JSON.)
fn f32_of(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

#[test]
fn tensorboard_reads_the_runs_scalars_equal_to_its_metrics_and_steps() {
    // 64 images, batch 16: 4 steps an epoch (1 + 2 epochs), a step line every 2.
    let section = "netaug: {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8], bn_recal_images: 32}";
    let (dir, config) = setup("tensorboard", 64, section);
    let run = dir.join("run");
    let out = train(&config, &run, &["--quiet"]);
    assert_ok(&out, "netaug train");

    let metrics = lines(&run.join("metrics.jsonl"));
    let steps = lines(&run.join("steps.jsonl"));
    let at: Vec<(u64, u64)> = steps
        .iter()
        .map(|s| (s["step"].as_u64().unwrap(), s["epoch"].as_u64().unwrap()))
        .collect();
    assert_eq!(at, [(2, 1), (4, 1), (6, 2), (8, 2), (10, 3), (12, 3)]);
    // Two windows of equal size per epoch: their mean is the epoch's training loss.
    for (e, m) in metrics.iter().enumerate() {
        let w = &steps[2 * e..2 * e + 2];
        let mean =
            (w[0]["train_loss"].as_f64().unwrap() + w[1]["train_loss"].as_f64().unwrap()) / 2.0;
        let loss = m["train_loss"].as_f64().unwrap();
        assert!(
            (mean - loss).abs() <= 1e-9 * loss.abs(),
            "epoch {}: {mean} vs {loss}",
            e + 1
        );
    }
    // The lr of the last step of an epoch is the epoch line's.
    for (e, m) in metrics.iter().enumerate() {
        assert_eq!(steps[2 * e + 1]["lr"], m["lr"], "epoch {}", e + 1);
    }

    let Some(python) = std::env::var_os("NETAUG_TB_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "NETAUG_TB_PYTHON is not set under CI: run the tests through `make test`"
        );
        eprintln!(
            "\n*** SKIPPED: NETAUG_TB_PYTHON is not set (`make test` sets it to a venv with tensorboard) ***\n"
        );
        return;
    };
    let reader = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/tb_read.py");
    let out = std::process::Command::new(&python)
        .arg(&reader)
        .arg(run.join("tb"))
        .output()
        .unwrap();
    assert_ok(&out, "tools/tb_read.py");
    let tb: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scalars = tb["scalars"].as_object().unwrap();

    // Every number of every epoch line, at its epoch, exactly (as float32).
    let mut epoch_tags = 0;
    for key in metrics[0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "epoch")
    {
        let events = scalars[&format!("epoch/{key}")].as_array().unwrap();
        assert_eq!(events.len(), metrics.len(), "epoch/{key}");
        for (m, e) in metrics.iter().zip(events) {
            assert_eq!(e[0], m["epoch"], "epoch/{key}");
            assert_eq!(f32_of(&e[1]), f32_of(&m[key]), "epoch/{key}");
        }
        epoch_tags += 1;
    }
    assert_eq!(epoch_tags, 8, "{:?}", scalars.keys());
    // Every step line, at its global step, with its wall time.
    for key in ["train_loss", "lr", "images_per_second"] {
        let events = scalars[&format!("step/{key}")].as_array().unwrap();
        assert_eq!(events.len(), steps.len(), "step/{key}");
        for (s, e) in steps.iter().zip(events) {
            assert_eq!(e[0], s["step"], "step/{key}");
            assert_eq!(f32_of(&e[1]), f32_of(&s[key]), "step/{key}");
            let wall = s["wall_time"].as_f64().unwrap();
            assert!(
                (e[2].as_f64().unwrap() - wall).abs() < 1e-6,
                "step/{key} wall time"
            );
        }
    }
    assert_eq!(scalars.len(), 8 + 3, "{:?}", scalars.keys());
    // The config as text, at step 0.
    let config_text = &tb["texts"]["config"][0];
    assert_eq!(config_text[0], 0);
    let text = config_text[1].as_str().unwrap();
    assert!(
        text.contains("name: tinymbv2") && text.contains("log_every: 2"),
        "{text}"
    );
}
