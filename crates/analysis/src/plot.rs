//! Figures with plotters, each as PNG and SVG: validation top-1 (or mAP50) against epoch
//! per model (one line per method, the seeds' range shaded), training against validation
//! top-1 of the smallest and the largest baseline net of a dataset (the paper's
//! underfitting figure: a tiny net's training accuracy stays as low as its validation
//! accuracy), the methods of each dataset as bars with their standard deviation, and for
//! detection mAP50 against input resolution (one line per model and method), the paper's
//! main figure (top-1 against MACs on a log scale, the paper's points beside ours), and
//! the training loss and learning rate of each run group against the step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use polars::prelude::*;

use crate::budget::Study;
use crate::choice::Choice;
use crate::curve::{Curve, Curves, curves_over};
use crate::error::AnalysisError;
use crate::halving::{Trial, Trials};
use crate::runs::{ints, strings};
use crate::settings;
use crate::table::{Metric, Row, Table};

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

/// Draws `$draw` (which uses the drawing area bound to `$area`) into `$path`, as SVG when
/// `$svg` else PNG, at `$size`, then presents it: one body for both backends.
macro_rules! render {
    ($path:expr, $svg:expr, $size:expr, |$area:ident| $draw:expr) => {{
        if $svg {
            let $area = SVGBackend::new($path, $size).into_drawing_area();
            $draw?;
            $area.present()?;
        } else {
            let $area = BitMapBackend::new($path, $size).into_drawing_area();
            $draw?;
            $area.present()?;
        }
        PlotResult::Ok(())
    }};
}

/// One line of a line chart: a mean, optionally the seeds' range as a band.
struct Line<'a> {
    label: String,
    color: RGBColor,
    dashed: bool,
    /// Marks each point (for few points, where a line alone may not show).
    markers: bool,
    curve: &'a Curve,
}

/// `lo..hi` of the finite `values`, padded by `frac` of the span (at least `min_pad`),
/// within 0..100 when the values are (percentages; differences may go below 0).
fn value_range(values: impl Iterator<Item = f64>, frac: f64, min_pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 100.0);
    }
    // At least a millionth of the values' size: at 1e30, a pad of 0.5 leaves lo == hi.
    let pad = ((hi - lo) * frac)
        .max(min_pad)
        .max(lo.abs().max(hi.abs()) * 1e-6);
    if lo < 0.0 {
        return (lo - pad, hi + pad);
    }
    ((lo - pad).max(0.0), (hi + pad).min(100.0))
}

fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A line chart on `area` (not presented: the caller presents the whole drawing).
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let xs = || lines.iter().flat_map(|l| l.curve.x.iter().copied());
    let max_x = xs().max().unwrap_or(1);
    let min_x = xs().min().unwrap_or(1).min(max_x);
    // At least a span of one, so that a single point still has an axis.
    let (min_x, max_x) = if max_x > min_x {
        (min_x, max_x)
    } else {
        (min_x - 1, max_x + 1)
    };
    let values = || {
        lines
            .iter()
            .flat_map(|l| l.curve.min.iter().chain(&l.curve.max).copied())
    };
    // Half a point for percentages; a twentieth of the scale for small values (lr, loss).
    let scale = values()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let (lo, hi) = value_range(values(), 0.08, (0.05 * scale).min(0.5));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(min_x..max_x, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    for l in lines {
        let (c, col) = (l.curve, l.color);
        if c.min.iter().zip(&c.max).any(|(a, b)| b > a) {
            let mut band: Vec<(i64, f64)> =
                c.x.iter().copied().zip(c.max.iter().copied()).collect();
            band.extend(c.x.iter().copied().zip(c.min.iter().copied()).rev());
            chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.2).filled())))?;
        }
        if l.markers {
            let points = c.x.iter().copied().zip(c.mean.iter().copied());
            chart.draw_series(points.map(|p| Circle::new(p, 5, col.filled())))?;
        }
        let points = c.x.iter().copied().zip(c.mean.iter().copied());
        let dashed = l.dashed;
        let series = if dashed {
            chart.draw_series(DashedLineSeries::new(points, 10, 6, col.stroke_width(3)))?
        } else {
            chart.draw_series(LineSeries::new(points, col.stroke_width(3)))?
        };
        series.label(l.label.as_str()).legend(move |(x, y)| {
            let style = col.stroke_width(3);
            if dashed {
                DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style).into_dyn()
            } else {
                PathElement::new(vec![(x, y), (x + 24, y)], style).into_dyn()
            }
        });
    }
    draw_legend(&mut chart, legend)?;
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, table: &Table) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let models = table.rows.len().max(1);
    let k = table.methods.len().max(1);
    let (lo, hi) = value_range(
        table.rows.iter().flat_map(|r| {
            r.cells
                .values()
                .flat_map(|c| [c.mean - c.std, c.mean + c.std])
        }),
        0.15,
        1.0,
    );
    let names: Vec<String> = table.rows.iter().map(|r| r.label()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: final {} {} by method",
                table.dataset,
                table.metric.split(),
                table.metric.label()
            ),
            (FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..models as f64, lo..hi)?;
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
        .y_desc(format!(
            "{} {} (%), mean ± std over seeds",
            table.metric.split(),
            table.metric.label()
        ))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let width = 0.8 / k as f64;
    let base = lo;
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
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// One line per method of `by_method`, in the palette's order.
fn method_lines(by_method: &BTreeMap<String, Curve>) -> Vec<Line<'_>> {
    by_method
        .iter()
        .enumerate()
        .map(|(i, (method, curve))| Line {
            label: method.clone(),
            color: color(i),
            dashed: false,
            markers: false,
            curve,
        })
        .collect()
}

