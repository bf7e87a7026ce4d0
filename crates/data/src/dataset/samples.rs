//! What a dataset opens to: its classes and named splits of (image, label) samples.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::DataError;

/// Where a sample's pixels are.
#[derive(Clone, Debug)]
pub enum ImageRef {
    /// An image file (JPEG or PNG).
    File(PathBuf),
    /// Image `index` of an in-memory set of equal-size grayscale images (Fashion-MNIST).
    Gray {
        /// The images.
        images: Arc<GrayImages>,
        /// Which one.
        index: usize,
    },
}

impl ImageRef {
    /// A name for messages: the file path, or `<set>#<index>`.
    pub fn describe(&self) -> String {
        match self {
            ImageRef::File(p) => p.display().to_string(),
            ImageRef::Gray { images, index } => format!("{}#{index}", images.source.display()),
        }
    }
}

/// One labelled image.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The pixels.
    pub image: ImageRef,
    /// Class index into [`Dataset::classes`].
    pub label: u32,
}

/// A named split.
#[derive(Clone, Debug)]
pub struct Split {
    /// Published name (`train`, `val`, `test`, `trainval`).
    pub name: String,
    /// Samples in the published order.
    pub samples: Vec<Sample>,
}

impl Split {
    /// A split called `name`.
    pub fn new(name: &str, samples: Vec<Sample>) -> Self {
        Self {
            name: name.to_string(),
            samples,
        }
    }
}

/// A dataset: its classes and splits.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Dataset name.
    pub name: String,
    /// The folder holding the layout (after resolving an outer root).
    pub root: PathBuf,
    /// Class names; labels index this list.
    pub classes: Vec<String>,
    /// Splits, in the dataset's published order.
    pub splits: Vec<Split>,
    /// Image channels the loader produces (3, or 1 for Fashion-MNIST).
    pub channels: usize,
    /// Split used for training.
    pub train_split: String,
    /// Split used for evaluation: `val` where it exists, else `test`.
    pub eval_split: String,
    /// Images the layout names that are not on disk (only with
    /// [`OpenOptions::allow_missing`](super::OpenOptions::allow_missing); their samples
    /// are not in the splits).
    pub missing: Vec<MissingImage>,
}

/// Equal-size 8-bit grayscale images held in memory.
#[derive(Debug)]
pub struct GrayImages {
    /// The file they came from.
    pub source: PathBuf,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Row-major pixels, one image after the other.
    pub pixels: Vec<u8>,
}

impl GrayImages {
    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// An image that a layout's annotation files name but that is not on disk.
#[derive(Clone, Debug, PartialEq)]
pub struct MissingImage {
    /// The split that lists it.
    pub split: String,
    /// Where it should be.
    pub path: PathBuf,
}

impl Dataset {
    /// The split called `name`.
    pub fn split(&self, name: &str) -> Result<&Split, DataError> {
        self.splits
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| DataError::UnknownSplit {
                dataset: self.name.clone(),
                split: name.to_string(),
                known: self.split_names().join(", "),
            })
    }

    /// The training split.
    pub fn train(&self) -> &Split {
        self.split(&self.train_split)
            .expect("datasets name an existing train split")
    }

    /// The evaluation split.
    pub fn eval(&self) -> &Split {
        self.split(&self.eval_split)
            .expect("datasets name an existing eval split")
    }

    /// Names of the splits.
    pub fn split_names(&self) -> Vec<String> {
        self.splits.iter().map(|s| s.name.clone()).collect()
    }

    pub(super) fn new(name: &str, root: PathBuf, classes: Vec<String>, splits: Vec<Split>) -> Self {
        let has = |n: &str| splits.iter().any(|s| s.name == n);
        let train_split = if has("trainval") { "trainval" } else { "train" }.to_string();
        let eval_split = if has("val") { "val" } else { "test" }.to_string();
        Self {
            name: name.to_string(),
            root,
            classes,
            splits,
            channels: 3,
            train_split,
            eval_split,
            missing: Vec::new(),
        }
    }
}
