//! Run outputs into polars frames: one row per run (`summary.json`), one row per run
//! and epoch (`metrics.jsonl`) and one per run and logged step (`steps.jsonl`). Reads files only, so results copied from a cluster work.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::Value;

use crate::error::AnalysisError;
use crate::settings::{self, Flat, RunKey};

/// The runs of a results folder.
pub struct Runs {
    /// One row per run: run_id, dataset, model, resolution, setting (what else tells the
    /// run apart from its dataset's other runs, see [`settings`]), method (with its
    /// varying own keys), epochs, epochs_trained (its metrics lines: fewer than `epochs`
    /// for a run stopped early), train_images (per epoch; null if unknown), seed,
    /// params, macs, best_val_top1, final_val_top1, final_val_top5, final_test_top1,
    /// final_test_top5 (classification; test with `data.val_split`), base_lr,
    /// best_val_map50, final_val_map50, final_val_map (detection; NaN where a run does not
    /// have them), wall_seconds, images_per_second, status.
    pub summary: DataFrame,
    /// One row per run and epoch: run_id, dataset, model, setting, method, seed, epoch,
    /// train_loss,
    /// train_top1, val_loss, val_top1, val_top5, train_eval_top1, test_top1, val_map50,
    /// val_map, lr, status (of the run).
    pub metrics: DataFrame,
    /// One row per run and logged step (`steps.jsonl`, where a run has one): run_id,
    /// dataset, model, setting, method, seed, step, train_loss, lr, status (of the run).
    pub steps: DataFrame,
}

/// Run folders under `dir`: `dir/runs/*` (a sweep), else `dir` itself if it is a run.
pub fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    if dir.join("summary.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let runs = dir.join("runs");
    let entries = std::fs::read_dir(&runs).map_err(|e| AnalysisError::file(&runs, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Loads every run under `dir`.
pub fn load(dir: &Path) -> Result<Runs, AnalysisError> {
    let dirs = run_dirs(dir)?;
    if dirs.is_empty() {
        return Err(AnalysisError::Empty(dir.to_path_buf()));
    }
    let mut read = Vec::with_capacity(dirs.len());
    for d in &dirs {
        let path = d.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| AnalysisError::file(&path, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| AnalysisError::file(&path, e))?;
        read.push((v, settings::read_config(d)?));
    }
    let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or_default();
    let names: Vec<[String; 3]> = read
        .iter()
        .map(|(v, _)| {
            [
                str_of(v, "dataset"),
                str_of(v, "model"),
                str_of(v, "method"),
            ]
        })
        .collect();
    let keys: Vec<RunKey> = read
        .iter()
        .zip(&names)
        .map(|((v, config), [dataset, model, method])| RunKey {
            dataset,
            model,
            resolution: int(v, "resolution"),
            method,
            config,
        })
        .collect();
    let identities = settings::identify(&keys);

    let mut s = SummaryCols::default();
    let mut m = LineCols::new("epoch", METRIC_KEYS);
    let mut st = LineCols::new("step", STEP_KEYS);
    for ((d, (v, config)), id) in dirs.iter().zip(&read).zip(&identities) {
        let str_of = |k: &str| str_of(v, k);
        let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let int = |k: &str| int(v, k);
        let run_id = d
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        s.run_id.push(run_id.clone());
        s.dataset.push(str_of("dataset"));
        s.model.push(str_of("model"));
        s.setting.push(id.setting.clone());
        s.method.push(id.method.clone());
        s.status.push(str_of("status"));
        s.resolution.push(int("resolution"));
        s.epochs.push(int("epochs"));
        s.train_images.push(train_images(v, config));
        s.seed.push(int("seed"));
        s.params.push(int("params"));
        s.macs.push(int("macs"));
        s.best_val_top1.push(num("best_val_top1"));
        s.final_val_top1.push(num("final_val_top1"));
        s.final_val_top5.push(num("final_val_top5"));
        s.final_test_top1.push(num("final_test_top1"));
        s.final_test_top5.push(num("final_test_top5"));
        s.base_lr.push(
            config
                .get(settings::LR_KEY)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN),
        );
        s.best_val_map50.push(num("best_val_map50"));
        s.final_val_map50.push(num("final_val_map50"));
        s.final_val_map.push(num("final_val_map"));
        s.wall_seconds.push(num("wall_seconds"));
        s.images_per_second.push(num("images_per_second"));

        let run = RunOfLine {
            run_id: &run_id,
            dataset: &str_of("dataset"),
            model: &str_of("model"),
            setting: &id.setting,
            method: &id.method,
            seed: int("seed"),
            status: &str_of("status"),
        };
        let lines = json_lines(&d.join("metrics.jsonl"))?;
        s.epochs_trained.push(lines.len() as i64);
        for e in &lines {
            m.push(&run, e);
        }
        for e in json_lines(&d.join("steps.jsonl"))? {
            st.push(&run, &e);
        }
    }
    Ok(Runs {
        summary: s.frame()?,
        metrics: m.frame()?,
        steps: st.frame()?,
    })
}

/// The objects of a JSON-lines file of a run. A run that has not reached its first line
/// has no file yet; a file that exists but cannot be read (or is not text) is an error,
/// never an empty history.
fn json_lines(path: &Path) -> Result<Vec<Value>, AnalysisError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AnalysisError::file(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|err| AnalysisError::file(path, format!("line {}: {err}", i + 1)))
        })
        .collect()
}