/// The training figure of a run group: loss above, learning rate below.
fn draw_training<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    t: &Training,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    let (_, height) = area.dim_in_pixel();
    let (top, bottom) = area.split_vertically(height / 2);
    let right = || SeriesLabelPosition::UpperRight;
    let x = t.x;
    let loss = method_lines(&t.loss);
    draw_lines(
        &top,
        title,
        (x, "training loss, mean over seeds"),
        &loss,
        right(),
    )?;
    let lr = method_lines(&t.lr);
    draw_lines(&bottom, "learning rate", (x, "learning rate"), &lr, right())?;
    Ok(())
}

/// Size of the two-panel training figure.
const TRAINING_SIZE: (u32, u32) = (900, 820);
/// Grey of the paper's points.
const PAPER: RGBColor = RGBColor(150, 150, 150);

/// A legend marker of shape `shape` (circle, triangle, cross, square: the methods' order)
/// at pixel `(x, y)`.
fn legend_marker<'a, DB: DrawingBackend>(
    (x, y): (i32, i32),
    shape: usize,
    style: ShapeStyle,
) -> DynElement<'a, DB, (i32, i32)> {
    match shape % 4 {
        0 => Circle::new((x, y), 6, style).into_dyn(),
        1 => TriangleMarker::new((x, y), 9, style).into_dyn(),
        2 => Cross::new((x, y), 6, style.stroke_width(3)).into_dyn(),
        _ => Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], style).into_dyn(),
    }
}

/// `v` with three significant digits, trailing zeros dropped: 0.123, 1.5, 23.5, 300.
fn significant(v: f64) -> String {
    let decimals = (2 - v.abs().max(1e-9).log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws a marker of shape `shape` (as [`legend_marker`]) at data point `at`.
fn draw_marker<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: (f64, f64),
    shape: usize,
    style: ShapeStyle,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    use std::iter::once;
    let at = EmptyElement::at(at);
    match shape % 4 {
        0 => chart.draw_series(once(at + Circle::new((0, 0), 6, style)))?,
        1 => chart.draw_series(once(at + TriangleMarker::new((0, 0), 9, style)))?,
        2 => chart.draw_series(once(at + Cross::new((0, 0), 6, style.stroke_width(3))))?,
        _ => chart.draw_series(once(at + Rectangle::new([(-5, -5), (5, 5)], style)))?,
    };
    Ok(())
}

/// One row's methods at `x`: a line from the baseline to each other method (`width`
/// wide), a whisker of ± std where it is positive, and a marker per method.
fn draw_points<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    x: f64,
    points: &[(&String, f64, f64)],
    col: RGBColor,
    width: u32,
    shape_of: &dyn Fn(&str) -> usize,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    use std::iter::once;
    if let Some((_, base, _)) = points.iter().find(|(m, _, _)| *m == BASELINE) {
        for (_, v, _) in points.iter().filter(|(m, _, _)| *m != BASELINE) {
            let gain = vec![(x, *base), (x, *v)];
            chart.draw_series(once(PathElement::new(gain, col.stroke_width(width))))?;
        }
    }
    for (method, v, std) in points {
        if *std > 0.0 {
            let whisker = vec![(x, v - std), (x, v + std)];
            chart.draw_series(once(PathElement::new(whisker, BLACK.stroke_width(1))))?;
        }
        draw_marker(chart, (x, *v), shape_of(method), col.filled())?;
    }
    Ok(())
}

