//! Successive halving in a report: the training images a folder's runs spent against
//! what its full grid would have spent, and every trial's validation curve beside the
//! rungs it was compared at.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::choice::without_lr;
use crate::curve::Curve;
use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings};

/// Statuses of runs that successive halving ended before their last epoch.
const EARLY: [&str; 2] = ["stopped", "paused"];

/// What a folder's runs spent, when halving stopped some of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spent {
    /// Training images the runs went through (epochs trained x images per epoch).
    pub images: i64,
    /// What every run trained to its last epoch would have gone through.
    pub full: i64,
    /// Runs stopped (or paused) before their last epoch.
    pub early: usize,
    /// Runs in all.
    pub runs: usize,
}

impl Spent {
    /// One line for the report.
    pub fn line(&self) -> String {
        format!(
            "Successive halving: {} training images spent of the {} the full grid would \
             have spent ({:.1}%); {} of {} runs stopped before their last epoch.",
            thousands(self.images),
            thousands(self.full),
            100.0 * self.images as f64 / self.full.max(1) as f64,
            self.early,
            self.runs
        )
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The images spent by the runs of `summary`, if halving stopped any (else `None`).
pub fn spent(summary: &DataFrame) -> Result<Option<Spent>, AnalysisError> {
    let status = strings(summary, "status")?;
    let early = status
        .iter()
        .filter(|s| EARLY.contains(&s.as_str()))
        .count();
    if early == 0 {
        return Ok(None);
    }
    let (epochs, trained) = (ints(summary, "epochs")?, ints(summary, "epochs_trained")?);
    let per_epoch = floats(summary, "train_images")?;
    let mut out = Spent {
        images: 0,
        full: 0,
        early,
        runs: summary.height(),
    };
    for k in 0..summary.height() {
        let n = per_epoch[k].filter(|v| v.is_finite()).unwrap_or(0.0) as i64;
        out.images += n * trained[k];
        out.full += n * epochs[k];
    }
    Ok(Some(out))
}

/// The rungs of the sweep in `dir` (its `plan.json`), all stages together, ascending.
pub fn rungs(dir: &Path) -> Vec<i64> {
    let Ok(text) = std::fs::read_to_string(dir.join("plan.json")) else {
        return Vec::new();
    };
    let Ok(plan) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut rungs: Vec<i64> = plan["halving"]
        .as_object()
        .into_iter()
        .flat_map(|stages| stages.values())
        .flat_map(|h| h["rungs"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_i64())
        .collect();
    rungs.sort_unstable();
    rungs.dedup();
    rungs
}

/// One trial's validation curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Its learning rate (or other setting), for the legend.
    pub label: String,
    /// Stopped before its last epoch.
    pub stopped: bool,
    /// Validation top-1 per epoch (min = max = mean: one seed).
    pub curve: Curve,
}

/// (dataset, model, method, setting without the rate) -> every trial of it, where halving
/// stopped any run of the folder; figure stems and titles are made from the key.
pub type Trials = BTreeMap<(String, String, String, String), Vec<Trial>>;

/// Every run's validation top-1 per epoch, grouped as the learning-rate choice groups them,
/// for the groups with a run that halving stopped.
pub fn trials(metrics: &DataFrame) -> Result<Trials, AnalysisError> {
    let s = |n: &str| strings(metrics, n);
    let (run, dataset, model) = (s("run_id")?, s("dataset")?, s("model")?);
    let (setting, method, status) = (s("setting")?, s("method")?, s("status")?);
    let epoch = ints(metrics, "epoch")?;
    let val = floats(metrics, "val_top1")?;
    let mut by_run: BTreeMap<&str, (usize, Curve)> = BTreeMap::new();
    for k in 0..metrics.height() {
        let Some(v) = val[k].filter(|v| v.is_finite()) else {
            continue;
        };
        let (_, c) = by_run
            .entry(run[k].as_str())
            .or_insert((k, Curve::default()));
        c.x.push(epoch[k]);
        c.mean.push(v);
        c.min.push(v);
        c.max.push(v);
    }
    let mut out = Trials::new();
    for (_, (k, curve)) in by_run {
        let key = (
            dataset[k].clone(),
            model[k].clone(),
            method[k].clone(),
            without_lr(&setting[k]),
        );
        let label = crate::settings::pairs(&setting[k])
            .into_iter()
            .find(|(key, _)| *key == crate::settings::LR_KEY)
            .map_or_else(|| setting[k].clone(), |(_, v)| format!("lr {v}"));
        out.entry(key).or_default().push(Trial {
            label,
            stopped: EARLY.contains(&status[k].as_str()),
            curve,
        });
    }
    out.retain(|_, ts| ts.iter().any(|t| t.stopped));
    for ts in out.values_mut() {
        ts.sort_by(|a, b| a.label.cmp(&b.label));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_counts_epochs_trained_against_the_full_schedule() {
        let df = df![
            "status" => ["done", "stopped", "stopped"],
            "epochs" => [4i64, 4, 4],
            "epochs_trained" => [4i64, 1, 1],
            "train_images" => [Some(100i64), Some(100), Some(100)],
        ]
        .unwrap();
        let s = spent(&df).unwrap().unwrap();
        assert_eq!((s.images, s.full, s.early, s.runs), (600, 1200, 2, 3));
        assert!(
            s.line().contains("600 training images spent of the 1,200"),
            "{}",
            s.line()
        );
        assert!(s.line().contains("(50.0%)"), "{}", s.line());
        let none = df!["status" => ["done"], "epochs" => [4i64], "epochs_trained" => [4i64],
            "train_images" => [Some(1i64)]]
        .unwrap();
        assert_eq!(spent(&none).unwrap(), None);
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