/// Training images per epoch: the summary's count, else (runs written before it was
/// recorded) the config's `data.train_subset`.
fn train_images(summary: &Value, config: &Flat) -> Option<i64> {
    summary["train_images"].as_i64().or_else(|| {
        config
            .get("data.train_subset")
            .and_then(|v| v.parse::<i64>().ok())
    })
}

#[derive(Default)]
struct SummaryCols {
    run_id: Vec<String>,
    dataset: Vec<String>,
    model: Vec<String>,
    setting: Vec<String>,
    method: Vec<String>,
    status: Vec<String>,
    resolution: Vec<i64>,
    epochs: Vec<i64>,
    epochs_trained: Vec<i64>,
    train_images: Vec<Option<i64>>,
    seed: Vec<i64>,
    params: Vec<i64>,
    macs: Vec<i64>,
    best_val_top1: Vec<f64>,
    final_val_top1: Vec<f64>,
    final_val_top5: Vec<f64>,
    final_test_top1: Vec<f64>,
    final_test_top5: Vec<f64>,
    base_lr: Vec<f64>,
    best_val_map50: Vec<f64>,
    final_val_map50: Vec<f64>,
    final_val_map: Vec<f64>,
    wall_seconds: Vec<f64>,
    images_per_second: Vec<f64>,
}

impl SummaryCols {
    fn frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("run_id".into(), self.run_id),
            Column::new("dataset".into(), self.dataset),
            Column::new("model".into(), self.model),
            Column::new("resolution".into(), self.resolution),
            Column::new("setting".into(), self.setting),
            Column::new("method".into(), self.method),
            Column::new("epochs".into(), self.epochs),
            Column::new("epochs_trained".into(), self.epochs_trained),
            Column::new("train_images".into(), self.train_images),
            Column::new("seed".into(), self.seed),
            Column::new("params".into(), self.params),
            Column::new("macs".into(), self.macs),
            Column::new("best_val_top1".into(), self.best_val_top1),
            Column::new("final_val_top1".into(), self.final_val_top1),
            Column::new("final_val_top5".into(), self.final_val_top5),
            Column::new("final_test_top1".into(), self.final_test_top1),
            Column::new("final_test_top5".into(), self.final_test_top5),
            Column::new("base_lr".into(), self.base_lr),
            Column::new("best_val_map50".into(), self.best_val_map50),
            Column::new("final_val_map50".into(), self.final_val_map50),
            Column::new("final_val_map".into(), self.final_val_map),
            Column::new("wall_seconds".into(), self.wall_seconds),
            Column::new("images_per_second".into(), self.images_per_second),
            Column::new("status".into(), self.status),
        ])
    }
}