/// The paper's main figure for a classification table: top-1 against MACs (log scale),
/// one color per model, one marker per method, each method joined to the baseline of its
/// row (NetAug does not change the deployed net, so the join is vertical: the gain), the
/// seeds' standard deviation as whiskers, and the paper's numbers in grey just right of
/// ours where it has the model.
fn draw_macs<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, table: &Table) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    // x is log10 of MACs in millions on a linear axis, so that labels fall between the
    // powers of ten too (plotters' log axis labels only those).
    let log_macs = |r: &Row| (r.macs.max(1) as f64 / 1e6).log10();
    let xs = || table.rows.iter().map(log_macs);
    let (x_lo, x_hi) = (
        xs().fold(f64::INFINITY, f64::min) - 0.2,
        xs().fold(f64::NEG_INFINITY, f64::max) + 0.2,
    );
    let (lo, hi) = value_range(
        table.rows.iter().flat_map(|r| {
            let ours = r
                .cells
                .values()
                .flat_map(|c| [c.mean - c.std, c.mean + c.std]);
            ours.chain(r.paper.values().copied())
        }),
        0.1,
        0.5,
    );
    let what = format!("{} {}", table.metric.split(), table.metric.label());
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: {what} against MACs", table.dataset),
            (FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_lo..x_hi, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("MACs of the deployed net (millions, log scale)")
        .x_labels(8)
        .y_desc(format!("{what} (%), mean ± std over seeds"))
        .x_label_formatter(&|x| significant(10f64.powf(*x)))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let shape_of = |method: &str| table.methods.iter().position(|m| m == method).unwrap_or(0);
    let mut models: Vec<&str> = Vec::new();
    for r in &table.rows {
        let i = models
            .iter()
            .position(|m| *m == r.model)
            .unwrap_or_else(|| {
                models.push(&r.model);
                models.len() - 1
            });
        let x = log_macs(r);
        // The paper's points first (just right of ours), so ours draw over them.
        let paper: Vec<(&String, f64, f64)> = r.paper.iter().map(|(m, v)| (m, *v, 0.0)).collect();
        draw_points(&mut chart, x + 0.03, &paper, PAPER, 2, &shape_of)?;
        let ours: Vec<(&String, f64, f64)> =
            r.cells.iter().map(|(m, c)| (m, c.mean, c.std)).collect();
        draw_points(&mut chart, x, &ours, color(i), 3, &shape_of)?;
    }
    // Legend: a line per model, a marker per method, the paper's grey.
    let none = || std::iter::empty::<PathElement<(f64, f64)>>();
    for (i, model) in models.iter().enumerate() {
        let col = color(i);
        chart
            .draw_series(none())?
            .label(*model)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3)));
    }
    for (j, method) in table.methods.iter().enumerate() {
        chart
            .draw_series(none())?
            .label(method.as_str())
            .legend(move |(x, y)| legend_marker((x + 12, y), j, BLACK.filled()));
    }
    if table.rows.iter().any(|r| !r.paper.is_empty()) {
        chart
            .draw_series(none())?
            .label("paper")
            .legend(move |(x, y)| legend_marker((x + 12, y), 0, PAPER.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// One marked line per `(label, curve)`, in the palette's order: for few points.
fn marked(curves: &[(String, Curve)]) -> Vec<Line<'_>> {
    curves
        .iter()
        .enumerate()
        .map(|(i, (label, curve))| Line {
            label: label.clone(),
            color: color(i),
            dashed: false,
            markers: true,
            curve,
        })
        .collect()
}

/// Successive halving's trials: each run's validation top-1 per epoch, one colour per
/// rate, the stopped runs faded, the rungs as dashed vertical lines.
fn draw_trials<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    trials: &[Trial],
    rungs: &[i64],
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let max_x = trials
        .iter()
        .flat_map(|t| t.curve.x.iter().copied())
        .max()
        .unwrap_or(1)
        .max(2);
    let (lo, hi) = value_range(
        trials.iter().flat_map(|t| t.curve.mean.iter().copied()),
        0.08,
        0.5,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0..max_x, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("validation top-1 (%)")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let grey = RGBColor(120, 120, 120);
    for &r in rungs.iter().filter(|&&r| r < max_x) {
        chart.draw_series(DashedLineSeries::new(
            [(r, lo), (r, hi)],
            8,
            6,
            grey.stroke_width(2),
        ))?;
    }
    let mut labels: Vec<&str> = trials.iter().map(|t| t.label.as_str()).collect();
    labels.dedup();
    for (i, label) in labels.iter().enumerate() {
        let col = color(i);
        let of_label: Vec<&Trial> = trials.iter().filter(|t| t.label == *label).collect();
        let all_stopped = of_label.iter().all(|t| t.stopped);
        for (j, t) in of_label.iter().enumerate() {
            let style = if t.stopped {
                col.mix(0.3).stroke_width(2)
            } else {
                col.stroke_width(3)
            };
            let points = || t.curve.x.iter().copied().zip(t.curve.mean.iter().copied());
            // Markers too: a trial stopped at the first rung has a single point.
            chart.draw_series(points().map(|p| Circle::new(p, 4, style.filled())))?;
            let series = chart.draw_series(LineSeries::new(points(), style))?;
            if j == 0 {
                let text = if all_stopped {
                    format!("{label} (stopped)")
                } else {
                    label.to_string()
                };
                series
                    .label(text)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// What the figures are drawn from.
pub struct FigureData<'a> {
    /// Validation top-1 per epoch.
    pub val: &'a Curves,
    /// Training top-1 per epoch.
    pub train: &'a Curves,
    /// Validation mAP50 per epoch (detection runs).
    pub map50: &'a Curves,
    /// Params of each (dataset, model).
    pub params: &'a BTreeMap<(String, String), i64>,
    /// The tables (bar charts).
    pub tables: &'a [Table],
    /// The budget studies: a method's gain over the baseline against images seen.
    pub studies: &'a [Study],
    /// Training loss and learning rate per run group.
    pub training: &'a TrainingCurves,
    /// Learning-rate choices (validation top-1 against the rate).
    pub choices: &'a [Choice],
    /// Top-1 on a fixed sample of training images without augmentation, per epoch.
    pub train_eval: &'a Curves,
    /// Every trial's validation curve, where successive halving stopped some.
    pub trials: &'a Trials,
    /// The epochs at which halving compared trials.
    pub rungs: &'a [i64],
}

/// Training loss and learning rate of a run group against the step (from `steps.jsonl`)
/// or, for runs without one, the epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Training {
    /// What x is: `step` or `epoch`.
    pub x: &'static str,
    /// Method -> training loss of the target net.
    pub loss: BTreeMap<String, Curve>,
    /// Method -> learning rate.
    pub lr: BTreeMap<String, Curve>,
}

/// (dataset, model, setting) -> its training curves.
pub type TrainingCurves = BTreeMap<(String, String, String), Training>;

/// The training curves of every run group: per logged step where its runs wrote
/// `steps.jsonl`, else per epoch.
pub fn training_curves(
    steps: &DataFrame,
    metrics: &DataFrame,
) -> Result<TrainingCurves, AnalysisError> {
    let mut out = TrainingCurves::new();
    // Steps second: where both exist, they replace the epochs.
    for (x, frame) in [("epoch", metrics), ("step", steps)] {
        let mut lr = curves_over(frame, x, "lr")?;
        for (key, loss) in curves_over(frame, x, "train_loss")? {
            let lr = lr.remove(&key).unwrap_or_default();
            out.insert(key, Training { x, loss, lr });
        }
    }
    Ok(out)
}

/// Params of each (dataset, model) of the summary frame.
pub fn params(summary: &DataFrame) -> Result<BTreeMap<(String, String), i64>, AnalysisError> {
    let (dataset, model, params) = (
        strings(summary, "dataset")?,
        strings(summary, "model")?,
        ints(summary, "params")?,
    );
    Ok(dataset.into_iter().zip(model).zip(params).collect())
}

/// The underfitting figure of each dataset with baseline runs of two or more models:
/// training and validation top-1 of its smallest and its largest net (in the first
/// setting of each).
fn underfitting<'a>(data: &FigureData<'a>) -> Vec<(String, Vec<Line<'a>>)> {
    let mut by_dataset: BTreeMap<&str, Vec<(i64, &str, &str)>> = BTreeMap::new();
    for ((dataset, model, setting), by_method) in data.val {
        let seen = by_dataset
            .get(dataset.as_str())
            .is_some_and(|ms| ms.iter().any(|(_, m, _)| m == model));
        let has_train = data
            .train
            .get(&(dataset.clone(), model.clone(), setting.clone()))
            .is_some_and(|m| m.contains_key(BASELINE));
        if by_method.contains_key(BASELINE) && has_train && !seen {
            let p = data
                .params
                .get(&(dataset.clone(), model.clone()))
                .copied()
                .unwrap_or(0);
            by_dataset
                .entry(dataset)
                .or_default()
                .push((p, model, setting));
        }
    }
    let mut out = Vec::new();
    for (dataset, mut models) in by_dataset {
        if models.len() < 2 {
            continue;
        }
        models.sort();
        let picks = [models[0], models[models.len() - 1]];
        let mut lines = Vec::new();
        for (i, (p, model, setting)) in picks.into_iter().enumerate() {
            let key = (dataset.to_string(), model.to_string(), setting.to_string());
            let size = format!("{model} ({:.2}M)", p as f64 / 1e6);
            for (curves, what, dashed) in [(data.train, "train", true), (data.val, "val", false)] {
                lines.push(Line {
                    label: format!("{size} {what}"),
                    color: color(i),
                    dashed,
                    markers: false,
                    curve: &curves[&key][BASELINE],
                });
            }
        }
        out.push((dataset.to_string(), lines));
    }
    out
}

/// A figure's file stem, title and lines.
type Figure<'a> = (String, String, Vec<Line<'a>>);

/// The (dataset, model, setting) of a choice as a file stem part and a title part.
fn choice_names(c: &Choice) -> (String, String) {
    let mut stem = format!("{}-{}", c.dataset, c.model);
    let mut title = format!("{} on {}", c.model, c.dataset);
    if !c.rest.is_empty() {
        stem = format!("{stem}-{}", settings::slug(&c.rest));
        title = format!("{title}, {}", c.rest);
    }
    (stem.to_lowercase(), title)
}

/// The choices grouped by figure: (file stem, title) -> the methods' choices.
fn choice_groups<'a>(choices: &'a [Choice]) -> BTreeMap<(String, String), Vec<&'a Choice>> {
    let mut by_group: BTreeMap<(String, String), Vec<&'a Choice>> = BTreeMap::new();
    for c in choices {
        by_group.entry(choice_names(c)).or_default().push(c);
    }
    by_group
}

