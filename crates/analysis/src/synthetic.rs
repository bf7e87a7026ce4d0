//! Synthetic results folders in the trainer's file format (`runs/<id>/summary.json`,
//! `metrics.jsonl`), for the report benchmark and for tests: several models, baseline and
//! NetAug, many seeds, deterministic plausible numbers.

use std::path::Path;

use serde_json::json;

use crate::error::AnalysisError;

/// Models of the synthetic runs: (name, params, MACs, resolution).
const MODELS: [(&str, u64, u64, u64); 5] = [
    ("tinymbv2", 750_000, 23_500_000, 144),
    ("mbv2-0.35", 1_700_000, 30_900_000, 160),
    ("proxylessnas-0.35", 1_800_000, 35_700_000, 160),
    ("mcunet", 740_000, 81_800_000, 176),
    ("mbv3-0.35", 2_100_000, 19_500_000, 160),
];
const METHODS: [&str; 2] = ["baseline", "netaug"];

/// Writes `runs` finished runs of `epochs` epochs each into `dir/runs/`.
pub fn write_runs(dir: &Path, runs: usize, epochs: usize) -> Result<(), AnalysisError> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        // xorshift64*: deterministic, dependency-free.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let combos = MODELS.len() * METHODS.len();
    for i in 0..runs {
        let (model, params, macs, resolution) = MODELS[i % MODELS.len()];
        let method = METHODS[(i / MODELS.len()) % METHODS.len()];
        let seed = i / combos;
        let id = format!("{model}-{method}-s{seed}");
        let run = dir.join("runs").join(&id);
        std::fs::create_dir_all(&run).map_err(|e| AnalysisError::write(&run, e))?;
        let ceiling =
            55.0 + (i % MODELS.len()) as f64 * 2.0 + if method == "netaug" { 1.5 } else { 0.0 };
        let mut lines = String::new();
        let mut last = 0.0;
        for e in 1..=epochs {
            let progress = e as f64 / epochs as f64;
            let val = ceiling * (1.0 - (-4.0 * progress).exp()) + noise();
            last = val;
            let row = json!({
                "epoch": e, "train_loss": 3.0 * (1.0 - progress) + 1.0, "train_top1": val - 2.0,
                "val_loss": 2.5 * (1.0 - progress) + 1.2, "val_top1": val, "val_top5": val + 20.0,
                "lr": 0.1 * (1.0 - progress), "seconds": 60.0, "images_per_second": 2000.0
            });
            lines += &row.to_string();
            lines.push('\n');
        }
        let summary = json!({
            "run_id": id, "dataset": "synthetic", "model": model, "resolution": resolution,
            "method": method, "epochs": epochs, "seed": seed, "device": "cpu",
            "params": params, "macs": macs, "best_val_top1": last, "best_epoch": epochs,
            "final_val_top1": last, "final_val_top5": last + 20.0, "wall_seconds": 60.0 * epochs as f64,
            "images_per_second": 2000.0, "status": "done", "error": null
        });
        let write = |name: &str, text: &str| {
            let p = run.join(name);
            std::fs::write(&p, text).map_err(|e| AnalysisError::write(&p, e))
        };
        write("summary.json", &summary.to_string())?;
        write("metrics.jsonl", &lines)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_runs_report_as_a_table_per_dataset() {
        let dir = tempfile::tempdir().unwrap();
        write_runs(dir.path(), 30, 4).unwrap();
        let r = crate::report(dir.path(), None).unwrap();
        assert_eq!(r.runs, 30);
        assert_eq!(r.tables.len(), 1);
        // 5 models x 2 methods x 3 seeds: every cell has n=3, NetAug ahead by about 1.5.
        assert_eq!(r.tables[0].matches("(n=3)").count(), 10, "{}", r.tables[0]);
        // The paper's main figure: five nets at their MACs.
        let svg =
            std::fs::read_to_string(dir.path().join("plots/synthetic-top1-vs-macs.svg")).unwrap();
        for (model, ..) in MODELS {
            assert!(
                svg.contains(&format!(">\n{model}\n<")),
                "{model} not in the legend"
            );
        }
    }
}
