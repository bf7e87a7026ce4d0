//! Figures with plotters, each as PNG and SVG: validation top-1 against epoch per model
//! (one line per method, the seeds' range shaded) and the methods of each dataset as bars
//! with their standard deviation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use polars::prelude::*;

use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings};
use crate::table::{Agg, Table, grouped};

/// The embedded font (DejaVu Sans; see assets/DejaVuSans-LICENSE), so figures have text on
/// machines without fonts.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 560);

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only on a malformed font, which the embedded one is not.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Mean, min and max val top-1 per epoch of one method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curve {
    /// Epochs.
    pub epoch: Vec<i64>,
    /// Mean over seeds.
    pub mean: Vec<f64>,
    /// Lowest seed.
    pub min: Vec<f64>,
    /// Highest seed.
    pub max: Vec<f64>,
}

/// (dataset, model) -> method -> curve.
pub type Curves = BTreeMap<(String, String), BTreeMap<String, Curve>>;

/// The curves of the finished runs in the metrics frame.
pub fn curves(metrics: &DataFrame) -> Result<Curves, AnalysisError> {
    let keys = ["dataset", "model", "method", "epoch"];
    let agg = grouped(
        &crate::runs::done(metrics)?,
        &keys,
        &[
            ("val_top1", Agg::Mean, "mean"),
            ("val_top1", Agg::Min, "min"),
            ("val_top1", Agg::Max, "max"),
        ],
    )?
    .sort(keys, SortMultipleOptions::default())?;
    let (dataset, model, method) = (
        strings(&agg, "dataset")?,
        strings(&agg, "model")?,
        strings(&agg, "method")?,
    );
    let epoch = ints(&agg, "epoch")?;
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
            .entry((dataset[k].clone(), model[k].clone()))
            .or_default()
            .entry(method[k].clone())
            .or_default();
        c.epoch.push(epoch[k]);
        c.mean.push(mean[k]);
        c.min.push(min[k]);
        c.max.push(max[k]);
    }
    Ok(out)
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    C[i % C.len()]
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn draw_curves<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    curves: &BTreeMap<String, Curve>,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max_epoch = curves
        .values()
        .flat_map(|c| c.epoch.iter().copied())
        .max()
        .unwrap_or(1)
        .max(2);
    let lo = curves
        .values()
        .flat_map(|c| c.min.iter().copied())
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = curves
        .values()
        .flat_map(|c| c.max.iter().copied())
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 100.0)
    };
    let pad = ((hi - lo) * 0.08).max(0.5);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(1i64..max_epoch, (lo - pad).max(0.0)..(hi + pad).min(100.0))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("validation top-1 (%)")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    for (i, (method, c)) in curves.iter().enumerate() {
        let col = color(i);
        if c.min.iter().zip(&c.max).any(|(a, b)| b > a) {
            let mut band: Vec<(i64, f64)> =
                c.epoch.iter().copied().zip(c.max.iter().copied()).collect();
            band.extend(c.epoch.iter().copied().zip(c.min.iter().copied()).rev());
            chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.2).filled())))?;
        }
        chart
            .draw_series(LineSeries::new(
                c.epoch.iter().copied().zip(c.mean.iter().copied()),
                col.stroke_width(3),
            ))?
            .label(method.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    area.present()?;
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, table: &Table) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let models = table.rows.len().max(1);
    let k = table.methods.len().max(1);
    let values: Vec<f64> = table
        .rows
        .iter()
        .flat_map(|r| {
            r.cells
                .values()
                .flat_map(|c| [c.mean - c.std, c.mean + c.std])
        })
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 100.0)
    };
    let pad = ((hi - lo) * 0.15).max(1.0);
    let names: Vec<String> = table.rows.iter().map(|r| r.model.clone()).collect();
    let mut chart = ChartBuilder::on(&area)
        .caption(
            format!("{}: final validation top-1 by method", table.dataset),
            (FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            0f64..models as f64,
            (lo - pad).max(0.0)..(hi + pad).min(100.0),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(models * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .x_desc("model")
        .y_desc("validation top-1 (%), mean ± std over seeds")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let width = 0.8 / k as f64;
    let base = (lo - pad).max(0.0);
    for (j, method) in table.methods.iter().enumerate() {
        let col = color(j);
        let mut bars = Vec::new();
        let mut errs = Vec::new();
        for (i, r) in table.rows.iter().enumerate() {
            if let Some(c) = r.cells.get(method) {
                let x0 = i as f64 + 0.1 + j as f64 * width;
                bars.push(Rectangle::new(
                    [(x0, base), (x0 + width * 0.9, c.mean)],
                    col.filled(),
                ));
                let xm = x0 + width * 0.45;
                errs.push(PathElement::new(
                    vec![(xm, c.mean - c.std), (xm, c.mean + c.std)],
                    BLACK.stroke_width(2),
                ));
            }
        }
        chart
            .draw_series(bars)?
            .label(method.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], col.filled()));
        chart.draw_series(errs)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    area.present()?;
    Ok(())
}

/// Draws every figure into `dir`; returns the files written.
pub fn figures(
    dir: &Path,
    curves: &Curves,
    tables: &[Table],
) -> Result<Vec<PathBuf>, AnalysisError> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| AnalysisError::file(dir, e))?;
    let mut written = Vec::new();
    let fail = |p: &Path, e: Box<dyn std::error::Error>| AnalysisError::file(p, e.to_string());
    for ((dataset, model), by_method) in curves {
        let title = format!("{model} on {dataset}: validation top-1 per epoch");
        let stem = format!("{dataset}-{model}-val-top1");
        let png = dir.join(format!("{stem}.png"));
        draw_curves(
            BitMapBackend::new(&png, SIZE).into_drawing_area(),
            &title,
            by_method,
        )
        .map_err(|e| fail(&png, e))?;
        let svg = dir.join(format!("{stem}.svg"));
        draw_curves(
            SVGBackend::new(&svg, SIZE).into_drawing_area(),
            &title,
            by_method,
        )
        .map_err(|e| fail(&svg, e))?;
        written.extend([png, svg]);
    }
    for t in tables {
        let stem = format!("{}-methods", t.dataset);
        let png = dir.join(format!("{stem}.png"));
        draw_bars(BitMapBackend::new(&png, SIZE).into_drawing_area(), t)
            .map_err(|e| fail(&png, e))?;
        let svg = dir.join(format!("{stem}.svg"));
        draw_bars(SVGBackend::new(&svg, SIZE).into_drawing_area(), t).map_err(|e| fail(&svg, e))?;
        written.extend([png, svg]);
    }
    Ok(written)
}
