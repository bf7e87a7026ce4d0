//! Paper-style tables: rows are models (with params, MACs, resolution and, where runs of
//! a dataset differ in more than method and seed, one column per key of that setting),
//! columns are
//! methods (mean ± std over seeds of the final val top-1, or of the final val mAP50 for
//! detection runs), plus the change against the baseline and, with a paper-results file,
//! the paper's number beside ours.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use polars::prelude::*;

use crate::error::AnalysisError;
use crate::runs::{floats, ints, strings};
use crate::settings;

/// The methods in the paper's column order; others follow alphabetically.
const METHOD_ORDER: &[&str] = &[
    "baseline",
    "netaug",
    "kd",
    "kd+netaug",
    "dropout",
    "mixup",
    "autoaugment",
    "randaugment",
    "dropblock",
];

/// What a table reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Final validation top-1 (classification runs).
    Top1,
    /// Final test top-1: classification runs with a validation split held out of
    /// training, whose test set is reported, never used to choose.
    TestTop1,
    /// Final validation mAP50 (detection runs).
    Map50,
}

impl Metric {
    /// The summary column.
    pub fn column(self) -> &'static str {
        match self {
            Self::Top1 => "final_val_top1",
            Self::TestTop1 => "final_test_top1",
            Self::Map50 => "final_val_map50",
        }
    }

    /// The name in headers and titles.
    pub fn label(self) -> &'static str {
        match self {
            Self::Top1 | Self::TestTop1 => "top-1",
            Self::Map50 => "mAP50",
        }
    }

    /// The images it is measured on: `validation` or `test`.
    pub fn split(self) -> &'static str {
        match self {
            Self::Top1 | Self::Map50 => "validation",
            Self::TestTop1 => "test",
        }
    }

    /// The name in CSV columns and paper-results files.
    pub fn key(self) -> &'static str {
        match self {
            // The paper reports its held-out set, whichever split ours is.
            Self::Top1 | Self::TestTop1 => "top1",
            Self::Map50 => "map50",
        }
    }
}

/// One method's result for one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// Mean of the metric (percent).
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub std: f64,
    /// Seeds.
    pub n: usize,
    /// Runs of the cell that failed (diverged or errored), left out of the mean.
    pub failed: usize,
}

/// One row: a model at a resolution, in one setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Model.
    pub model: String,
    /// Resolution.
    pub resolution: i64,
    /// What else the row's runs share and other rows of the dataset do not
    /// (`run.epochs=7; data.train_subset=5000`; empty if nothing).
    pub setting: String,
    /// Params of the target net.
    pub params: i64,
    /// MACs of the target net.
    pub macs: i64,
    /// Method -> result.
    pub cells: BTreeMap<String, Cell>,
    /// Method -> the paper's number.
    pub paper: BTreeMap<String, f64>,
}

/// The table of one dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// What the cells hold.
    pub metric: Metric,
    /// Dataset.
    pub dataset: String,
    /// Methods present, in column order.
    pub methods: Vec<String>,
    /// Rows.
    pub rows: Vec<Row>,
    /// The failed runs counted in the cells, by run id.
    pub failed_runs: Vec<String>,
}

/// Groups the finished runs that have `metric` by (dataset, model, resolution, setting,
/// method) with polars: its mean, std and count, the target net's params and MACs. Runs
/// share a group only if their configs differ in nothing but the seed.
pub fn aggregate(summary: &DataFrame, metric: Metric) -> PolarsResult<DataFrame> {
    let column = metric.column();
    let done = crate::runs::done_with(summary, column)?;
    let keys = ["dataset", "model", "resolution", "setting", "method"];
    let cols = grouped(
        &done,
        &keys,
        &[
            (column, Agg::Mean, "mean"),
            (column, Agg::Std, "std"),
            (column, Agg::Count, "n"),
            ("params", Agg::First, "params"),
            ("macs", Agg::First, "macs"),
        ],
    )?;
    cols.sort(keys, SortMultipleOptions::default())
}

/// An aggregation of [`grouped`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Agg {
    Mean,
    Std,
    Min,
    Max,
    Count,
    First,
}

