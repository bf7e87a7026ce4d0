//! Where a method pays off: its gain over the baseline (paired by seed: same setting,
//! same seed) against the training budget, the images a run trains on (training images
//! per epoch x epochs, warm-up included). One line per model (and per whatever else of the
//! setting is fixed), the seeds' range of the paired gains as the band.

use std::collections::BTreeMap;
use std::fmt::Write;

use polars::prelude::*;

use crate::curve::Curve;
use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings, uints};
use crate::settings;
use crate::table::Metric;

/// The method every other one is measured against.
const BASELINE: &str = "baseline";

/// One point of a budget line: the paired gains of one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Training images per epoch.
    pub train_images: i64,
    /// Epochs, warm-up included.
    pub epochs: i64,
    /// Method minus baseline, one per seed that both finished (points).
    pub gains: Vec<f64>,
    /// Runs of the method at this budget that did not finish (diverged, killed): they
    /// have no gain, and the table says how many.
    pub failed: usize,
}

impl Point {
    /// Images trained on.
    pub fn images_seen(&self) -> i64 {
        self.train_images * self.epochs
    }

    fn mean(&self) -> f64 {
        self.gains.iter().sum::<f64>() / self.gains.len().max(1) as f64
    }

    fn min(&self) -> f64 {
        self.gains.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.gains.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
}

/// One line: a model (at a resolution, in a setting without its budget keys) over budgets.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Model.
    pub model: String,
    /// Resolution.
    pub resolution: i64,
    /// The setting's keys other than the budget's.
    pub rest: String,
    /// Points, by images seen.
    pub points: Vec<Point>,
}

impl Line {
    /// The line's name in a legend.
    pub fn label(&self) -> String {
        settings::label(&self.model, &self.rest)
    }

    /// The line as a curve over thousands of images seen: mean gain, band min..max
    /// (budgets where no run of the method finished are left out).
    pub fn curve(&self) -> Curve {
        let mut c = Curve::default();
        for p in self.points.iter().filter(|p| !p.gains.is_empty()) {
            c.x.push((p.images_seen() as f64 / 1000.0).round() as i64);
            c.mean.push(p.mean());
            c.min.push(p.min());
            c.max.push(p.max());
        }
        c
    }
}

/// The budget study of one dataset and method.
#[derive(Clone, Debug, PartialEq)]
pub struct Study {
    /// Dataset.
    pub dataset: String,
    /// Method (not the baseline).
    pub method: String,
    /// What the gains are of.
    pub metric: Metric,
    /// Lines.
    pub lines: Vec<Line>,
}

