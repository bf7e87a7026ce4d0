//! `netaug data info`: checks a dataset layout before a long run; `netaug data pasted`:
//! makes the small detection set of Fashion-MNIST items pasted onto canvases.

use std::path::PathBuf;

use anyhow::Result;
use netaug_data::dataset::{self, FASHION_MNIST_ROOT};
use netaug_data::pasted::{PasteOptions, paste, write_coco};
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
    /// Make a COCO-format detection set: Fashion-MNIST items pasted onto canvases.
    #[command(
        after_help = "Example:\n  netaug data pasted --out data/fm-det --train 2000 --val 500 --canvas 128"
    )]
    Pasted(PastedArgs),
}

/// `netaug data pasted` arguments.
#[derive(clap::Args)]
pub struct PastedArgs {
    /// Output folder: train/, val/ (PNG) and annotations/instances_{train,val}.json.
    #[arg(long)]
    out: PathBuf,
    /// Fashion-MNIST folder (default: the Debian package's).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Training canvases (items from Fashion-MNIST's training split).
    #[arg(long, default_value_t = 2000)]
    train: usize,
    /// Validation canvases (items from its test split).
    #[arg(long, default_value_t = 500)]
    val: usize,
    /// Canvas side in pixels.
    #[arg(long, default_value_t = 128)]
    canvas: usize,
    /// Items per canvas, at most.
    #[arg(long, default_value_t = 4)]
    max_items: usize,
    /// Pasted item side, smallest and largest, in pixels.
    #[arg(long, num_args = 2, default_values_t = [20, 64])]
    sides: Vec<usize>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
        Command::Pasted(args) => pasted(&args),
    }
}

fn pasted(a: &PastedArgs) -> Result<()> {
    let (lo, hi) = (a.sides[0], a.sides[1]);
    if a.canvas < 8 || lo == 0 || lo > hi || hi > a.canvas || a.max_items == 0 {
        return Err(UsageError(format!(
            "need --canvas >= 8, 1 <= --sides MIN <= MAX <= canvas and --max-items >= 1 \
             (got canvas {}, sides {lo} {hi}, max-items {})",
            a.canvas, a.max_items
        ))
        .into());
    }
    let src = Source {
        dataset: "fashion-mnist".into(),
        root: a.root.clone(),
        flowers_train_val: false,
        json: false,
    };
    let ds = src.open()?;
    for (split, from, n, seed) in [
        ("train", ds.train(), a.train, a.seed),
        ("val", ds.eval(), a.val, a.seed ^ 0x5eed),
    ] {
        let items = from
            .samples
            .iter()
            .map(|s| Ok((netaug_data::image::load(&s.image, None)?, s.label)))
            .collect::<Result<Vec<_>, netaug_data::DataError>>()
            .map_err(|e| UsageError(e.to_string()))?;
        let options = PasteOptions {
            canvas: a.canvas,
            max_items: a.max_items,
            min_side: lo,
            max_side: hi,
            seed,
        };
        let canvases = paste(&items, n, &options);
        write_coco(&a.out, split, &canvases, &ds.classes)?;
        let boxes: usize = canvases.iter().map(|(_, b)| b.len()).sum();
        println!("{split}: {n} canvases, {boxes} boxes");
    }
    println!(
        "wrote {} (COCO layout: train/, val/, annotations/)",
        a.out.display()
    );
    Ok(())
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
