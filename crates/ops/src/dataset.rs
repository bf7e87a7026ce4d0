//! `data info`, `data info --verify` and `data pasted`: a dataset's classes and splits,
//! each published split checked on disk, and the pasted Fashion-MNIST detection set.

use std::fmt;
use std::path::{Path, PathBuf};

use netaug_data::dataset::{self, FASHION_MNIST_ROOT, UnreadableImage};
use netaug_data::pasted::{PasteOptions, paste, write_coco};
use netaug_data::{Dataset, OpenOptions};
use netaug_trainer::Observer;
use serde::Serialize;

use crate::OpsError;

/// How many missing or unreadable files a verification names per split before it counts
/// the rest.
const SHOWN: usize = 10;

/// Opens `name` under `root` (fashion-mnist: the Debian package's folder by default); a bad
/// name or layout is input at fault.
pub fn open(name: &str, root: Option<&Path>, opts: OpenOptions) -> Result<Dataset, OpsError> {
    let root = match (root, name) {
        (Some(r), _) => r.to_path_buf(),
        (None, "fashion-mnist") => PathBuf::from(FASHION_MNIST_ROOT),
        (None, _) => {
            return Err(OpsError::Input(format!(
                "--root is required for dataset `{name}`"
            )));
        }
    };
    dataset::open(name, &root, &opts).map_err(|e| OpsError::Input(e.to_string()))
}

/// A dataset's classes and split sizes.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// Its name.
    pub dataset: String,
    /// Its folder.
    #[serde(skip)]
    pub root: PathBuf,
    /// Class count.
    pub classes: usize,
    /// The splits and their image counts.
    pub splits: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    rows: Vec<(String, usize, &'static str)>,
    #[serde(skip)]
    first_classes: Vec<String>,
}

impl Info {
    /// The facts of an open dataset.
    pub fn of(ds: &Dataset) -> Self {
        let rows = ds
            .splits
            .iter()
            .map(|s| {
                let role = match s.name.as_str() {
                    n if n == ds.train_split => "  (training)",
                    n if n == ds.eval_split => "  (evaluation)",
                    _ => "",
                };
                (s.name.clone(), s.samples.len(), role)
            })
            .collect::<Vec<_>>();
        Self {
            dataset: ds.name.clone(),
            root: ds.root.clone(),
            classes: ds.classes.len(),
            splits: rows
                .iter()
                .map(|(n, c, _)| (n.clone(), (*c).into()))
                .collect(),
            rows,
            first_classes: ds.classes.iter().take(6).cloned().collect(),
        }
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  ({})", self.dataset, self.root.display())?;
        writeln!(f, "  classes  {}", self.classes)?;
        for (name, count, role) in &self.rows {
            writeln!(f, "  {name:<9}{count:>8} images{role}")?;
        }
        let more = if self.first_classes.len() > 5 {
            ", ..."
        } else {
            ""
        };
        let shown: Vec<&str> = self
            .first_classes
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        write!(f, "  first classes: {}{more}", shown.join(", "))
    }
}

/// One published split as found on disk.
#[derive(Clone, Debug, Serialize)]
pub struct SplitCheck {
    /// Readable images found.
    pub found: usize,
    /// The published count.
    pub published: usize,
    /// Images the annotation files name that are missing.
    pub missing: Vec<PathBuf>,
    /// Files that are no image.
    pub unreadable: Vec<Unreadable>,
}

/// A file that is no image, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be decoded.
    pub reason: String,
}

/// Each published split of a dataset checked on disk.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// The dataset.
    pub dataset: String,
    /// Its folder.
    #[serde(skip)]
    pub root: PathBuf,
    /// Whether every split has its published count of readable images.
    pub complete: bool,
    /// The splits, in published order.
    pub splits: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    checks: Vec<(String, SplitCheck)>,
    #[serde(skip)]
    problems: Vec<String>,
}

impl Verification {
    /// What is wrong, on one line; `None` when the dataset is complete.
    pub fn problems(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "{} is incomplete: {}",
                self.dataset,
                self.problems.join("; ")
            )
        })
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = vec![format!("{}  ({})", self.dataset, self.root.display())];
        for (split, c) in &self.checks {
            let mark = if c.found == c.published {
                "ok"
            } else {
                "INCOMPLETE"
            };
            let (found, expected) = (c.found, c.published);
            lines.push(format!(
                "  {split:<9}{found:>8} of {expected:>8} published  {mark}"
            ));
            let missing = c.missing.iter().map(|p| format!("missing {}", p.display()));
            let bad = c
                .unreadable
                .iter()
                .map(|u| format!("no image {}: {}", u.path.display(), u.reason));
            for (list, count) in [
                (missing.collect::<Vec<_>>(), c.missing.len()),
                (bad.collect(), c.unreadable.len()),
            ] {
                lines.extend(list.into_iter().take(SHOWN).map(|l| format!("      {l}")));
                if count > SHOWN {
                    lines.push(format!("      ... and {} more", count - SHOWN));
                }
            }
        }
        if self.complete {
            lines.push("complete: every split has its published count".into());
        }
        f.write_str(&lines.join("\n"))
    }
}