/// The studies the finished runs of `summary` hold: for each dataset and method with a
/// line (model, setting) at two or more budgets where both the method and the baseline
/// ran, every line of it, one-budget lines too (a large net that only the smallest
/// budget fits is still a point beside the tiny nets' lines).
pub fn studies(summary: &DataFrame, metric: Metric) -> Result<Vec<Study>, AnalysisError> {
    let s = |n: &str| strings(summary, n);
    let (dataset, model, setting) = (s("dataset")?, s("model")?, s("setting")?);
    let (method, status) = (s("method")?, s("status")?);
    let i = |n: &str| ints(summary, n);
    let (resolution, epochs) = (i("resolution")?, i("epochs")?);
    let seed = uints(summary, "seed")?;
    let images = floats(summary, "train_images")?;
    // Runs without the metric (the other task's) are not this study's.
    let value: Vec<Option<f64>> = floats(summary, metric.column())?
        .into_iter()
        .map(|v| v.filter(|v| !v.is_nan()))
        .collect();
    let done = |k: usize| status[k] == "done";

    let run_key = |k: usize| {
        (
            dataset[k].clone(),
            model[k].clone(),
            resolution[k],
            setting[k].clone(),
            seed[k],
        )
    };
    let mut baseline = BTreeMap::new();
    for k in (0..summary.height()).filter(|&k| method[k] == BASELINE && done(k)) {
        if let Some(v) = value[k] {
            baseline.insert(run_key(k), v);
        }
    }
    // (dataset, method, model, resolution, setting without budget keys).
    type LineKey = (String, String, String, i64, String);
    // (images seen, images per epoch) -> (gains, failed runs).
    type Budgets = BTreeMap<(i64, i64), (Vec<f64>, usize)>;
    let mut grouped: BTreeMap<LineKey, Budgets> = BTreeMap::new();
    for k in (0..summary.height()).filter(|&k| method[k] != BASELINE) {
        let (Some(v), Some(n)) = (value[k], images[k]) else {
            continue;
        };
        // A finished run counts with its seed's baseline; one that did not finish counts
        // as failed where it would have been.
        let paired = baseline.get(&run_key(k));
        if done(k) && paired.is_none() {
            continue;
        }
        let line = (
            dataset[k].clone(),
            method[k].clone(),
            model[k].clone(),
            resolution[k],
            settings::without_budget(&setting[k]),
        );
        let point = grouped
            .entry(line)
            .or_default()
            .entry((n as i64 * epochs[k], n as i64))
            .or_default();
        match paired.filter(|_| done(k)) {
            Some(b) => point.0.push(v - b),
            None => point.1 += 1,
        }
    }
    let mut out: BTreeMap<(String, String), Study> = BTreeMap::new();
    let has_budgets = |d: &str, m: &str| {
        grouped
            .iter()
            .any(|((gd, gm, ..), points)| gd == d && gm == m && points.len() >= 2)
    };
    let studied: Vec<bool> = grouped.keys().map(|(d, m, ..)| has_budgets(d, m)).collect();
    for (((dataset, method, model, resolution, rest), points), studied) in
        grouped.into_iter().zip(studied)
    {
        if !studied {
            continue;
        }
        let points = points
            .into_iter()
            .map(|((seen, n), (gains, failed))| Point {
                train_images: n,
                epochs: seen / n.max(1),
                gains,
                failed,
            })
            .collect();
        out.entry((dataset.clone(), method.clone()))
            .or_insert_with(|| Study {
                dataset,
                method,
                metric,
                lines: Vec::new(),
            })
            .lines
            .push(Line {
                model,
                resolution,
                rest,
                points,
            });
    }
    Ok(out.into_values().collect())
}

impl Study {
    /// The figure's and files' name.
    pub fn stem(&self) -> String {
        format!(
            "{}-{}-gain-vs-budget",
            self.dataset,
            settings::slug(&self.method)
        )
    }

