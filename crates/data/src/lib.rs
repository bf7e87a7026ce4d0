//! netaug-data: classification datasets in their published layouts (ImageNet-style
//! folders, Food-101, Flowers-102, Stanford Cars, CUB-200-2011, Oxford-IIIT Pet,
//! Fashion-MNIST), Pascal VOC and COCO detection annotations, the official transforms,
//! and a seeded, sharded, parallel loader.
//!
//! Nothing is downloaded: every dataset is read from where the user extracted it.
#![warn(missing_docs)]

pub mod dataset;
pub mod detection;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
pub mod holdout;
pub mod image;
pub mod loader;
pub mod mat;
pub mod pasted;
pub mod transform;

pub use dataset::{Dataset, ImageRef, OpenOptions, Sample, Split, open};
pub use error::DataError;
pub use holdout::{Holdout, holdout};
pub use loader::{Batch, BatchPart, Loader, LoaderConfig, Normalize, Transform};
pub use transform::{EvalTransform, Policy, TrainTransform};
