//! netaug-analysis: a results folder (a sweep's `runs/*/summary.json` and
//! `metrics.jsonl`) into `summary.csv`, paper-style tables and figures. It reads files
//! only, never trainer types, so results copied from a cluster report anywhere.
#![warn(missing_docs)]

mod budget;
mod choice;
mod curve;
mod error;
mod halving;
pub mod plot;
pub mod runs;
mod settings;
pub mod synthetic;
mod table;

use std::path::{Path, PathBuf};

pub use error::AnalysisError;
pub use table::Metric;

/// What a report wrote.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Runs read.
    pub runs: usize,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// The Markdown tables, one per dataset.
    pub tables: Vec<String>,
    /// Runs left out, counted as failed or counted once, and why.
    pub notes: Vec<String>,
}

/// Writes `summary.csv`, `tables/<dataset>.md|csv` and `plots/*.png|svg` into `dir`, with
/// the paper's numbers from `paper` (a paper-results CSV) beside ours; where methods ran
/// over a learning-rate grid, each method's validation-chosen rate and its test top-1
/// there (`tables/<dataset>-lr-choice.*`, `plots/*-val-vs-lr.*`, `plots/*-train-vs-val.*`);
/// where a method and the baseline ran at two or more training budgets, also its gain
/// against the budget, each at its chosen rate if there is a grid
/// (`tables/` and `plots/<dataset>-<method>-gain-vs-budget.*`).
pub fn report(dir: &Path, paper: Option<&Path>) -> Result<Report, AnalysisError> {
    let runs = runs::load(dir)?;
    let csv_path = dir.join("summary.csv");
    write(&csv_path, runs::to_csv(&runs.summary)?)?;
    let mut out = Written::new(dir.join("tables"), csv_path)?;
    let paper = match paper {
        Some(p) => table::read_paper(p)?,
        None => Vec::new(),
    };
    let mut tables = Vec::new();
    for metric in [Metric::Top1, Metric::Map50] {
        let agg = table::aggregate(&runs.summary, metric)?;
        let mut of_metric = table::tables(&agg, metric, &paper)?;
        table::add_failed(&mut of_metric, &runs.summary, metric)?;
        tables.extend(of_metric);
    }
    for t in &tables {
        let (split, label) = (t.metric.split(), t.metric.label());
        let md = format!("# {}: final {split} {label}\n\n{}", t.dataset, t.markdown());
        out.table(&t.dataset, md, t.csv(), false)?;
    }
    // Where methods ran over a learning-rate grid: each at the rate its validation
    // numbers choose, the test set reported there; budget studies pair those runs.
    let choices = choice::choices(&runs.summary)?;
    let mut by_dataset: std::collections::BTreeMap<&str, Vec<&choice::Choice>> = Default::default();
    for c in &choices {
        by_dataset.entry(c.dataset.as_str()).or_default().push(c);
    }
    let spent = halving::spent(&runs.summary)?;
    let spent_line = spent.map_or_else(String::new, |s| {
        format!(
            "{} A rate stopped early is listed with the epoch it reached, never chosen.\n\n",
            s.line()
        )
    });
    for (dataset, cs) in &by_dataset {
        let md = format!(
            "# {dataset}: each method at its own learning rate\n\n\
             The rate is the one with the best mean final validation top-1 (validation \
             images held out of the training set); test top-1 is reported at that rate only.\n\n{spent_line}{}",
            choice::markdown(cs)
        );
        out.table(&format!("{dataset}-lr-choice"), md, choice::csv(cs), true)?;
    }
    let chosen = if choices.is_empty() {
        runs.summary.clone()
    } else {
        choice::at_chosen(&runs.summary, &choices)?
    };
    // Where a test set is reported beside the validation split, the gains and the
    // figures compare test numbers (the validation numbers chose the rate).
    let has_test = runs::floats(&chosen, Metric::TestTop1.column())?
        .iter()
        .any(|v| v.is_some_and(f64::is_finite));
    let top1 = if has_test {
        Metric::TestTop1
    } else {
        Metric::Top1
    };
    let mut studies = Vec::new();
    for metric in [top1, Metric::Map50] {
        studies.extend(budget::studies(&chosen, metric)?);
    }
    for study in &studies {
        let (split, label) = (study.metric.split(), study.metric.label());
        let md = format!(
            "# {}: {} − baseline final {split} {label} against training budget\n\n{}",
            study.dataset,
            study.method,
            study.markdown()
        );
        out.table(&study.stem(), md, study.csv(), false)?;
    }
    // The figures draw each method once: at its chosen rate, on the test set if any.
    let figure_tables = if choices.is_empty() && !has_test {
        // Figures draw what finished; failed runs are counted in the tables only.
        tables.iter().map(table::Table::finished).collect()
    } else {
        let mut of_chosen = Vec::new();
        for metric in [top1, Metric::Map50] {
            let agg = table::aggregate(&chosen, metric)?;
            of_chosen.extend(table::tables(&agg, metric, &paper)?);
        }
        of_chosen
    };
    let plots = figures(dir, &runs, &figure_tables, &studies, &choices)?;
    out.files.extend(plots);
    Ok(Report {
        runs: runs.summary.height(),
        files: out.files,
        tables: out.markdown,
        notes: runs.notes,
    })
}