/// `keys` and one column per `(source, aggregation, name)`, one row per group, with
/// polars' eager group-by. (Its lazy engine would bring an async and cloud-storage stack
/// into every build; these aggregations are all a report needs.)
#[allow(deprecated)]
pub(crate) fn grouped(
    df: &DataFrame,
    keys: &[&str],
    aggs: &[(&str, Agg, &str)],
) -> PolarsResult<DataFrame> {
    let mut out: Option<DataFrame> = None;
    for &(source, agg, name) in aggs {
        // Stable groups: every aggregation sees the groups in the same order.
        let g = df.group_by_stable(keys.iter().copied())?.select([source]);
        let frame = match agg {
            Agg::Mean => g.mean()?,
            Agg::Std => g.std(1)?,
            Agg::Min => g.min()?,
            Agg::Max => g.max()?,
            Agg::Count => g.count()?,
            Agg::First => g.first()?,
        };
        let mut col = frame.columns()[keys.len()].clone();
        col.rename(name.into());
        out = Some(match out {
            None => {
                let mut base: Vec<Column> = frame.columns()[..keys.len()].to_vec();
                base.push(col);
                DataFrame::new_infer_height(base)?
            }
            Some(o) => o.hstack(&[col])?,
        });
    }
    out.ok_or_else(|| polars_err!(ComputeError: "no aggregations"))
}

/// A paper number: dataset, model, method, metric key (`top1`, `map50`), value.
pub type PaperValue = (String, String, String, String, f64);

