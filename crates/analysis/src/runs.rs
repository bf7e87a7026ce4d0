//! Run outputs into polars frames: one row per run (`summary.json`), one row per run
//! and epoch (`metrics.jsonl`) and one per run and logged step (`steps.jsonl`). Reads files only, so results copied from a cluster work.

use std::collections::BTreeMap;
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
    /// What the reader should know about the runs read: runs left out (still training),
    /// counted as failed (killed before their summary) or counted once (found twice).
    pub notes: Vec<String>,
}

/// Run folders under `dir`: `dir/runs/*` (a sweep), else `dir` itself if it is a run. A
/// sweep's run is one with a `summary.json`, or a `config.yaml` (a run that started).
pub fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    if dir.join("summary.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let runs = dir.join("runs");
    let entries = std::fs::read_dir(&runs).map_err(|e| AnalysisError::file(&runs, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("summary.json").is_file() || p.join(settings::CONFIG_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The summary of a run that started and ended without writing one (killed by SIGKILL, a
/// lost node): a failed run of its config's dataset, model, method and seed.
fn killed_summary(config: &Flat) -> Value {
    let get = |k: &str| config.get(k).map(String::as_str);
    let int = |k: &str| {
        get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_default()
    };
    serde_json::json!({
        "dataset": get("data.dataset").unwrap_or_default(),
        "model": get("model.name").unwrap_or_default(),
        "resolution": int("data.image_size"),
        "method": method_of(config),
        "epochs": int("run.epochs") + int("run.warmup_epochs"),
        "seed": int("run.seed"),
        "status": "failed",
        "error": "ended without a summary.json (killed)",
    })
}

/// The method a run's config names, as its summary would: the sections it has, joined
/// by `+` (`kd+netaug`, the regularizers by name), `baseline` when none.
fn method_of(config: &Flat) -> String {
    let set = |k: &str| config.get(k).is_some_and(|v| v != "null" && v != "false");
    let has = |section: &str| {
        let prefix = format!("{section}.");
        config
            .iter()
            .any(|(k, v)| k.starts_with(&prefix) && v != "null")
    };
    let mut parts: Vec<&str> = ["kd", "netaug"].into_iter().filter(|s| has(s)).collect();
    for r in [
        "dropout",
        "mixup",
        "autoaugment",
        "randaugment",
        "dropblock",
    ] {
        if set(&format!("regularization.{r}")) {
            parts.push(r);
        }
    }
    if parts.is_empty() {
        "baseline".into()
    } else {
        parts.join("+")
    }
}

/// The runs of `dirs` to report, each as its folder, summary and config, and notes on
/// the ones left out or counted differently: a run that is training now is left out; one
/// that ended without a summary counts as failed; a run found twice (the same config,
/// seed included: two copies of one sweep's folder) counts once.
fn read_runs(dirs: Vec<PathBuf>) -> Result<(Vec<ReadRun>, Vec<String>), AnalysisError> {
    let mut read = Vec::with_capacity(dirs.len());
    let mut notes = Vec::new();
    let mut seen: BTreeMap<Flat, PathBuf> = BTreeMap::new();
    for d in dirs {
        let path = d.join("summary.json");
        let config = settings::read_config(&d)?;
        let v: Value = if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| AnalysisError::file(&path, e))?;
            serde_json::from_str(&text).map_err(|e| AnalysisError::file(&path, e))?
        } else if netaug_fs::is_locked(&d.join(netaug_fs::RUN_LOCK_FILE)) {
            notes.push(format!("{}: still training, left out", d.display()));
            continue;
        } else {
            notes.push(format!(
                "{}: ended without a summary.json (killed), counted as failed",
                d.display()
            ));
            killed_summary(&config)
        };
        if !config.is_empty() {
            // The summary's names too: a config need not name everything (tests' do not).
            let mut identity = config.clone();
            for k in ["dataset", "model", "resolution", "method", "seed"] {
                identity.insert(format!("summary.{k}"), v[k].to_string());
            }
            if let Some(first) = seen.get(&identity) {
                notes.push(format!(
                    "{}: the same config and seed as {}, counted once",
                    d.display(),
                    first.display()
                ));
                continue;
            }
            seen.insert(identity, d.clone());
        }
        read.push((d, v, config));
    }
    Ok((read, notes))
}

/// A run folder, its summary and its config.
type ReadRun = (PathBuf, Value, Flat);

/// Loads every run under `dir` (see [`read_runs`] for the runs left out).
pub fn load(dir: &Path) -> Result<Runs, AnalysisError> {
    let (runs, notes) = read_runs(run_dirs(dir)?)?;
    if runs.is_empty() {
        return Err(AnalysisError::Empty(dir.to_path_buf()));
    }
    let (dirs, read): (Vec<PathBuf>, Vec<(Value, Flat)>) =
        runs.into_iter().map(|(d, v, c)| (d, (v, c))).unzip();
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
        // Seeds are u64 (a seed past i64::MAX is a seed, not 0).
        let seed = v["seed"].as_u64().unwrap_or_default();
        s.seed.push(seed);
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
            seed,
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
        notes,
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
    seed: Vec<u64>,
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
    seed: u64,
    status: &'a str,
}

/// A frame of run lines (metrics, steps): run_id, dataset, model, setting, method, seed,
/// the integer `x` (epoch, step), the numbers `keys` (NaN where a line lacks one), status.
struct LineCols {
    x: &'static str,
    keys: &'static [&'static str],
    names: [Vec<String>; 5],
    seed: Vec<u64>,
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

/// The values of unsigned integer column `name` (seeds) as u64 (missing: 0).
pub(crate) fn uints(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let c = df.column(name)?.cast(&DataType::UInt64)?;
    let ca = c.u64()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default())
        .collect())
}

/// The values of integer column `name` as i64 (missing: 0).
pub(crate) fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    let ca = c.i64()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run folder `dir/runs/<id>` with a config of `seed` (and `extra` YAML), and a
    /// summary unless `summary` is `None`.
    fn run(dir: &Path, id: &str, seed: u64, extra: &str, summary: Option<&str>) -> PathBuf {
        let d = dir.join("runs").join(id);
        std::fs::create_dir_all(&d).unwrap();
        let config = format!(
            "data:\n  dataset: fashion-mnist\n  image_size: 16\nmodel:\n  name: mbv2-0.1\n\
             run:\n  epochs: 3\n  warmup_epochs: 1\n  base_lr: 0.1\n  seed: {seed}\n{extra}"
        );
        std::fs::write(d.join(settings::CONFIG_FILE), config).unwrap();
        std::fs::write(d.join("metrics.jsonl"), "{\"epoch\":1,\"val_top1\":50.0}\n").unwrap();
        if let Some(status) = summary {
            let s = serde_json::json!({
                "dataset": "fashion-mnist", "model": "mbv2-0.1", "resolution": 16,
                "method": "baseline", "epochs": 4, "seed": seed, "params": 10, "macs": 100,
                "final_val_top1": 50.0, "status": status,
            });
            std::fs::write(d.join("summary.json"), s.to_string()).unwrap();
        }
        d
    }

    #[test]
    fn killed_runs_count_as_failed_copies_count_once_and_large_seeds_keep_their_value() {
        let dir = tempfile::tempdir().unwrap();
        let a = run(dir.path(), "a-s0", 0, "", Some("done"));
        // The same run copied under another name (two copies of one sweep's folder).
        let copy = dir.path().join("runs/b-s0");
        std::fs::create_dir_all(&copy).unwrap();
        for f in [settings::CONFIG_FILE, "summary.json", "metrics.jsonl"] {
            std::fs::copy(a.join(f), copy.join(f)).unwrap();
        }
        // Killed by SIGKILL after its first epoch: a config and metrics, no summary.
        run(
            dir.path(),
            "c-s1",
            1,
            "netaug:\n  aug_width_mult_list: [1.0, 2.0]\n",
            None,
        );
        // Training now: it holds its lock.
        let live = run(dir.path(), "d-s2", 2, "", None);
        let lock = std::fs::File::create(live.join(netaug_fs::RUN_LOCK_FILE)).unwrap();
        lock.lock().unwrap();
        // A seed past i64::MAX.
        run(dir.path(), "e-big", u64::MAX, "", Some("done"));

        let runs = load(dir.path()).unwrap();
        let ids = strings(&runs.summary, "run_id").unwrap();
        assert_eq!(ids, ["a-s0", "c-s1", "e-big"], "{:?}", runs.notes);
        let status = strings(&runs.summary, "status").unwrap();
        assert_eq!(status, ["done", "failed", "done"]);
        let method = strings(&runs.summary, "method").unwrap();
        assert_eq!(method[1], "netaug");
        assert_eq!(uints(&runs.summary, "seed").unwrap(), [0, 1, u64::MAX]);
        assert_eq!(ints(&runs.summary, "epochs").unwrap()[1], 4);
        assert_eq!(runs.notes.len(), 3, "{:?}", runs.notes);
        assert!(
            runs.notes
                .iter()
                .any(|n| n.contains("b-s0") && n.contains("once"))
        );
        assert!(
            runs.notes
                .iter()
                .any(|n| n.contains("c-s1") && n.contains("failed"))
        );
        assert!(
            runs.notes
                .iter()
                .any(|n| n.contains("d-s2") && n.contains("training"))
        );
        drop(lock);
        // Once its process is gone, the run that held the lock counts as failed too.
        let runs = load(dir.path()).unwrap();
        assert_eq!(runs.summary.height(), 4);
    }
}