    /// The study as Markdown: one row per line and budget.
    pub fn markdown(&self) -> String {
        let label = format!("{} {}", self.metric.split(), self.metric.label());
        let mut md = format!(
            "| model | resolution | images per epoch | epochs | images seen | {m} − baseline {label} (points, mean) | min | max | seeds | {m} runs failed |\n|---|---|---|---|---|---|---|---|---|---|\n",
            m = self.method
        );
        let num = |p: &Point, v: f64| {
            if p.gains.is_empty() {
                "–".to_string()
            } else {
                format!("{v:+.2}")
            }
        };
        for l in &self.lines {
            for p in &l.points {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    l.label(),
                    l.resolution,
                    p.train_images,
                    p.epochs,
                    p.images_seen(),
                    num(p, p.mean()),
                    num(p, p.min()),
                    num(p, p.max()),
                    p.gains.len(),
                    p.failed
                );
            }
        }
        md
    }

    /// The study as CSV, one line per line and budget.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "dataset,method,model,resolution,rest,train_images,epochs,images_seen,mean_gain,min_gain,max_gain,seeds,failed\n",
        );
        for l in &self.lines {
            for p in &l.points {
                let num = |v: f64| {
                    if p.gains.is_empty() {
                        String::new()
                    } else {
                        format!("{v:.4}")
                    }
                };
                let _ = writeln!(
                    out,
                    "{},\"{}\",{},{},\"{}\",{},{},{},{},{},{},{},{}",
                    self.dataset,
                    self.method,
                    l.model,
                    l.resolution,
                    l.rest,
                    p.train_images,
                    p.epochs,
                    p.images_seen(),
                    num(p.mean()),
                    num(p.min()),
                    num(p.max()),
                    p.gains.len(),
                    p.failed
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    /// The budget study's table of a report.
    fn study_table(r: &crate::Report) -> &String {
        r.tables
            .iter()
            .find(|t| t.contains("against training budget"))
            .expect("a budget table")
    }

    /// A finished run of model `tiny` with its config: `epochs` after one warm-up epoch,
    /// NetAug on or off.
    fn run(dir: &Path, epochs: usize, netaug: bool, seed: u64, lr: f64, top1: f64) {
        run_of(dir, "tiny", epochs, netaug, seed, lr, top1);
    }

    /// A finished run of `model` (as [`run`]).
    fn run_of(dir: &Path, model: &str, epochs: usize, netaug: bool, seed: u64, lr: f64, top1: f64) {
        let method = if netaug { "netaug" } else { "baseline" };
        let id = format!("{model}-{method}-e{epochs}-lr{lr}-s{seed}");
        let run = dir.join("runs").join(&id);
        std::fs::create_dir_all(&run).unwrap();
        let aug = if netaug {
            "netaug:\n  alpha: 1.0\n  stop_aug_w_epoch: 1\n"
        } else {
            ""
        };
        let config = format!(
            "data:\n  dataset: d\n  train_subset: 500\nrun:\n  epochs: {epochs}\n  warmup_epochs: 1\n  base_lr: {lr}\n  seed: {seed}\n{aug}"
        );
        std::fs::write(run.join("config.yaml"), config).unwrap();
        let summary = json!({
            "run_id": id, "dataset": "d", "model": model, "resolution": 32, "method": method,
            "epochs": epochs + 1, "seed": seed, "device": "cpu", "params": 10, "macs": 100,
            "best_val_top1": top1, "best_epoch": 1, "final_val_top1": top1,
            "final_val_top5": 99.0, "wall_seconds": 1.0, "images_per_second": 1.0,
            "status": "done", "error": null
        });
        std::fs::write(run.join("summary.json"), summary.to_string()).unwrap();
        let line = json!({"epoch": 1, "train_loss": 1.0, "train_top1": top1, "val_loss": 1.0,
            "val_top1": top1, "val_top5": 99.0});
        std::fs::write(run.join("metrics.jsonl"), format!("{line}\n")).unwrap();
    }

    #[test]
    fn budgets_are_rows_of_their_own_and_gains_pair_seeds() {
        let dir = std::env::temp_dir().join(format!("netaug-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Two budgets (3 + 1 and 7 + 1 epochs of 500 images), two seeds; NetAug behind
        // by 10 and 12 points at the small budget and ahead by 1 and 3 at the large one.
        for (epochs, gains) in [(3, [-10.0, -12.0]), (7, [1.0, 3.0])] {
            for seed in 0..2 {
                let base = 60.0 + epochs as f64 + seed as f64;
                run(&dir, epochs, false, seed, 0.1, base);
                run(&dir, epochs, true, seed, 0.1, base + gains[seed as usize]);
            }
        }
        // A third NetAug seed at the large budget diverged: counted, not averaged.
        run(&dir, 7, true, 2, 0.1, 10.0);
        let failed = dir.join("runs/tiny-netaug-e7-lr0.1-s2/summary.json");
        let text = std::fs::read_to_string(&failed).unwrap();
        std::fs::write(&failed, text.replace("\"done\"", "\"failed\"")).unwrap();
        let r = crate::report(&dir, None).unwrap();
        let table = &r.tables[0];
        // Never pooled across budgets: every cell holds its two seeds.
        assert_eq!(table.matches("(n=2)").count(), 3, "{table}");
        assert_eq!(table.matches("(n=2, 1 failed)").count(), 1, "{table}");
        assert!(table.contains("| run.epochs |"), "{table}");
        assert!(
            table.contains("| -11.00 |") && table.contains("| +2.00 |"),
            "{table}"
        );
        let study = &r.tables[1];
        assert!(
            study.contains("| tiny | 32 | 500 | 4 | 2000 | -11.00 | -12.00 | -10.00 | 2 | 0 |"),
            "{study}"
        );
        assert!(
            study.contains("| tiny | 32 | 500 | 8 | 4000 | +2.00 | +1.00 | +3.00 | 2 | 1 |"),
            "{study}"
        );
        for ext in ["png", "svg"] {
            let figure = dir.join(format!("plots/d-netaug-gain-vs-budget.{ext}"));
            assert!(figure.is_file(), "{}", figure.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_net_run_at_one_budget_joins_a_study_that_other_nets_span() {
        let dir = std::env::temp_dir().join(format!("netaug-one-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for seed in 0..2 {
            for epochs in [3, 7] {
                run(&dir, epochs, false, seed, 0.1, 60.0);
                run(&dir, epochs, true, seed, 0.1, 61.0);
            }
            // The large net only at the small budget, NetAug 20 points behind.
            run_of(&dir, "large", 3, false, seed, 0.1, 70.0);
            run_of(&dir, "large", 3, true, seed, 0.1, 50.0);
        }
        let r = crate::report(&dir, None).unwrap();
        let study = study_table(&r);
        assert!(
            study.contains("| large | 32 | 500 | 4 | 2000 | -20.00 | -20.00 | -20.00 | 2 | 0 |"),
            "{study}"
        );
        assert!(
            study.contains("| tiny | 32 | 500 | 8 | 4000 | +1.00 |"),
            "{study}"
        );
        let _ = std::fs::remove_dir_all(&dir);

        // Only the one-budget net: no study.
        let dir = std::env::temp_dir().join(format!("netaug-only-one-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for seed in 0..2 {
            run_of(&dir, "large", 3, false, seed, 0.1, 70.0);
            run_of(&dir, "large", 3, true, seed, 0.1, 50.0);
        }
        let r = crate::report(&dir, None).unwrap();
        assert!(
            !r.tables
                .iter()
                .any(|t| t.contains("against training budget"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_learning_rate_sweep_is_not_averaged_as_seeds() {
        let dir = std::env::temp_dir().join(format!("netaug-lr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (lr, top1) in [(0.05, 50.0), (0.1, 70.0)] {
            for seed in 0..2 {
                run(&dir, 3, false, seed, lr, top1);
            }
        }
        let r = crate::report(&dir, None).unwrap();
        let table = r
            .tables
            .iter()
            .find(|t| t.starts_with("# d: final validation"))
            .unwrap();
        assert!(!table.contains("(n=4)"), "{table}");
        assert!(table.contains("| run.base_lr |"), "{table}");
        assert!(
            table.contains("50.00 ± 0.00 (n=2)") && table.contains("70.00 ± 0.00 (n=2)"),
            "{table}"
        );
        // The rate grid: a choice table; one budget only: no budget study.
        assert_eq!(r.tables.len(), 2);
        assert!(
            r.tables[0].contains("| baseline | 0.1 (edge) | 0.05, 0.1 | 0 1 |"),
            "{}",
            r.tables[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_a_test_set_the_gains_are_test_gains_at_each_methods_chosen_rate() {
        let dir = std::env::temp_dir().join(format!("netaug-test-gain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // (netaug, lr, validation top-1, test top-1): NetAug is 2 points ahead on
        // validation and 1 behind on test at the chosen rates; the other rates' test is
        // 99, which no gain may show.
        let rates = [
            (false, 0.05, 70.0, 69.0),
            (false, 0.1, 60.0, 99.0),
            (true, 0.0125, 72.0, 68.0),
            (true, 0.025, 65.0, 99.0),
        ];
        for epochs in [1, 3] {
            for seed in 0..2 {
                for (netaug, lr, val, test) in rates {
                    let method = if netaug { "netaug" } else { "baseline" };
                    run(&dir, epochs, netaug, seed, lr, val);
                    let path = dir.join(format!(
                        "runs/tiny-{method}-e{epochs}-lr{lr}-s{seed}/summary.json"
                    ));
                    let mut summary: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                    summary["final_test_top1"] = json!(test);
                    std::fs::write(&path, summary.to_string()).unwrap();
                }
            }
        }
        let r = crate::report(&dir, None).unwrap();
        let study = study_table(&r);
        assert!(study.contains("final test top-1"), "{study}");
        assert!(study.contains("| -1.00 | -1.00 | -1.00 | 2 |"), "{study}");
        assert!(!study.contains("+30") && !study.contains("-28"), "{study}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
