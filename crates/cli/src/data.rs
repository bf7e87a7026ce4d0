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
    #[arg(long, value_parser = crate::values::dataset())]
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
        self.open_with(OpenOptions {
            flowers_train_val: self.flowers_train_val,
            ..Default::default()
        })
    }

    /// Opens the dataset with `opts` (a usage error as [`Source::open`]).
    fn open_with(&self, opts: OpenOptions) -> Result<Dataset> {
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
        dataset::open(&self.dataset, &root, &opts).map_err(|e| UsageError(e.to_string()).into())
    }
}

/// Runs the command.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Info(args) if args.verify => verify(&args.source),
        Command::Info(args) => info(&args.source),
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
        outln!("{split}: {n} canvases, {boxes} boxes")?;
    }
    outln!(
        "wrote {} (COCO layout: train/, val/, annotations/)",
        a.out.display()
    )?;
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
        outln!("{out}")?;
        return Ok(());
    }
    outln!("{}  ({})", ds.name, ds.root.display())?;
    outln!("  classes  {}", ds.classes.len())?;
    for s in &ds.splits {
        let role = match s.name.as_str() {
            n if n == ds.train_split => "  (training)",
            n if n == ds.eval_split => "  (evaluation)",
            _ => "",
        };
        outln!("  {:<9}{:>8} images{role}", s.name, s.samples.len())?;
    }
    let shown: Vec<&str> = ds.classes.iter().take(5).map(String::as_str).collect();
    let more = if ds.classes.len() > 5 { ", ..." } else { "" };
    outln!("  first classes: {}{more}", shown.join(", "))?;
    Ok(())
}

/// How many missing files `--verify` names per split before it counts the rest.
const SHOWN_MISSING: usize = 10;

/// `data info --verify`: each published split's count on disk against the published one,
/// the missing images listed; an incomplete dataset is an error (exit 2).
fn verify(src: &Source) -> Result<()> {
    let Some(published) = dataset::published(&src.dataset) else {
        return Err(UsageError(format!(
            "--verify: `{}` has no published counts (it is your own layout); `data info` shows its sizes",
            src.dataset
        ))
        .into());
    };
    // The splits as published: Flowers102's val is not merged into train here.
    let ds = src.open_with(OpenOptions {
        allow_missing: true,
        ..Default::default()
    })?;
    // Every image's header is decoded: an empty or damaged file is not an image.
    let total: usize = ds.splits.iter().map(|s| s.samples.len()).sum();
    let mut bars = crate::progress::Bars::new(src.json);
    use netaug_trainer::Observer as _;
    bars.phase("headers", total);
    let mut seen = 0;
    let unreadable = ds.unreadable(|| {
        seen += 1;
        if seen % 256 == 0 {
            bars.advance(seen, None);
        }
    });
    bars.finish_phase();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for &(split, expected) in published {
        let bad: Vec<&netaug_data::dataset::UnreadableImage> =
            unreadable.iter().filter(|u| u.split == split).collect();
        let found = ds.split(split).map_or(0, |s| s.samples.len()) - bad.len();
        if !bad.is_empty() {
            problems.push(format!(
                "{split}: {} files are no image (first: {}: {})",
                bad.len(),
                bad[0].path.display(),
                bad[0].reason
            ));
        }
        let missing: Vec<&std::path::Path> = ds
            .missing
            .iter()
            .filter(|m| m.split == split)
            .map(|m| m.path.as_path())
            .collect();
        let listed = found + bad.len() + missing.len();
        if found + bad.len() != expected {
            let mut why = format!("{split}: {found} of {expected} published images");
            if !missing.is_empty() {
                why.push_str(&format!(
                    ", {} named by the annotations but missing",
                    missing.len()
                ));
            }
            if listed != expected {
                why.push_str(&format!(
                    ", the annotation files name {listed} (a different or damaged release?)"
                ));
            }
            problems.push(why);
        }
        rows.push((split, found, expected, missing, bad));
    }
    if src.json {
        let splits: Map<String, Value> = rows
            .iter()
            .map(|(split, found, expected, missing, bad)| {
                let files: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
                let bad: Vec<Value> = bad
                    .iter()
                    .map(|u| json!({"path": u.path.display().to_string(), "reason": u.reason}))
                    .collect();
                (
                    split.to_string(),
                    json!({"found": found, "published": expected, "missing": files, "unreadable": bad}),
                )
            })
            .collect();
        outln!(
            "{}",
            json!({"dataset": ds.name, "complete": problems.is_empty(), "splits": splits})
        )?;
    } else {
        outln!("{}  ({})", ds.name, ds.root.display())?;
        for (split, found, expected, missing, bad) in &rows {
            let mark = if found == expected {
                "ok"
            } else {
                "INCOMPLETE"
            };
            outln!("  {split:<9}{found:>8} of {expected:>8} published  {mark}")?;
            for p in missing.iter().take(SHOWN_MISSING) {
                outln!("      missing {}", p.display())?;
            }
            if missing.len() > SHOWN_MISSING {
                outln!("      ... and {} more", missing.len() - SHOWN_MISSING)?;
            }
            for u in bad.iter().take(SHOWN_MISSING) {
                outln!("      no image {}: {}", u.path.display(), u.reason)?;
            }
            if bad.len() > SHOWN_MISSING {
                outln!("      ... and {} more", bad.len() - SHOWN_MISSING)?;
            }
        }
    }
    if problems.is_empty() {
        if !src.json {
            outln!("complete: every split has its published count")?;
        }
        Ok(())
    } else {
        Err(UsageError(format!(
            "{} is incomplete: {}",
            ds.name,
            problems.join("; ")
        ))
        .into())
    }
}
