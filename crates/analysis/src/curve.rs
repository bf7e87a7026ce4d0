//! Curves: one method's mean, min and max over seeds against x (epoch, step, resolution,
//! budget), read from a frame of finished runs. Figures draw them; studies make them.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings};
use crate::table::{Agg, grouped};

/// Mean, min and max over seeds of one method's values against x (epoch, step, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curve {
    /// The x values: epochs, steps, resolutions or thousands of images.
    pub x: Vec<i64>,
    /// Mean over seeds.
    pub mean: Vec<f64>,
    /// Lowest seed.
    pub min: Vec<f64>,
    /// Highest seed.
    pub max: Vec<f64>,
}

/// (dataset, model, setting) -> method -> curve.
pub type Curves = BTreeMap<(String, String, String), BTreeMap<String, Curve>>;

/// The curves of `column` (`val_top1`, `train_top1`) of the finished runs in the metrics
/// frame, against the epoch.
pub fn curves(metrics: &DataFrame, column: &str) -> Result<Curves, AnalysisError> {
    curves_over(metrics, "epoch", column)
}

/// The curves of `column` of the finished runs in `frame` against its integer column `x`.
pub fn curves_over(frame: &DataFrame, x: &str, column: &str) -> Result<Curves, AnalysisError> {
    let keys = ["dataset", "model", "setting", "method", x];
    let agg = grouped(
        &crate::runs::done_with(frame, column)?,
        &keys,
        &[
            (column, Agg::Mean, "mean"),
            (column, Agg::Min, "min"),
            (column, Agg::Max, "max"),
        ],
    )?
    .sort(keys, SortMultipleOptions::default())?;
    let (dataset, model, method) = (
        strings(&agg, "dataset")?,
        strings(&agg, "model")?,
        strings(&agg, "method")?,
    );
    let setting = strings(&agg, "setting")?;
    let x = ints(&agg, x)?;
    let f = |n: &str| -> PolarsResult<Vec<f64>> {
        Ok(floats(&agg, n)?
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let (mean, min, max) = (f("mean")?, f("min")?, f("max")?);
    let mut out = Curves::new();
    for k in 0..agg.height() {
        let c = out
            .entry((dataset[k].clone(), model[k].clone(), setting[k].clone()))
            .or_default()
            .entry(method[k].clone())
            .or_default();
        c.x.push(x[k]);
        c.mean.push(mean[k]);
        c.min.push(min[k]);
        c.max.push(max[k]);
    }
    Ok(out)
}