/// Validation top-1 against the learning rate, one line per method (seeds' range shaded).
fn lr_figures<'a>(data: &FigureData<'a>) -> Vec<Figure<'a>> {
    choice_groups(data.choices)
        .into_iter()
        .map(|((stem, title), cs)| {
            let ls = cs
                .iter()
                .enumerate()
                .map(|(i, c)| Line {
                    label: format!("{} (chosen {})", c.method, c.at().lr),
                    color: color(i),
                    dashed: false,
                    markers: true,
                    curve: &c.curve,
                })
                .collect();
            (
                format!("{stem}-val-vs-lr"),
                format!("{title}: validation top-1 against learning rate"),
                ls,
            )
        })
        .collect()
}

/// The paper's underfitting evidence at each method's chosen rate: top-1 on unaugmented
/// training images (dashed) beside validation top-1 (solid) per epoch, one colour per method.
fn fit_figures<'a>(data: &FigureData<'a>) -> Vec<Figure<'a>> {
    let mut out = Vec::new();
    for ((stem, title), cs) in choice_groups(data.choices) {
        let mut ls = Vec::new();
        for c in cs {
            let key = (c.dataset.clone(), c.model.clone(), c.at().setting.clone());
            let (Some(train), Some(val)) = (
                data.train_eval.get(&key).and_then(|m| m.get(&c.method)),
                data.val.get(&key).and_then(|m| m.get(&c.method)),
            ) else {
                continue;
            };
            let col = color(ls.len() / 2);
            let name = format!("{} (lr {})", c.method, c.at().lr);
            for (curve, what, dashed) in [(train, "train", true), (val, "val", false)] {
                ls.push(Line {
                    label: format!("{name} {what}"),
                    color: col,
                    dashed,
                    markers: false,
                    curve,
                });
            }
        }
        if !ls.is_empty() {
            out.push((
                format!("{stem}-train-vs-val"),
                format!("{title}: training fit and validation, chosen rates"),
                ls,
            ));
        }
    }
    out
}