/// Checks each published split of `name` on disk against its published count, decoding
/// every image's header; the missing and unreadable files are listed.
pub fn verify(
    name: &str,
    root: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<Verification, OpsError> {
    let Some(published) = dataset::published(name) else {
        return Err(OpsError::input(
            "--verify",
            format!(
                "`{name}` has no published counts (it is your own layout); `data info` shows \
                 its sizes"
            ),
        ));
    };
    // The splits as published: Flowers102's val is not merged into train here.
    let opts = OpenOptions {
        allow_missing: true,
        ..Default::default()
    };
    let ds = open(name, root, opts)?;
    let total: usize = ds.splits.iter().map(|s| s.samples.len()).sum();
    observer.phase("headers", total);
    let mut seen = 0;
    let unreadable = ds.unreadable(|| {
        seen += 1;
        if seen % 256 == 0 {
            observer.advance(seen, None);
        }
    });
    observer.finish_phase();
    let (checks, problems): (Vec<_>, Vec<_>) = published
        .iter()
        .map(|&(split, expected)| check_split(&ds, split, expected, &unreadable))
        .map(|(check, problems)| ((check.0, check.1), problems))
        .unzip();
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    Ok(Verification {
        dataset: ds.name.clone(),
        root: ds.root.clone(),
        complete: problems.is_empty(),
        splits: checks
            .iter()
            .map(|(s, c)| {
                (
                    s.clone(),
                    serde_json::to_value(c).expect("checks serialize"),
                )
            })
            .collect(),
        checks,
        problems,
    })
}

/// One split against its published count, and what is wrong with it.
fn check_split(
    ds: &Dataset,
    split: &str,
    expected: usize,
    unreadable: &[UnreadableImage],
) -> ((String, SplitCheck), Vec<String>) {
    let bad: Vec<Unreadable> = unreadable
        .iter()
        .filter(|u| u.split == split)
        .map(|u| Unreadable {
            path: u.path.clone(),
            reason: u.reason.clone(),
        })
        .collect();
    let found = ds.split(split).map_or(0, |s| s.samples.len()) - bad.len();
    let missing: Vec<PathBuf> = ds
        .missing
        .iter()
        .filter(|m| m.split == split)
        .map(|m| m.path.clone())
        .collect();
    let mut problems = Vec::new();
    if let Some(first) = bad.first() {
        problems.push(format!(
            "{split}: {} files are no image (first: {}: {})",
            bad.len(),
            first.path.display(),
            first.reason
        ));
    }
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
    let check = SplitCheck {
        found,
        published: expected,
        missing,
        unreadable: bad,
    };
    ((split.to_string(), check), problems)
}

/// The pasted detection set's size.
#[derive(Clone, Debug)]
pub struct PastedOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Fashion-MNIST folder (default: the Debian package's).
    pub root: Option<PathBuf>,
    /// Training canvases.
    pub train: usize,
    /// Validation canvases.
    pub val: usize,
    /// How each canvas is made; its seed is the training split's (validation: xor 0x5eed).
    pub paste: PasteOptions,
}

/// Writes the pasted set; returns each split's canvases and boxes.
pub fn pasted(o: &PastedOptions) -> Result<Vec<(&'static str, usize, usize)>, OpsError> {
    let p = &o.paste;
    let (lo, hi) = (p.min_side, p.max_side);
    if p.canvas < 8 || lo == 0 || lo > hi || hi > p.canvas || p.max_items == 0 {
        return Err(OpsError::Input(format!(
            "need --canvas >= 8, 1 <= --sides MIN <= MAX <= canvas and --max-items >= 1 \
             (got canvas {}, sides {lo} {hi}, max-items {})",
            p.canvas, p.max_items
        )));
    }
    let ds = open("fashion-mnist", o.root.as_deref(), OpenOptions::default())?;
    let mut written = Vec::new();
    for (split, from, n, seed) in [
        ("train", ds.train(), o.train, p.seed),
        ("val", ds.eval(), o.val, p.seed ^ 0x5eed),
    ] {
        let items = from
            .samples
            .iter()
            .map(|s| Ok((netaug_data::image::load(&s.image, None)?, s.label)))
            .collect::<Result<Vec<_>, netaug_data::DataError>>()
            .map_err(|e| OpsError::Input(e.to_string()))?;
        let options = PasteOptions { seed, ..*p };
        let canvases = paste(&items, n, &options);
        write_coco(&o.out, split, &canvases, &ds.classes).map_err(OpsError::Data)?;
        let boxes: usize = canvases.iter().map(|(_, b)| b.len()).sum();
        written.push((split, n, boxes));
    }
    Ok(written)
}