/// Draws every figure of a report into `dir/plots`.
fn figures(
    dir: &Path,
    runs: &runs::Runs,
    tables: &[table::Table],
    studies: &[budget::Study],
    choices: &[choice::Choice],
) -> Result<Vec<PathBuf>, AnalysisError> {
    let val = curve::curves(&runs.metrics, "val_top1")?;
    let train = curve::curves(&runs.metrics, "train_top1")?;
    let train_eval = curve::curves(&runs.metrics, "train_eval_top1")?;
    let map50 = curve::curves(&runs.metrics, "val_map50")?;
    let params = plot::params(&runs.summary)?;
    let training = plot::training_curves(&runs.steps, &runs.metrics)?;
    let trials = halving::trials(&runs.metrics)?;
    let rungs = halving::rungs(dir);
    let data = plot::FigureData {
        trials: &trials,
        rungs: &rungs,
        val: &val,
        train: &train,
        map50: &map50,
        params: &params,
        tables,
        studies,
        training: &training,
        choices,
        train_eval: &train_eval,
    };
    plot::figures(&dir.join("plots"), &data)
}

/// Writes `bytes` to `path`, naming it on failure.
fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), AnalysisError> {
    std::fs::write(path, bytes).map_err(|e| AnalysisError::write(path, e))
}

/// The table files a report writes, and their Markdown in report order.
struct Written {
    dir: PathBuf,
    files: Vec<PathBuf>,
    markdown: Vec<String>,
}

impl Written {
    /// Creates the tables folder; `first` is a file already written.
    fn new(dir: PathBuf, first: PathBuf) -> Result<Self, AnalysisError> {
        std::fs::create_dir_all(&dir).map_err(|e| AnalysisError::write(&dir, e))?;
        Ok(Self {
            dir,
            files: vec![first],
            markdown: Vec::new(),
        })
    }

    /// Writes `<stem>.md` and `<stem>.csv`; `front` puts the Markdown first in the report.
    fn table(
        &mut self,
        stem: &str,
        md: String,
        csv: String,
        front: bool,
    ) -> Result<(), AnalysisError> {
        let (path, csv_path) = (
            self.dir.join(format!("{stem}.md")),
            self.dir.join(format!("{stem}.csv")),
        );
        write(&path, &md)?;
        write(&csv_path, csv)?;
        self.files.extend([path, csv_path]);
        if front {
            self.markdown.insert(0, md);
        } else {
            self.markdown.push(md);
        }
        Ok(())
    }
}