/// One curve per (model, method) of a table: its mean over resolutions, the band one
/// standard deviation either side.
fn by_resolution(t: &Table) -> Vec<(String, Curve)> {
    let mut out: BTreeMap<(String, String), Curve> = BTreeMap::new();
    let mut rows: Vec<_> = t.rows.iter().collect();
    rows.sort_by_key(|r| (r.model.clone(), r.resolution));
    for r in rows {
        for (method, c) in &r.cells {
            let curve = out.entry((r.label(), method.clone())).or_default();
            curve.x.push(r.resolution);
            curve.mean.push(c.mean);
            curve.min.push(c.mean - c.std);
            curve.max.push(c.mean + c.std);
        }
    }
    out.into_iter()
        .map(|((model, method), c)| (format!("{model} {method}"), c))
        .collect()
}

/// The method name of plain training.
const BASELINE: &str = "baseline";

/// The validation curves of each (dataset, model, setting): stem, title, y label and one
/// line per method.
fn val_figures<'a>(data: &FigureData<'a>) -> Vec<(String, String, String, Vec<Line<'a>>)> {
    let mut out = Vec::new();
    for (curves, what) in [(data.val, "top-1"), (data.map50, "mAP50")] {
        for ((dataset, model, setting), by_method) in curves {
            let (mut stem, mut title) = (
                format!("{dataset}-{model}-val-{}", what.replace('-', "")),
                format!("{model} on {dataset}"),
            );
            if !setting.is_empty() {
                stem = format!("{stem}-{}", settings::slug(setting));
                title = format!("{title}, {setting}");
            }
            out.push((
                stem.to_lowercase(),
                format!("{title}: validation {what} per epoch"),
                format!("validation {what} (%)"),
                method_lines(by_method),
            ));
        }
    }
    out
}