/// The numbers of a `metrics.jsonl` line that its frame keeps.
const METRIC_KEYS: &[&str] = &[
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "train_eval_top1",
    "test_top1",
    "val_map50",
    "val_map",
    "lr",
];
/// The numbers of a `steps.jsonl` line that its frame keeps.
const STEP_KEYS: &[&str] = &["train_loss", "lr"];

/// What names a run on each of its lines.
struct RunOfLine<'a> {
    run_id: &'a str,
    dataset: &'a str,
    model: &'a str,
    setting: &'a str,
    method: &'a str,
    seed: i64,
    status: &'a str,
}

/// A frame of run lines (metrics, steps): run_id, dataset, model, setting, method, seed,
/// the integer `x` (epoch, step), the numbers `keys` (NaN where a line lacks one), status.
struct LineCols {
    x: &'static str,
    keys: &'static [&'static str],
    names: [Vec<String>; 5],
    seed: Vec<i64>,
    xs: Vec<i64>,
    values: Vec<Vec<f64>>,
    status: Vec<String>,
}

impl LineCols {
    fn new(x: &'static str, keys: &'static [&'static str]) -> Self {
        Self {
            x,
            keys,
            names: Default::default(),
            seed: Vec::new(),
            xs: Vec::new(),
            values: vec![Vec::new(); keys.len()],
            status: Vec::new(),
        }
    }

    fn push(&mut self, run: &RunOfLine, line: &Value) {
        let names = [run.run_id, run.dataset, run.model, run.setting, run.method];
        for (col, v) in self.names.iter_mut().zip(names) {
            col.push(v.to_string());
        }
        self.seed.push(run.seed);
        self.xs.push(line[self.x].as_i64().unwrap_or_default());
        for (col, key) in self.values.iter_mut().zip(self.keys) {
            col.push(line[*key].as_f64().unwrap_or(f64::NAN));
        }
        self.status.push(run.status.to_string());
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        let mut columns: Vec<Column> = ["run_id", "dataset", "model", "setting", "method"]
            .into_iter()
            .zip(self.names)
            .map(|(name, values)| Column::new(name.into(), values))
            .collect();
        columns.push(Column::new("seed".into(), self.seed));
        columns.push(Column::new(self.x.into(), self.xs));
        for (key, values) in self.keys.iter().zip(self.values) {
            columns.push(Column::new((*key).into(), values));
        }
        columns.push(Column::new("status".into(), self.status));
        DataFrame::new_infer_height(columns)
    }
}

/// The rows of runs that finished (status done).
pub fn done(df: &DataFrame) -> PolarsResult<DataFrame> {
    let mask = df.column("status")?.str()?.equal("done");
    df.filter(&mask)
}

/// The rows of finished runs that have a (non-NaN) value in `column`: classification or
/// detection rows, by the metric asked for.
pub fn done_with(df: &DataFrame, column: &str) -> PolarsResult<DataFrame> {
    let done = done(df)?;
    let mask = done.column(column)?.f64()?.is_not_nan();
    done.filter(&mask)
}

/// A frame as CSV (header, then one line per row; strings quoted when they need it).
pub fn to_csv(df: &DataFrame) -> PolarsResult<String> {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let names: Vec<String> = df.get_column_names().iter().map(|n| quote(n)).collect();
    let mut out = names.join(",");
    out.push('\n');
    let columns = df.columns();
    for i in 0..df.height() {
        let mut cells = Vec::with_capacity(columns.len());
        for c in columns {
            cells.push(match c.get(i)? {
                AnyValue::Null => String::new(),
                AnyValue::String(s) => quote(s),
                AnyValue::StringOwned(s) => quote(&s),
                AnyValue::Float64(v) if v.is_nan() => String::new(),
                other => other.to_string(),
            });
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// The values of string column `name`.
pub(crate) fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    let ca = df.column(name)?.str()?.clone();
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_string())
        .collect())
}

/// The values of numeric column `name` as f64 (missing: None).
pub(crate) fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    let ca = c.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i)).collect())
}

/// The values of integer column `name` as i64 (missing: 0).
pub(crate) fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    let ca = c.i64()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default())
        .collect())
}