/// The paper's numbers: `table,dataset,model,resolution,method,metric,value,note` rows.
pub fn read_paper(path: &Path) -> Result<Vec<PaperValue>, AnalysisError> {
    const NEEDED: [&str; 5] = ["dataset", "model", "method", "metric", "value"];
    let text = std::fs::read_to_string(path).map_err(|e| AnalysisError::file(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    // Columns by name, so that a file of other columns is refused, not silently ignored.
    let column = |name: &str| header.iter().position(|h| *h == name);
    let columns: Option<Vec<usize>> = NEEDED.iter().map(|n| column(n)).collect();
    let Some(columns) = columns else {
        return Err(AnalysisError::file(
            path,
            format!(
                "a paper-results CSV needs the columns {} (its header: `{}`)",
                NEEDED.join(", "),
                header.join(",")
            ),
        ));
    };
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let field = |k: usize| {
            f.get(columns[k]).copied().ok_or_else(|| {
                AnalysisError::file(path, format!("line {}: no `{}` column", i + 1, NEEDED[k]))
            })
        };
        let raw = field(4)?;
        let value = raw.trim().parse::<f64>().map_err(|_| {
            AnalysisError::file(path, format!("line {}: `{raw}` is not a number", i + 1))
        })?;
        out.push((
            field(0)?.to_string(),
            field(1)?.to_string(),
            field(2)?.to_string(),
            field(3)?.to_string(),
            value,
        ));
    }
    Ok(out)
}

/// Builds one table per dataset from the aggregate of `metric`.
pub fn tables(
    agg: &DataFrame,
    metric: Metric,
    paper: &[PaperValue],
) -> Result<Vec<Table>, AnalysisError> {
    let s = |name: &str| strings(agg, name);
    let i = |name: &str| ints(agg, name);
    let f = |name: &str| floats(agg, name);
    let (dataset, model, method) = (s("dataset")?, s("model")?, s("method")?);
    let setting = s("setting")?;
    let (resolution, params, macs, n) = (i("resolution")?, i("params")?, i("macs")?, i("n")?);
    let (mean, std) = (f("mean")?, f("std")?);

    let mut by_dataset: BTreeMap<String, Table> = BTreeMap::new();
    for k in 0..agg.height() {
        let t = by_dataset
            .entry(dataset[k].clone())
            .or_insert_with(|| Table::empty(metric, &dataset[k]));
        let row = t.row_mut(
            &method[k],
            (&model[k], resolution[k], &setting[k]),
            (params[k], macs[k]),
        );
        row.cells.insert(
            method[k].clone(),
            Cell {
                mean: mean[k].unwrap_or(f64::NAN),
                std: std[k].unwrap_or(0.0),
                n: n[k] as usize,
                failed: 0,
            },
        );
    }
    let mut out: Vec<Table> = by_dataset.into_values().collect();
    for t in &mut out {
        t.sort();
        for row in &mut t.rows {
            for (d, m, meth, key, v) in paper {
                if *d == t.dataset && *m == row.model && key == metric.key() {
                    row.paper.insert(meth.clone(), *v);
                }
            }
        }
    }
    Ok(out)
}

/// Counts the failed runs of `summary` into the tables of `metric`, creating the rows and
/// cells that have no finished run, and names them under their table. A failed run has no
/// metric; it belongs to the map50 table where its dataset's finished runs report mAP,
/// else to the top-1 table.
pub fn add_failed(
    tables: &mut Vec<Table>,
    summary: &DataFrame,
    metric: Metric,
) -> Result<(), AnalysisError> {
    let s = |name: &str| strings(summary, name);
    let (dataset, model, setting, method) =
        (s("dataset")?, s("model")?, s("setting")?, s("method")?);
    let (status, run_id) = (s("status")?, s("run_id")?);
    let (resolution, params, macs) = (
        ints(summary, "resolution")?,
        ints(summary, "params")?,
        ints(summary, "macs")?,
    );
    let map50 = floats(summary, Metric::Map50.column())?;
    // The datasets whose finished runs report mAP.
    let detection: std::collections::BTreeSet<&str> = (0..summary.height())
        .filter(|&k| map50[k].is_some_and(|v| !v.is_nan()))
        .map(|k| dataset[k].as_str())
        .collect();
    for k in 0..summary.height() {
        let belongs = match metric {
            Metric::Map50 => detection.contains(dataset[k].as_str()),
            Metric::Top1 | Metric::TestTop1 => !detection.contains(dataset[k].as_str()),
        };
        if status[k] != "failed" || !belongs {
            continue;
        }
        let pos = match tables.iter().position(|t| t.dataset == dataset[k]) {
            Some(p) => p,
            None => {
                tables.push(Table::empty(metric, &dataset[k]));
                tables.len() - 1
            }
        };
        let t = &mut tables[pos];
        t.failed_runs.push(run_id[k].clone());
        let row = t.row_mut(
            &method[k],
            (&model[k], resolution[k], &setting[k]),
            (params[k], macs[k]),
        );
        let cell = row.cells.entry(method[k].clone()).or_insert(Cell {
            mean: f64::NAN,
            std: 0.0,
            n: 0,
            failed: 0,
        });
        cell.failed += 1;
    }
    for t in tables.iter_mut() {
        t.sort();
    }
    Ok(())
}

fn macs_text(macs: i64) -> String {
    if macs >= 1_000_000_000 {
        format!("{:.2}G", macs as f64 / 1e9)
    } else {
        format!("{:.1}M", macs as f64 / 1e6)
    }
}

impl Row {
    /// The row's name in figures: the model, and its setting if it has one.
    pub fn label(&self) -> String {
        settings::label(&self.model, &self.setting)
    }
}

impl Table {
    /// A table of `dataset` without rows yet.
    fn empty(metric: Metric, dataset: &str) -> Self {
        Self {
            metric,
            dataset: dataset.to_string(),
            methods: Vec::new(),
            rows: Vec::new(),
            failed_runs: Vec::new(),
        }
    }

    /// The row of (model, resolution, setting), added with its (params, MACs) if new;
    /// `method` joins the table's columns.
    fn row_mut(
        &mut self,
        method: &str,
        (model, resolution, setting): (&str, i64, &str),
        (params, macs): (i64, i64),
    ) -> &mut Row {
        if !self.methods.iter().any(|m| m == method) {
            self.methods.push(method.to_string());
        }
        let pos = self
            .rows
            .iter()
            .position(|r| r.model == model && r.resolution == resolution && r.setting == setting);
        let pos = pos.unwrap_or_else(|| {
            self.rows.push(Row {
                model: model.to_string(),
                resolution,
                setting: setting.to_string(),
                params,
                macs,
                cells: BTreeMap::new(),
                paper: BTreeMap::new(),
            });
            self.rows.len() - 1
        });
        &mut self.rows[pos]
    }

    /// The table without the cells that only failed runs make (and rows left empty).
    pub fn finished(&self) -> Table {
        let mut t = self.clone();
        for r in &mut t.rows {
            r.cells.retain(|_, c| c.n > 0);
        }
        t.rows.retain(|r| !r.cells.is_empty());
        t.methods
            .retain(|m| t.rows.iter().any(|r| r.cells.contains_key(m)));
        t
    }

    /// Rows by model, resolution and setting; methods in the paper's order.
    fn sort(&mut self) {
        self.rows.sort_by(|a, b| {
            (&a.model, a.resolution)
                .cmp(&(&b.model, b.resolution))
                .then_with(|| settings::natural_cmp(&a.setting, &b.setting))
        });
        self.methods.sort_by_key(|m| {
            (
                METHOD_ORDER
                    .iter()
                    .position(|o| o == m)
                    .unwrap_or(METHOD_ORDER.len()),
                m.clone(),
            )
        });
    }

    /// The setting keys of the rows, in first-seen order: one column each.
    pub fn setting_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for r in &self.rows {
            for (k, _) in settings::pairs(&r.setting) {
                if !keys.iter().any(|x| x == k) {
                    keys.push(k.to_string());
                }
            }
        }
        keys
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let setting_keys = self.setting_keys();
        let mut head = vec!["model", "resolution"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        head.extend(setting_keys.iter().cloned());
        head.extend(["params".to_string(), "MACs".to_string()]);
        for m in &self.methods {
            head.push(format!("{m} {} (%)", self.metric.label()));
        }
        let others: Vec<&String> = self.methods.iter().filter(|m| *m != "baseline").collect();
        let has_base = self.methods.iter().any(|m| m == "baseline");
        if has_base {
            for m in &others {
                head.push(format!("Δ {m}"));
            }
        }
        let mut md = String::new();
        let _ = writeln!(md, "| {} |", head.join(" | "));
        let _ = writeln!(md, "|{}|", vec!["---"; head.len()].join("|"));
        for r in &self.rows {
            let mut cells = vec![r.model.clone(), r.resolution.to_string()];
            let pairs = settings::pairs(&r.setting);
            for k in &setting_keys {
                let v = pairs
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map_or("–", |(_, v)| *v);
                cells.push(v.to_string());
            }
            cells.extend([format!("{:.3}M", r.params as f64 / 1e6), macs_text(r.macs)]);
            for m in &self.methods {
                let mut text = match r.cells.get(m) {
                    Some(c) if c.n == 0 => format!("– (n=0, {} failed)", c.failed),
                    Some(c) if c.failed > 0 => format!(
                        "{:.2} ± {:.2} (n={}, {} failed)",
                        c.mean, c.std, c.n, c.failed
                    ),
                    Some(c) => format!("{:.2} ± {:.2} (n={})", c.mean, c.std, c.n),
                    None => "–".into(),
                };
                if let Some(p) = r.paper.get(m) {
                    let _ = write!(text, " [paper {p:.1}]");
                }
                cells.push(text);
            }
            if has_base {
                for m in &others {
                    cells.push(match (r.cells.get(*m), r.cells.get("baseline")) {
                        (Some(c), Some(b)) if c.n > 0 && b.n > 0 => {
                            format!("{:+.2}", c.mean - b.mean)
                        }
                        _ => "–".into(),
                    });
                }
            }
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        if !self.failed_runs.is_empty() {
            let _ = writeln!(
                md,
                "\nFailed runs, left out of the means (their `summary.json` says why): {}",
                self.failed_runs.join(", ")
            );
        }
        md
    }

    /// The table as CSV, one line per (model, method).
    pub fn csv(&self) -> String {
        let k = self.metric.key();
        let mut out = format!(
            "dataset,model,resolution,setting,params,macs,method,mean_{k},std_{k},seeds,delta_vs_baseline,paper_{k},failed\n"
        );
        let quote = |s: &str| {
            if s.contains([',', '"']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        for r in &self.rows {
            for m in &self.methods {
                let Some(c) = r.cells.get(m) else { continue };
                let number = |v: f64| {
                    if v.is_nan() {
                        String::new()
                    } else {
                        format!("{v:.4}")
                    }
                };
                let delta = r
                    .cells
                    .get("baseline")
                    .map_or(String::new(), |b| number(c.mean - b.mean));
                let paper = r.paper.get(m).map_or(String::new(), |p| p.to_string());
                let std = if c.n == 0 { f64::NAN } else { c.std };
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    self.dataset,
                    r.model,
                    r.resolution,
                    quote(&r.setting),
                    r.params,
                    r.macs,
                    quote(m),
                    number(c.mean),
                    number(std),
                    c.n,
                    delta,
                    paper,
                    c.failed
                );
            }
        }
        out
    }
}