/// A budget study: the gain against images seen, one line per model, the seeds' range as
/// a band, the baseline dashed at zero.
fn draw_study(path: &Path, svg: bool, study: &Study) -> PlotResult {
    let curves: Vec<(String, Curve)> = study.lines.iter().map(|l| (l.label(), l.curve())).collect();
    let xs = || curves.iter().flat_map(|(_, c)| c.x.iter().copied());
    let zero = Curve {
        x: vec![xs().min().unwrap_or(0), xs().max().unwrap_or(1)],
        mean: vec![0.0; 2],
        min: vec![0.0; 2],
        max: vec![0.0; 2],
    };
    let mut ls = marked(&curves);
    ls.push(Line {
        label: BASELINE.into(),
        color: RGBColor(90, 90, 90),
        dashed: true,
        markers: false,
        curve: &zero,
    });
    let what = format!("{} {}", study.metric.split(), study.metric.label());
    let title = format!(
        "{}: {} − baseline {what} against training budget",
        study.dataset, study.method
    );
    let y = format!("{} − baseline {what} (points)", study.method);
    let axes = ("training images seen (thousands)", y.as_str());
    let at = SeriesLabelPosition::LowerRight;
    render!(path, svg, SIZE, |area| draw_lines(
        &area, &title, axes, &ls, at
    ))
}

