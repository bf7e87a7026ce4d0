//! Each method at its own learning rate: where a sweep ran a method at two or more rates
//! (`run.base_lr`) in one setting, the rate whose runs have the best mean final
//! *validation* top-1 is chosen, and only at that rate is the *test* top-1 reported,
//! beside the paired (same seed) difference to the baseline at the baseline's own rate.
//! The choice reads validation numbers only: a test number never decides anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use polars::prelude::*;

use crate::curve::Curve;
use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings, uints};
use crate::settings;

pub use crate::settings::LR_KEY;

/// The method every other one is measured against.
const BASELINE: &str = "baseline";

/// The runs of one rate of a choice group.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    /// `run.base_lr`.
    pub lr: f64,
    /// The run group's full setting (with its rate).
    pub setting: String,
    /// Seed -> (final validation top-1, final test top-1 if the run has one).
    pub seeds: BTreeMap<u64, (f64, Option<f64>)>,
    /// Stopped early by successive halving: (epochs its seeds reached, of how many); its
    /// numbers are from then, so it is listed but never chosen.
    pub stopped: Option<(i64, i64)>,
    /// Seeds whose run failed (diverged): a rate with one loses to every rate without.
    pub failed: BTreeSet<u64>,
}

impl Rate {
    /// Mean validation top-1 over `seeds` (all of the rate's when `None`).
    fn val_mean(&self, seeds: Option<&BTreeSet<u64>>) -> f64 {
        let vals: Vec<f64> = self
            .seeds
            .iter()
            .filter(|(s, _)| seeds.is_none_or(|keep| keep.contains(s)))
            .map(|(_, (v, _))| *v)
            .collect();
        vals.iter().sum::<f64>() / vals.len().max(1) as f64
    }

    /// The validation top-1 of each seed as a curve point: mean, min, max.
    fn val_point(&self) -> (f64, f64, f64) {
        let v = self.seeds.values().map(|(v, _)| *v);
        (
            self.val_mean(None),
            v.clone().fold(f64::INFINITY, f64::min),
            v.fold(f64::NEG_INFINITY, f64::max),
        )
    }
}

/// One method's learning-rate choice in one (dataset, model, resolution, setting).
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Dataset.
    pub dataset: String,
    /// Model.
    pub model: String,
    /// Resolution.
    pub resolution: i64,
    /// The setting without the rate.
    pub rest: String,
    /// Method.
    pub method: String,
    /// Every rate it ran at, ascending.
    pub rates: Vec<Rate>,
    /// Index into `rates` of the chosen one.
    pub chosen: usize,
    /// The seeds every rate has: the choice compares rates on these only.
    pub compared_on: BTreeSet<u64>,
    /// Validation top-1 against the rate (x = rate x 10^4), the seeds' range as the band.
    pub curve: Curve,
}

impl Choice {
    /// The chosen rate's runs.
    pub fn at(&self) -> &Rate {
        &self.rates[self.chosen]
    }

    /// Test top-1 at the chosen rate: mean, sample std, seeds (those with a test number).
    pub fn test(&self) -> Option<(f64, f64, usize)> {
        let t: Vec<f64> = self.at().seeds.values().filter_map(|(_, t)| *t).collect();
        mean_std(&t)
    }

    /// Validation top-1 of the rates that trained to the end (a stopped rate's number is
    /// from an earlier epoch).
    fn val_curve(rates: &[Rate]) -> Curve {
        let mut c = Curve::default();
        for r in rates
            .iter()
            .filter(|r| r.stopped.is_none() && !r.seeds.is_empty())
        {
            let (mean, min, max) = r.val_point();
            c.x.push((r.lr * 1e4).round() as i64);
            c.mean.push(mean);
            c.min.push(min);
            c.max.push(max);
        }
        c
    }
}

fn mean_std(v: &[f64]) -> Option<(f64, f64, usize)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some((mean, var.sqrt(), v.len()))
}

