//! `netaug data info`: checks a dataset layout before a long run; `netaug data pasted`:
//! makes the small detection set of Fashion-MNIST items pasted onto canvases.

use std::path::PathBuf;

use anyhow::Result;
use netaug_data::pasted::PasteOptions;
use netaug_data::{Dataset, OpenOptions};
use netaug_ops::dataset::{self, Info, PastedOptions};

use crate::{UsageError, classify};

/// `netaug data ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Open a dataset and print its classes and split sizes; --verify checks them
    /// against the published counts and lists the missing images.
    #[command(
        after_help = "Examples:\n  netaug data info --dataset food101 --root /data/food-101\n  \
                            netaug data info --dataset food101 --root /data/food-101 --verify\n  \
                            netaug data info --dataset fashion-mnist --json"
    )]
    Info(InfoArgs),
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

/// `netaug data info` arguments.
#[derive(clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    source: Source,
    /// Check each split against the dataset's published image count and list the
    /// images its annotation files name that are missing (exit 2 when incomplete).
    #[arg(long)]
    verify: bool,
}

/// Which dataset, where.
#[derive(clap::Args, Clone)]
pub struct Source {
    /// The dataset.
    #[arg(long, value_parser = netaug_ops::values::dataset())]
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
        let opts = OpenOptions {
            flowers_train_val: self.flowers_train_val,
            ..Default::default()
        };
        dataset::open(&self.dataset, self.root.as_deref(), opts).map_err(classify)
    }
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Info(args) if args.verify => verify(&args.source),
        Command::Info(args) => {
            let info = Info::of(&args.source.open()?);
            if args.source.json {
                outln!("{}", serde_json::to_string(&info)?)
            } else {
                outln!("{info}")
            }
        }
        Command::Pasted(a) => {
            let options = PastedOptions {
                out: a.out.clone(),
                root: a.root,
                train: a.train,
                val: a.val,
                paste: PasteOptions {
                    canvas: a.canvas,
                    max_items: a.max_items,
                    min_side: a.sides[0],
                    max_side: a.sides[1],
                    seed: a.seed,
                },
            };
            for (split, canvases, boxes) in dataset::pasted(&options).map_err(classify)? {
                outln!("{split}: {canvases} canvases, {boxes} boxes")?;
            }
            outln!(
                "wrote {} (COCO layout: train/, val/, annotations/)",
                a.out.display()
            )
        }
    }
}

/// `data info --verify`: an incomplete dataset is an error (exit 2), after its report.
fn verify(src: &Source) -> Result<()> {
    let mut bars = crate::progress::Bars::new(src.json);
    let v = dataset::verify(&src.dataset, src.root.as_deref(), &mut bars).map_err(classify)?;
    if src.json {
        outln!("{}", serde_json::to_string(&v)?)?;
    } else {
        outln!("{v}")?;
    }
    match v.problems() {
        Some(problems) => Err(UsageError(problems.into()).into()),
        None => Ok(()),
    }
}