/// Draws every figure into `dir`; returns the files written.
pub fn figures(dir: &Path, data: &FigureData) -> Result<Vec<PathBuf>, AnalysisError> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| AnalysisError::write(dir, e))?;
    let mut written = Vec::new();
    let mut both = |stem: &str, draw: &dyn Fn(&Path, bool) -> PlotResult| {
        for svg in [false, true] {
            let path = dir.join(format!("{stem}.{}", if svg { "svg" } else { "png" }));
            draw(&path, svg).map_err(|e| AnalysisError::write(&path, e.to_string()))?;
            written.push(path);
        }
        Ok::<_, AnalysisError>(())
    };
    let lines = |path: &Path, svg: bool, title: &str, axes: (&str, &str), lines: &[Line]| {
        let at = SeriesLabelPosition::LowerRight;
        render!(path, svg, SIZE, |area| draw_lines(
            &area, title, axes, lines, at
        ))
    };
    for (stem, title, y, ls) in val_figures(data) {
        both(&stem, &|p, svg| lines(p, svg, &title, ("epoch", &y), &ls))?;
    }
    for (dataset, ls) in underfitting(data) {
        let title = format!("{dataset}: training vs validation top-1, smallest and largest net");
        both(&format!("{dataset}-underfitting"), &|p, svg| {
            lines(
                p,
                svg,
                &title,
                ("epoch", "top-1 (%), baseline training"),
                &ls,
            )
        })?;
    }
    for (stem, title, ls) in lr_figures(data) {
        both(&stem, &|p, svg| {
            let axes = (
                "learning rate per 128 images (x 1e-4)",
                "final validation top-1 (%)",
            );
            lines(p, svg, &title, axes, &ls)
        })?;
    }
    for (stem, title, ls) in fit_figures(data) {
        both(&stem, &|p, svg| {
            let axes = (
                "epoch",
                "top-1 (%): unaugmented training images, validation",
            );
            lines(p, svg, &title, axes, &ls)
        })?;
    }
    for t in data
        .tables
        .iter()
        .filter(|t| t.metric == Metric::Map50 && !t.rows.is_empty())
    {
        let curves = by_resolution(t);
        let ls = marked(&curves);
        let title = format!("{}: mAP50 against input resolution", t.dataset);
        both(&format!("{}-map50-vs-resolution", t.dataset), &|p, svg| {
            let axes = ("input resolution (px)", "validation mAP50 (%), mean ± std");
            lines(p, svg, &title, axes, &ls)
        })?;
    }
    for study in data.studies {
        both(&study.stem(), &|p, svg| draw_study(p, svg, study))?;
    }
    // A table whose runs all failed has no rows to draw (and no axis to draw them on).
    let drawable = |t: &&Table| !t.rows.is_empty();
    for t in data
        .tables
        .iter()
        .filter(|t| t.metric != Metric::Map50)
        .filter(drawable)
    {
        both(&format!("{}-top1-vs-macs", t.dataset), &|p, svg| {
            render!(p, svg, SIZE, |area| draw_macs(&area, t))
        })?;
    }
    for ((dataset, model, method, rest), ts) in data.trials {
        let mut stem = format!("{dataset}-{model}-{method}");
        let mut title = format!("{model} {method}");
        if !rest.is_empty() {
            stem = format!("{stem}-{}", settings::slug(rest));
            title = format!("{title}, {rest}");
        }
        let title = format!("{title}: every trial's validation top-1, rungs dashed");
        both(&format!("{}-halving", stem.to_lowercase()), &|p, svg| {
            render!(p, svg, SIZE, |area| draw_trials(
                &area, &title, ts, data.rungs
            ))
        })?;
    }
    for ((dataset, model, setting), t) in data.training {
        let mut title = format!("{model} on {dataset}: training loss");
        let mut stem = format!("{dataset}-{model}-training");
        if !setting.is_empty() {
            title = format!("{model} on {dataset}, {setting}: training loss");
            stem = format!("{stem}-{}", settings::slug(setting));
        }
        both(&stem.to_lowercase(), &|p, svg| {
            render!(p, svg, TRAINING_SIZE, |area| draw_training(
                &area, &title, t
            ))
        })?;
    }
    for t in data.tables.iter().filter(drawable) {
        both(&format!("{}-methods", t.dataset), &|p, svg| {
            render!(p, svg, SIZE, |area| draw_bars(&area, t))
        })?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn significant_digits_for_axis_labels() {
        let got: Vec<String> = [0.1234, 1.5, 23.51, 100.0, 300.8, 4090.0]
            .into_iter()
            .map(super::significant)
            .collect();
        assert_eq!(got, ["0.123", "1.5", "23.5", "100", "301", "4090"]);
    }
}