/// The learning-rate choices of the finished classification runs of `summary` (columns
/// `base_lr`, `final_val_top1`, `final_test_top1`): one per (dataset, model, resolution,
/// setting without the rate, method) that ran at two or more rates. Rates are compared
/// on the mean validation top-1 of the seeds that all of them finished (a grid searched
/// on one seed and repeated on more at one rate is still compared fairly); ties go to the
/// lower rate.
pub fn choices(summary: &DataFrame) -> Result<Vec<Choice>, AnalysisError> {
    let s = |n: &str| strings(summary, n);
    let (dataset, model, setting) = (s("dataset")?, s("model")?, s("setting")?);
    let (method, status) = (s("method")?, s("status")?);
    let (resolution, seed) = (ints(summary, "resolution")?, uints(summary, "seed")?);
    let (epochs, trained) = (ints(summary, "epochs")?, ints(summary, "epochs_trained")?);
    let lr = floats(summary, "base_lr")?;
    let val = floats(summary, "final_val_top1")?;
    let test = floats(summary, "final_test_top1")?;
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());

    type Key = (String, String, i64, String, String);
    let mut groups: BTreeMap<Key, Vec<Rate>> = BTreeMap::new();
    for k in 0..summary.height() {
        let Some(lr) = finite(lr[k]) else {
            continue;
        };
        // A failed run counts against its rate; a finished or stopped one has a number.
        let (stopped, v) = match (status[k].as_str(), finite(val[k])) {
            ("failed", _) => (None, None),
            ("done", Some(v)) => (None, Some(v)),
            ("stopped", Some(v)) => (Some((trained[k], epochs[k])), Some(v)),
            _ => continue,
        };
        let key = (
            dataset[k].clone(),
            model[k].clone(),
            resolution[k],
            without_lr(&setting[k]),
            method[k].clone(),
        );
        let rates = groups.entry(key).or_default();
        let pos = match rates.iter().position(|r| r.lr == lr) {
            Some(p) => p,
            None => {
                rates.push(Rate {
                    lr,
                    setting: setting[k].clone(),
                    seeds: BTreeMap::new(),
                    stopped: None,
                    failed: BTreeSet::new(),
                });
                rates.len() - 1
            }
        };
        let Some(v) = v else {
            rates[pos].failed.insert(seed[k]);
            continue;
        };
        rates[pos].seeds.insert(seed[k], (v, finite(test[k])));
        if let Some((at, of)) = stopped {
            let s = rates[pos].stopped.get_or_insert((at, of));
            s.0 = s.0.max(at);
        }
    }
    let mut out = Vec::new();
    for ((dataset, model, resolution, rest, method), mut rates) in groups {
        if rates.len() < 2 {
            continue;
        }
        rates.sort_by(|a, b| a.lr.total_cmp(&b.lr));
        // Only rates that trained to the end compete, and of those, a rate with a failed
        // seed only when every rate has one.
        let finished = |r: &Rate| r.stopped.is_none() && !r.seeds.is_empty();
        let clean = rates.iter().any(|r| finished(r) && r.failed.is_empty());
        let competes = |r: &Rate| finished(r) && (r.failed.is_empty() || !clean);
        let Some(first) = rates.iter().position(competes) else {
            continue;
        };
        let mut common: Option<BTreeSet<u64>> = None;
        for r in rates.iter().filter(|r| competes(r)) {
            let seeds: BTreeSet<u64> = r.seeds.keys().copied().collect();
            common = Some(match common {
                None => seeds,
                Some(c) => c.intersection(&seeds).copied().collect(),
            });
        }
        let common = common.unwrap_or_default();
        // No seed that every rate finished: compare each rate on all of its seeds.
        let on = (!common.is_empty()).then_some(&common);
        let mut chosen = first;
        for (i, r) in rates.iter().enumerate() {
            if competes(r) && r.val_mean(on) > rates[chosen].val_mean(on) {
                chosen = i;
            }
        }
        out.push(Choice {
            curve: Choice::val_curve(&rates),
            dataset,
            model,
            resolution,
            rest,
            method,
            rates,
            chosen,
            compared_on: common,
        });
    }
    Ok(out)
}

