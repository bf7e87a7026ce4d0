//! `netaug data info`: checks a dataset layout before a long run.

use std::path::PathBuf;

use anyhow::Result;
use netaug_data::dataset::{self, FASHION_MNIST_ROOT};
use netaug_data::{Dataset, OpenOptions};
use serde_json::{Map, Value, json};

use crate::UsageError;

/// `netaug data ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Open a dataset and print its classes and split sizes.
    #[command(
        after_help = "Examples:\n  netaug data info --dataset food101 --root /data/food-101\n  \
                            netaug data info --dataset fashion-mnist --json"
    )]
    Info(Source),
}

/// Which dataset, where.
#[derive(clap::Args, Clone)]
pub struct Source {
    /// folder, food101, flowers102, cars, cub200, pets or fashion-mnist.
    #[arg(long)]
    pub dataset: String,
    /// The folder the archives were extracted into, or the dataset's own folder
    /// (fashion-mnist default: /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Flowers102: train on train + val.
    #[arg(long)]
    pub flowers_train_val: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Source {
    /// Opens the dataset; a bad name or layout is a usage error (exit 2).
    pub fn open(&self) -> Result<Dataset> {
        let root = match (&self.root, self.dataset.as_str()) {
            (Some(r), _) => r.clone(),
            (None, "fashion-mnist") => PathBuf::from(FASHION_MNIST_ROOT),
            (None, _) => {
                return Err(UsageError(format!(
                    "--root is required for dataset `{}`",
                    self.dataset
                ))
                .into());
            }
        };
        let opts = OpenOptions {
            flowers_train_val: self.flowers_train_val,
        };
        dataset::open(&self.dataset, &root, &opts).map_err(|e| UsageError(e.to_string()).into())
    }
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Info(src) => info(&src),
    }
}

fn info(src: &Source) -> Result<()> {
    let ds = src.open()?;
    if src.json {
        let splits: Map<String, Value> = ds
            .splits
            .iter()
            .map(|s| (s.name.clone(), json!(s.samples.len())))
            .collect();
        let out = json!({ "dataset": ds.name, "classes": ds.classes.len(), "splits": splits });
        println!("{out}");
        return Ok(());
    }
    println!("{}  ({})", ds.name, ds.root.display());
    println!("  classes  {}", ds.classes.len());
    for s in &ds.splits {
        let role = match s.name.as_str() {
            n if n == ds.train_split => "  (training)",
            n if n == ds.eval_split => "  (evaluation)",
            _ => "",
        };
        println!("  {:<9}{:>8} images{role}", s.name, s.samples.len());
    }
    let shown: Vec<&str> = ds.classes.iter().take(5).map(String::as_str).collect();
    let more = if ds.classes.len() > 5 { ", ..." } else { "" };
    println!("  first classes: {}{more}", shown.join(", "));
    Ok(())
}
