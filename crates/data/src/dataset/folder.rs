//! ImageNet-style folders: `ROOT/{train,val}/<class>/<image>`. Classes are the sorted
//! folder names of `train`.

use std::path::{Path, PathBuf};

use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;

pub(super) const LAYOUT: &str = "ROOT/{train,val}/<class>/<image>.{jpg,jpeg,png}";

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    let missing = |path: PathBuf| DataError::Layout {
        dataset: "folder",
        path,
        layout: LAYOUT,
    };
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        return Err(missing(train_dir));
    }
    let classes: Vec<String> = sorted_entries(&train_dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if classes.is_empty() {
        return Err(DataError::bad(&train_dir, "no class folders"));
    }
    let mut splits = Vec::new();
    for name in ["train", "val"] {
        let dir = root.join(name);
        if !dir.is_dir() {
            return Err(missing(dir));
        }
        let mut samples = Vec::new();
        for class_dir in sorted_entries(&dir)?.into_iter().filter(|p| p.is_dir()) {
            let class = class_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let label = classes.iter().position(|c| *c == class).ok_or_else(|| {
                DataError::bad(&class_dir, format!("class `{class}` is not in train/"))
            })?;
            for file in sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| is_image(p))
            {
                samples.push(Sample {
                    image: ImageRef::File(file),
                    label: label as u32,
                });
            }
        }
        if name == "train" {
            // An empty class folder would still be a class: an output no image teaches.
            if let Some(empty) =
                (0..classes.len()).find(|&c| !samples.iter().any(|s| s.label as usize == c))
            {
                return Err(DataError::bad(
                    dir.join(&classes[empty]),
                    "no images (.jpg, .jpeg, .png): an empty class folder would still be a \
                     class; remove it or add its images",
                ));
            }
        }
        splits.push(Split::new(name, samples));
    }
    Ok(Dataset::new("folder", root.to_path_buf(), classes, splits))
}
