//! netaug-analysis: a results folder (a sweep's `runs/*/summary.json` and
//! `metrics.jsonl`) into `summary.csv`, paper-style tables and figures. It reads files
//! only, never trainer types, so results copied from a cluster report anywhere.
#![warn(missing_docs)]

pub mod budget;
pub mod choice;
pub mod error;
pub mod plot;
pub mod runs;
pub mod settings;
pub mod synthetic;
pub mod table;

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
    let mut files = Vec::new();
    let csv_path = dir.join("summary.csv");
    std::fs::write(&csv_path, runs::to_csv(&runs.summary)?)
        .map_err(|e| AnalysisError::write(&csv_path, e))?;
    files.push(csv_path);

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
    let tdir = dir.join("tables");
    std::fs::create_dir_all(&tdir).map_err(|e| AnalysisError::write(&tdir, e))?;
    let mut markdown = Vec::new();
    for t in &tables {
        let md = format!(
            "# {}: final {} {}\n\n{}",
            t.dataset,
            t.metric.split(),
            t.metric.label(),
            t.markdown()
        );
        let path = tdir.join(format!("{}.md", t.dataset));
        std::fs::write(&path, &md).map_err(|e| AnalysisError::write(&path, e))?;
        let csv = tdir.join(format!("{}.csv", t.dataset));
        std::fs::write(&csv, t.csv()).map_err(|e| AnalysisError::write(&csv, e))?;
        files.extend([path, csv]);
        markdown.push(md);
    }
    // Where methods ran over a learning-rate grid: each at the rate its validation
    // numbers choose, the test set reported there; budget studies pair those runs.
    let choices = choice::choices(&runs.summary)?;
    let mut by_dataset: std::collections::BTreeMap<&str, Vec<&choice::Choice>> = Default::default();
    for c in &choices {
        by_dataset.entry(c.dataset.as_str()).or_default().push(c);
    }
    for (dataset, cs) in &by_dataset {
        let md = format!(
            "# {dataset}: each method at its own learning rate\n\n\
             The rate is the one with the best mean final validation top-1 (validation \
             images held out of the training set); test top-1 is reported at that rate only.\n\n{}",
            choice::markdown(cs)
        );
        let path = tdir.join(format!("{dataset}-lr-choice.md"));
        std::fs::write(&path, &md).map_err(|e| AnalysisError::write(&path, e))?;
        let csv = tdir.join(format!("{dataset}-lr-choice.csv"));
        std::fs::write(&csv, choice::csv(cs)).map_err(|e| AnalysisError::write(&csv, e))?;
        files.extend([path, csv]);
        markdown.insert(0, md);
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
    // The figures draw each method once: at its chosen rate, on the test set if any.
    let mut figure_tables = Vec::new();
    if choices.is_empty() && !has_test {
        // Figures draw what finished; failed runs are counted in the tables only.
        figure_tables = tables.iter().map(table::Table::finished).collect();
    } else {
        for metric in [top1, Metric::Map50] {
            let agg = table::aggregate(&chosen, metric)?;
            figure_tables.extend(table::tables(&agg, metric, &paper)?);
        }
    }
    for study in &studies {
        let md = format!(
            "# {}: {} − baseline final {} {} against training budget\n\n{}",
            study.dataset,
            study.method,
            study.metric.split(),
            study.metric.label(),
            study.markdown()
        );
        let path = tdir.join(format!("{}.md", study.stem()));
        std::fs::write(&path, &md).map_err(|e| AnalysisError::write(&path, e))?;
        let csv = tdir.join(format!("{}.csv", study.stem()));
        std::fs::write(&csv, study.csv()).map_err(|e| AnalysisError::write(&csv, e))?;
        files.extend([path, csv]);
        markdown.push(md);
    }

    let val = plot::curves(&runs.metrics, "val_top1")?;
    let train = plot::curves(&runs.metrics, "train_top1")?;
    let train_eval = plot::curves(&runs.metrics, "train_eval_top1")?;
    let map50 = plot::curves(&runs.metrics, "val_map50")?;
    let params = plot::params(&runs.summary)?;
    let training = plot::training_curves(&runs.steps, &runs.metrics)?;
    let data = plot::FigureData {
        val: &val,
        train: &train,
        map50: &map50,
        params: &params,
        tables: &figure_tables,
        studies: &studies,
        training: &training,
        choices: &choices,
        train_eval: &train_eval,
    };
    files.extend(plot::figures(&dir.join("plots"), &data)?);
    Ok(Report {
        runs: runs.summary.height(),
        files,
        tables: markdown,
    })
}