#[cfg(test)]
mod long_names {
    #[test]
    fn runs_apart_by_a_long_data_root_report_with_file_names_that_fit() {
        let dir = tempfile::tempdir().unwrap();
        for (i, end) in ["a", "b"].iter().enumerate() {
            let d = dir.path().join(format!("runs/r{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let root = format!("/{}{end}", "a-long-folder-name/".repeat(20));
            let config = format!(
                "data:\n  dataset: fashion-mnist\n  root: {root}\n  image_size: 16\n\
                 model:\n  name: mbv2-0.1\nrun:\n  seed: 0\n"
            );
            std::fs::write(d.join("config.yaml"), config).unwrap();
            let s = serde_json::json!({
                "dataset": "fashion-mnist", "model": "mbv2-0.1", "resolution": 16,
                "method": "baseline", "epochs": 2, "seed": 0, "params": 10, "macs": 100,
                "final_val_top1": 50.0 + i as f64, "status": "done",
            });
            std::fs::write(d.join("summary.json"), s.to_string()).unwrap();
            let line = format!(
                "{{\"epoch\":1,\"val_top1\":{},\"train_top1\":40.0}}\n",
                50 + i
            );
            std::fs::write(d.join("metrics.jsonl"), line).unwrap();
        }
        // It used to end in "File name too long" (exit 1).
        let r = crate::report(dir.path(), None).unwrap();
        assert!(r.files.iter().all(|f| f.file_name().unwrap().len() <= 255));
        assert!(r.files.len() > 2, "{:?}", r.files);
    }
}
