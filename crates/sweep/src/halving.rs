//! Successive halving over a stage's grid: what a sweep file asks for, and the trials it
//! plans.
//!
//! ```yaml
//! halving: {metric: val_top1, rungs: [1, 3], keep: 1/3, within: [netaug], mode: sync}
//! ```
//!
//! Every trial trains under its full schedule and pauses at each rung (an epoch count,
//! warm-up included) until the trials of its group (the runs that agree on the `within`
//! keys) have been compared there; the best `keep` of the group's settings are promoted
//! and resume from their checkpoints, the rest stay stopped at that rung. A setting is a
//! grid point without its seed: its seeds are scored together (their mean) and promoted
//! together.

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

/// When promotions are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A rung is decided once every setting of the group that trains to it has reached
    /// it: the choices follow from the results alone, whatever the order runs finish in.
    #[default]
    Sync,
    /// ASHA: a setting is promoted as soon as it ranks in the best `keep` of the settings
    /// of its group that have reached the rung so far, so no worker waits for the slowest.
    Async,
}

/// A stage's `halving:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Halving {
    /// The per-epoch metric compared at a rung (a `metrics.jsonl` key); higher is better,
    /// unless its name ends in `loss`.
    pub metric: String,
    /// Epochs (warm-up included) at which trials pause and are compared, ascending, each
    /// below every trial's epoch count.
    pub rungs: Vec<usize>,
    /// The fraction of a group's settings promoted at each rung (at least one).
    pub keep: f64,
    /// Keys whose values split the stage's trials into groups that are ranked apart
    /// (e.g. the method and the net, so each keeps its own winners).
    pub within: Vec<String>,
    /// Synchronous (the default, reproducible) or asynchronous promotion.
    pub mode: Mode,
    /// A trial whose metric is at or below this at a rung (or that failed) is stopped at
    /// once; default: chance top-1 for a top-1 metric (100 / classes, plus 1), else none.
    pub floor: Option<f64>,
}

impl Halving {
    /// Whether `a` scores better than `b` in this metric.
    pub fn better(&self, a: f64, b: f64) -> bool {
        if self.metric.ends_with("loss") {
            a < b
        } else {
            a > b
        }
    }

    /// How many of `n` settings a rung promotes: the `keep` fraction, rounded down, at
    /// least one.
    pub fn promoted_of(&self, n: usize) -> usize {
        ((n as f64 * self.keep + 1e-9).floor() as usize)
            .max(1)
            .min(n)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHalving {
    #[serde(default = "default_metric")]
    metric: String,
    rungs: Vec<usize>,
    keep: Value,
    #[serde(default)]
    within: Vec<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    floor: Option<f64>,
}

fn default_metric() -> String {
    "val_top1".into()
}

/// Parses a `halving:` value; errors are `(key under halving, message)`.
pub(crate) fn parse(value: Value) -> Result<Halving, (String, String)> {
    let raw: RawHalving = serde_path_to_error::deserialize(value)
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
    let keep = match &raw.keep {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => fraction(s),
        _ => None,
    }
    .filter(|k| *k > 0.0 && *k < 1.0)
    .ok_or_else(|| {
        (
            "keep".to_string(),
            format!(
                "{}: expected a fraction between 0 and 1, as 0.33 or 1/3",
                serde_yaml_ng::to_string(&raw.keep)
                    .map_or_else(|_| "?".into(), |t| t.trim().to_string())
            ),
        )
    })?;
    if raw.rungs.is_empty() {
        return Err(("rungs".into(), "expected at least one epoch".into()));
    }
    if raw.rungs[0] == 0 || raw.rungs.windows(2).any(|w| w[0] >= w[1]) {
        return Err((
            "rungs".into(),
            format!(
                "{:?}: expected epochs (warm-up included) from 1 up, ascending",
                raw.rungs
            ),
        ));
    }
    if raw.metric.is_empty() || raw.metric == "epoch" {
        return Err((
            "metric".into(),
            format!("{:?}: name a per-epoch metric, as val_top1", raw.metric),
        ));
    }
    if let Some(f) = raw.floor
        && !f.is_finite()
    {
        return Err(("floor".into(), "expected a finite number".into()));
    }
    Ok(Halving {
        metric: raw.metric,
        rungs: raw.rungs,
        keep,
        within: raw.within,
        mode: raw.mode,
        floor: raw.floor,
    })
}

/// `a/b` as a number.
fn fraction(s: &str) -> Option<f64> {
    match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (b != 0.0).then(|| a / b)
        }
        None => s.trim().parse().ok(),
    }
}

/// A run's place in its stage's halving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// Its group: the stage and the values of the `within` keys.
    pub group: String,
    /// Its setting: the group and every other varying value but the seed.
    pub setting: String,
    /// Its epochs, warm-up included (the full schedule).
    pub epochs: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Halving, (String, String)> {
        parse(serde_yaml_ng::from_str(text).unwrap())
    }

    #[test]
    fn keep_reads_as_a_fraction_or_a_number() {
        let h = parsed("{rungs: [1, 3], keep: 1/3}").unwrap();
        assert!((h.keep - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(h.metric, "val_top1");
        assert_eq!(h.mode, Mode::Sync);
        assert_eq!(parsed("{rungs: [1], keep: 0.5}").unwrap().keep, 0.5);
        for bad in ["1", "0", "3/0", "x", "[1]"] {
            let err = parsed(&format!("{{rungs: [1], keep: {bad}}}")).unwrap_err();
            assert_eq!(err.0, "keep", "{bad}: {err:?}");
        }
    }

    #[test]
    fn rungs_must_rise_from_one() {
        for bad in ["[]", "[0, 2]", "[3, 3]", "[4, 2]"] {
            let err = parsed(&format!("{{rungs: {bad}, keep: 0.5}}")).unwrap_err();
            assert_eq!(err.0, "rungs", "{bad}: {err:?}");
        }
        let err = parsed("{rungs: [1], keep: 0.5, mode: fast}").unwrap_err();
        assert_eq!(err.0, "mode", "{err:?}");
        let err = parsed("{rungs: [1], keep: 0.5, rung: 2}").unwrap_err();
        assert!(err.1.contains("rung"), "{err:?}");
    }

    #[test]
    fn a_rung_keeps_the_fraction_rounded_down_and_at_least_one() {
        let h = parsed("{rungs: [1], keep: 1/3}").unwrap();
        let kept: Vec<usize> = [1, 2, 3, 5, 6, 9].map(|n| h.promoted_of(n)).to_vec();
        assert_eq!(kept, vec![1, 1, 1, 1, 2, 3]);
        assert!(h.better(2.0, 1.0));
        let loss = parsed("{rungs: [1], keep: 0.5, metric: val_loss}").unwrap();
        assert!(loss.better(1.0, 2.0));
    }
}