/// A setting without its learning rate.
pub fn without_lr(setting: &str) -> String {
    settings::pairs(setting)
        .into_iter()
        .filter(|(k, _)| *k != LR_KEY)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows of `summary` that ran at their method's chosen rate, with the rate taken out
/// of their setting (so a method at 0.025 and the baseline at 0.05 share a row, and the
/// budget study pairs them); runs of groups without a rate grid are kept as they are.
pub fn at_chosen(summary: &DataFrame, choices: &[Choice]) -> Result<DataFrame, AnalysisError> {
    let s = |n: &str| strings(summary, n);
    let (dataset, model, setting, method) =
        (s("dataset")?, s("model")?, s("setting")?, s("method")?);
    let resolution = ints(summary, "resolution")?;
    let mut keep = Vec::with_capacity(summary.height());
    let mut settings_out = Vec::with_capacity(summary.height());
    for k in 0..summary.height() {
        let rest = without_lr(&setting[k]);
        let choice = choices.iter().find(|c| {
            c.dataset == dataset[k]
                && c.model == model[k]
                && c.resolution == resolution[k]
                && c.rest == rest
                && c.method == method[k]
        });
        match choice {
            Some(c) => {
                let chosen = c.at().setting == setting[k];
                keep.push(chosen);
                if chosen {
                    settings_out.push(rest);
                }
            }
            None => {
                keep.push(true);
                settings_out.push(setting[k].clone());
            }
        }
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    let mut out = summary.filter(&mask)?;
    out.with_column(Column::new("setting".into(), settings_out))?;
    Ok(out)
}

/// One line of the choice table, computed once and written as markdown or CSV.
struct Line<'a> {
    choice: &'a Choice,
    /// Every rate tried, ascending.
    tried: Vec<String>,
    /// The chosen rate is the lowest or highest tried: the best may lie beyond the grid.
    at_edge: bool,
    /// The seeds the rates were compared on.
    compared_on: String,
    /// Test top-1 at the chosen rate: mean, std.
    test: Option<(f64, f64)>,
    /// Test top-1 minus the baseline's, paired by seed (none for the baseline itself).
    diff: Option<(f64, f64, usize)>,
}

impl<'a> Line<'a> {
    fn new(c: &'a Choice, all: &[&Choice]) -> Self {
        let last = c.rates.len() - 1;
        Line {
            choice: c,
            tried: c
                .rates
                .iter()
                .map(|r| {
                    let mut text = r.lr.to_string();
                    if let Some((at, of)) = r.stopped {
                        text += &format!(" (stopped at epoch {at} of {of})");
                    }
                    if !r.failed.is_empty() {
                        let all = r.failed.len() + r.seeds.len();
                        text += &format!(" ({} of {all} seeds failed)", r.failed.len());
                    }
                    text
                })
                .collect(),
            at_edge: c.chosen == 0 || c.chosen == last,
            compared_on: c
                .compared_on
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            test: c.test().map(|(m, s, _)| (m, s)),
            diff: paired(c, all).filter(|_| c.method != BASELINE),
        }
    }
}

/// The table of one dataset's choices: a row per (model, setting, method).
pub fn markdown(choices: &[&Choice]) -> String {
    let mut md = String::from(
        "| model | setting | method | chosen lr (per 128 images) | rates tried | chosen on seeds | val top-1 at chosen lr (%) | test top-1 (%), mean ± std | seeds | test − baseline (points, paired by seed) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut edges = 0;
    for line in choices.iter().map(|c| Line::new(c, choices)) {
        let c = line.choice;
        edges += usize::from(line.at_edge);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}{} | {} | {} | {:.2} | {} | {} | {} |",
            c.model,
            if c.rest.is_empty() { "–" } else { &c.rest },
            c.method,
            c.at().lr,
            match (line.at_edge, c.at().failed.len()) {
                (_, n) if n > 0 => format!(" ({n} seeds failed; so did a seed of every rate)"),
                (true, _) => " (edge)".into(),
                _ => String::new(),
            },
            line.tried.join(", "),
            if line.compared_on.is_empty() {
                "–"
            } else {
                &line.compared_on
            },
            c.at().val_mean(None),
            line.test
                .map_or("–".into(), |(m, s)| format!("{m:.2} ± {s:.2}")),
            c.at().seeds.len(),
            line.diff.map_or("–".into(), |(m, s, n)| {
                format!("{m:+.2} ± {s:.2} (n={n})")
            }),
        );
    }
    if edges > 0 {
        md.push_str(
            "\n(edge): the chosen rate is the lowest or highest tried; a rate beyond the grid may be better.\n",
        );
    }
    md
}

