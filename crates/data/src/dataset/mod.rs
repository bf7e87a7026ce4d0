//! Classification datasets in their published layouts, by name.
//!
//! Every dataset opens to a class list and named splits of (image, label) samples; the
//! images are read later, by the loader. `root` may be the folder the archives were
//! extracted into or the dataset's own inner folder.

mod cars;
mod cub200;
mod fashion_mnist;
mod flowers102;
mod folder;
mod food101;
mod layout;
mod pets;
mod samples;

use std::path::{Path, PathBuf};

use crate::error::DataError;

pub use fashion_mnist::DEFAULT_ROOT as FASHION_MNIST_ROOT;
pub use samples::{Dataset, GrayImages, ImageRef, MissingImage, Sample, Split};

/// Dataset names.
pub const KNOWN: &[&str] = &[
    "folder",
    "food101",
    "flowers102",
    "cars",
    "cub200",
    "pets",
    "fashion-mnist",
];

/// Options of [`open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Flowers102: train on train + val (the published val split is small).
    pub flowers_train_val: bool,
    /// List the images that the layout's files name but the disk lacks in
    /// [`Dataset::missing`] (their samples left out) instead of failing on the first.
    pub allow_missing: bool,
}

/// Why `path`, which is there but is not a readable file, is no image: a folder, a
/// symlink loop, a symlink to nothing. `None` when nothing is there (a missing image).
fn not_a_file(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path).ok()?;
    Some(match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "is a folder, not an image".into(),
        Ok(_) => "is not a regular file".into(),
        // ELOOP: the link resolves to itself, in the end.
        Err(e) if e.raw_os_error() == Some(40) => "is a symlink loop".into(),
        Err(_) => match std::fs::read_link(path) {
            Ok(target) => format!("is a symlink to {}, which does not exist", target.display()),
            Err(e) => format!("cannot be read: {e}"),
        },
    })
}

/// An image file that is there but cannot be an image: empty, or its header undecodable.
#[derive(Clone, Debug, PartialEq)]
pub struct UnreadableImage {
    /// The split that lists it.
    pub split: String,
    /// The file.
    pub path: PathBuf,
    /// Why it is no image.
    pub reason: String,
}

impl Dataset {
    /// The image files of every split whose header does not decode (reading only the
    /// header: fast enough to check a whole dataset). `progress` is told each file.
    pub fn unreadable(&self, mut progress: impl FnMut()) -> Vec<UnreadableImage> {
        let mut out = Vec::new();
        for split in &self.splits {
            for sample in &split.samples {
                progress();
                let ImageRef::File(path) = &sample.image else {
                    continue;
                };
                if let Some(reason) = header_problem(path) {
                    out.push(UnreadableImage {
                        split: split.name.clone(),
                        path: path.clone(),
                        reason,
                    });
                }
            }
        }
        out
    }
}

/// Why `path` is no image, from its size and header; `None` when its header decodes.
fn header_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Some("empty file".into()),
        Err(e) => return Some(e.to_string()),
        Ok(_) => {}
    }
    let reader = match ::image::ImageReader::open(path).and_then(|r| r.with_guessed_format()) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    match reader.into_dimensions() {
        Ok((w, h)) if w > 0 && h > 0 => None,
        Ok((w, h)) => Some(format!("{w}x{h} pixels")),
        Err(e) => Some(format!("not a PNG or JPEG image: {e}")),
    }
}

/// Opens dataset `name` at `root`. Every image the layout names must be a file, unless
/// `opts.allow_missing`.
pub fn open(name: &str, root: &Path, opts: &OpenOptions) -> Result<Dataset, DataError> {
    let (ds, layout) = match name {
        "folder" => (folder::open(root)?, folder::LAYOUT),
        "food101" => (food101::open(root)?, food101::LAYOUT),
        "flowers102" => (
            flowers102::open(root, opts.flowers_train_val)?,
            flowers102::LAYOUT,
        ),
        "cars" => (cars::open(root)?, cars::LAYOUT),
        "cub200" => (cub200::open(root)?, cub200::LAYOUT),
        "pets" => (pets::open(root)?, pets::LAYOUT),
        "fashion-mnist" => (fashion_mnist::open(root)?, ""),
        _ => {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                known: KNOWN,
            });
        }
    };
    check_images(ds, layout, opts.allow_missing)
}

/// Published split sizes of a dataset (its papers and download pages), for
/// `netaug data info --verify`; `None` for `folder`, whose content is the user's.
pub fn published(name: &str) -> Option<&'static [(&'static str, usize)]> {
    Some(match name {
        "food101" => &[("train", 75_750), ("test", 25_250)],
        "flowers102" => &[("train", 1_020), ("val", 1_020), ("test", 6_149)],
        "cars" => &[("train", 8_144), ("test", 8_041)],
        "cub200" => &[("train", 5_994), ("test", 5_794)],
        "pets" => &[("trainval", 3_680), ("test", 3_669)],
        "fashion-mnist" => &[("train", 60_000), ("test", 10_000)],
        _ => return None,
    })
}

/// Checks that every image file a layout names is there (one `stat` each): the first
/// missing one is the layout error, or, with `allow_missing`, each is listed in
/// [`Dataset::missing`] and its sample left out.
fn check_images(
    mut ds: Dataset,
    layout: &'static str,
    allow_missing: bool,
) -> Result<Dataset, DataError> {
    let mut missing = Vec::new();
    for split in &mut ds.splits {
        let before = split.samples.len();
        let mut kept = Vec::with_capacity(before);
        for sample in split.samples.drain(..) {
            match &sample.image {
                ImageRef::File(path) if !path.is_file() => {
                    if !allow_missing {
                        if let Some(reason) = not_a_file(path) {
                            return Err(DataError::bad(path, reason));
                        }
                        return Err(DataError::Layout {
                            dataset: known_name(&ds.name),
                            path: path.clone(),
                            layout,
                        });
                    }
                    missing.push(MissingImage {
                        split: split.name.clone(),
                        path: path.clone(),
                    });
                }
                _ => kept.push(sample),
            }
        }
        split.samples = kept;
    }
    ds.missing = missing;
    Ok(ds)
}

/// The static name of a known dataset (error values hold `&'static str`).
fn known_name(name: &str) -> &'static str {
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("dataset")
}