/// The same as CSV.
pub fn csv(choices: &[&Choice]) -> String {
    let mut out = String::from(
        "dataset,model,resolution,setting,method,chosen_lr,chosen_at_edge,rates_tried,chosen_on_seeds,val_top1_at_chosen_lr,test_top1_mean,test_top1_std,seeds,test_diff_vs_baseline_mean,test_diff_vs_baseline_std,paired_seeds\n",
    );
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for line in choices.iter().map(|c| Line::new(c, choices)) {
        let c = line.choice;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.4},{},{},{},{},{},{}",
            c.dataset,
            c.model,
            c.resolution,
            quote(&c.rest),
            quote(&c.method),
            c.at().lr,
            line.at_edge,
            quote(&line.tried.join(" ")),
            quote(&line.compared_on),
            c.at().val_mean(None),
            opt(line.test.map(|t| t.0)),
            opt(line.test.map(|t| t.1)),
            c.at().seeds.len(),
            opt(line.diff.map(|d| d.0)),
            opt(line.diff.map(|d| d.1)),
            line.diff.map_or(String::new(), |d| d.2.to_string()),
        );
    }
    out
}

/// `c`'s test top-1 minus the baseline's, each at its chosen rate, over the seeds both
/// have: mean, sample std, seeds.
pub fn paired(c: &Choice, all: &[&Choice]) -> Option<(f64, f64, usize)> {
    let base = all.iter().find(|b| {
        b.method == BASELINE
            && b.dataset == c.dataset
            && b.model == c.model
            && b.resolution == c.resolution
            && b.rest == c.rest
    })?;
    let diffs: Vec<f64> = c
        .at()
        .seeds
        .iter()
        .filter_map(|(s, (_, t))| Some(t.as_ref()? - base.at().seeds.get(s)?.1?))
        .collect();
    mean_std(&diffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary frame of (method, lr, seed, val, test) runs of one model.
    fn frame(runs: &[(&str, f64, i64, f64, f64)]) -> DataFrame {
        let n = runs.len();
        let col = |name: &str, v: Vec<String>| Column::new(name.into(), v);
        df_of(vec![
            col("dataset", vec!["d".into(); n]),
            col("model", vec!["m".into(); n]),
            Column::new("resolution".into(), vec![32i64; n]),
            col(
                "setting",
                runs.iter()
                    .map(|r| format!("run.base_lr={}", r.1))
                    .collect(),
            ),
            col("method", runs.iter().map(|r| r.0.to_string()).collect()),
            Column::new("seed".into(), runs.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new(
                "base_lr".into(),
                runs.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
            Column::new(
                "final_val_top1".into(),
                runs.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new(
                "final_test_top1".into(),
                runs.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new("epochs".into(), vec![4i64; n]),
            Column::new("epochs_trained".into(), vec![4i64; n]),
            col("status", vec!["done".into(); n]),
        ])
    }

    #[test]
    fn a_rate_with_a_failed_seed_loses_to_one_without_and_is_listed() {
        // 0.1: every seed diverged; 0.025: two of three diverged, the third best of all.
        let runs = [
            ("baseline", 0.0125, 0, 70.0, 60.0),
            ("baseline", 0.0125, 1, 70.0, 60.0),
            ("baseline", 0.0125, 2, 70.0, 60.0),
            ("baseline", 0.025, 0, 95.0, 95.0),
            ("baseline", 0.025, 1, f64::NAN, f64::NAN),
            ("baseline", 0.025, 2, f64::NAN, f64::NAN),
            ("baseline", 0.05, 0, 72.0, 65.0),
            ("baseline", 0.05, 1, 73.0, 66.0),
            ("baseline", 0.05, 2, 71.0, 64.0),
            ("baseline", 0.1, 0, f64::NAN, f64::NAN),
            ("baseline", 0.1, 1, f64::NAN, f64::NAN),
            ("baseline", 0.1, 2, f64::NAN, f64::NAN),
        ];
        let mut df = frame(&runs);
        let status: Vec<&str> = runs
            .iter()
            .map(|r| if r.3.is_nan() { "failed" } else { "done" })
            .collect();
        df.with_column(Column::new("status".into(), status))
            .unwrap();
        let cs = choices(&df).unwrap();
        assert_eq!(
            cs[0].at().lr,
            0.05,
            "a rate with failed seeds is never chosen over one without"
        );
        let md = markdown(&cs.iter().collect::<Vec<_>>());
        assert!(
            md.contains(
                "| 0.05 | 0.0125, 0.025 (2 of 3 seeds failed), 0.05, 0.1 (3 of 3 seeds failed) |"
            ),
            "{md}"
        );
        assert!(
            !md.contains("(edge)"),
            "0.05 is inside the rates tried: {md}"
        );
        // Every rate with a failed seed: the best is chosen and says so.
        let all_failed = [
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.025, 1, f64::NAN, f64::NAN),
            ("baseline", 0.05, 0, 72.0, 65.0),
            ("baseline", 0.05, 1, f64::NAN, f64::NAN),
        ];
        let mut df = frame(&all_failed);
        let status = Column::new("status".into(), ["done", "failed", "done", "failed"]);
        df.with_column(status).unwrap();
        let cs = choices(&df).unwrap();
        let md = markdown(&cs.iter().collect::<Vec<_>>());
        assert!(
            md.contains("| 0.05 (1 seeds failed; so did a seed of every rate) |"),
            "{md}"
        );
    }

    #[test]
    fn a_rate_stopped_by_halving_is_listed_with_its_epoch_and_never_chosen() {
        // 0.1 was stopped after epoch 1 at a validation top-1 above the others' final one.
        let runs = [
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.05, 0, 72.0, 65.0),
            ("baseline", 0.1, 0, 90.0, 90.0),
        ];
        let mut df = frame(&runs);
        let status = Column::new("status".into(), ["stopped", "done", "stopped"]);
        let trained = Column::new("epochs_trained".into(), [1i64, 4, 1]);
        df.with_column(status).unwrap();
        df.with_column(trained).unwrap();
        let cs = choices(&df).unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].at().lr, 0.05);
        assert_eq!(cs[0].curve.x, vec![500], "stopped rates stay off the curve");
        let md = markdown(&cs.iter().collect::<Vec<_>>());
        assert!(
            md.contains("0.025 (stopped at epoch 1 of 4), 0.05, 0.1 (stopped at epoch 1 of 4)"),
            "{md}"
        );
    }

    fn df_of(cols: Vec<Column>) -> DataFrame {
        DataFrame::new_infer_height(cols).unwrap()
    }

    #[test]
    fn the_rate_is_chosen_on_validation_numbers_only() {
        // NetAug: 0.025 is best on validation, 0.1 best on test. Baseline: 0.05 on both.
        let runs = [
            ("netaug", 0.025, 0, 80.0, 70.0),
            ("netaug", 0.025, 1, 79.0, 71.0),
            ("netaug", 0.1, 0, 75.0, 90.0),
            ("netaug", 0.1, 1, 74.0, 91.0),
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.025, 1, 70.0, 60.0),
            ("baseline", 0.05, 0, 72.0, 65.0),
            ("baseline", 0.05, 1, 73.0, 66.0),
        ];
        let cs = choices(&frame(&runs)).unwrap();
        let of = |m: &str| cs.iter().find(|c| c.method == m).unwrap();
        assert_eq!(of("netaug").at().lr, 0.025);
        assert_eq!(of("baseline").at().lr, 0.05);
        let (mean, _, n) = of("netaug").test().unwrap();
        assert_eq!((mean, n), (70.5, 2), "test reported at the chosen rate");
        let refs: Vec<&Choice> = cs.iter().collect();
        let (diff, _, pairs) = paired(of("netaug"), &refs).unwrap();
        assert_eq!((diff, pairs), (5.0, 2), "70-65 and 71-66, paired by seed");

        // Changing every test number changes no choice.
        let flipped: Vec<_> = runs
            .iter()
            .map(|&(m, lr, s, v, t)| (m, lr, s, v, 100.0 - t))
            .collect();
        let again = choices(&frame(&flipped)).unwrap();
        let lrs = |cs: &[Choice]| cs.iter().map(|c| c.at().lr).collect::<Vec<_>>();
        assert_eq!(lrs(&cs), lrs(&again));
    }

    #[test]
    fn rates_are_compared_on_the_seeds_they_all_have() {
        // 0.05 ran seed 0 only (best on it); 0.025 ran seeds 0-2, and its extra seeds
        // are high: the comparison must use seed 0 alone.
        let runs = [
            ("baseline", 0.025, 0, 70.0, 0.0),
            ("baseline", 0.025, 1, 90.0, 0.0),
            ("baseline", 0.025, 2, 90.0, 0.0),
            ("baseline", 0.05, 0, 71.0, 0.0),
        ];
        let cs = choices(&frame(&runs)).unwrap();
        assert_eq!(cs[0].at().lr, 0.05);
        assert_eq!(cs[0].compared_on, BTreeSet::from([0]));
    }

    #[test]
    fn chosen_runs_share_a_setting_without_their_rate() {
        let runs = [
            ("netaug", 0.025, 0, 80.0, 70.0),
            ("netaug", 0.1, 0, 75.0, 90.0),
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.05, 0, 72.0, 65.0),
        ];
        let f = frame(&runs);
        let cs = choices(&f).unwrap();
        let kept = at_chosen(&f, &cs).unwrap();
        assert_eq!(kept.height(), 2);
        assert_eq!(strings(&kept, "setting").unwrap(), ["", ""]);
        assert_eq!(floats(&kept, "base_lr").unwrap(), [Some(0.025), Some(0.05)]);
    }

    #[test]
    fn a_rate_chosen_at_the_edge_of_the_grid_is_marked() {
        let inside = [
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.05, 0, 72.0, 61.0),
            ("baseline", 0.1, 0, 71.0, 62.0),
        ];
        let cs = choices(&frame(&inside)).unwrap();
        let refs: Vec<&Choice> = cs.iter().collect();
        let md = markdown(&refs);
        assert!(
            md.contains("| baseline | 0.05 | 0.025, 0.05, 0.1 | 0 |"),
            "{md}"
        );
        assert!(!md.contains("edge"), "{md}");
        assert!(csv(&refs).contains(",0.05,false,"));

        let edge = [
            ("baseline", 0.025, 0, 70.0, 60.0),
            ("baseline", 0.05, 0, 72.0, 61.0),
            ("baseline", 0.1, 0, 73.0, 62.0),
        ];
        let cs = choices(&frame(&edge)).unwrap();
        let refs: Vec<&Choice> = cs.iter().collect();
        let md = markdown(&refs);
        assert!(md.contains("| 0.1 (edge) |"), "{md}");
        assert!(md.contains("a rate beyond the grid may be better"), "{md}");
        assert!(csv(&refs).contains(",0.1,true,"));
    }
}
