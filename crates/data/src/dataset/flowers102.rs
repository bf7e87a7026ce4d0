//! Oxford Flowers-102: `jpg/image_XXXXX.jpg`, `imagelabels.mat` (`labels`, 1..102 per
//! image), `setid.mat` (`trnid`, `valid`, `tstid`: 1-based image ids).

use std::path::Path;

use super::layout::{require_file, resolve_root};
use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;
use crate::mat;

pub(super) const LAYOUT: &str = "{jpg/image_XXXXX.jpg, imagelabels.mat, setid.mat}";

fn ids(
    vars: &std::collections::BTreeMap<String, mat::MatValue>,
    name: &str,
    path: &Path,
) -> Result<Vec<usize>, DataError> {
    vars.get(name)
        .and_then(|v| v.numbers())
        .map(|n| n.iter().map(|&x| x as usize).collect())
        .ok_or_else(|| DataError::bad(path, format!("no numeric variable `{name}`")))
}

pub(super) fn open(root: &Path, train_val: bool) -> Result<Dataset, DataError> {
    let root = resolve_root(
        "flowers102",
        root,
        &["flowers-102", "flowers102"],
        "setid.mat",
        LAYOUT,
    )?;
    let labels_path = root.join("imagelabels.mat");
    let labels_path = require_file("flowers102", labels_path, LAYOUT)?;
    let labels = ids(&mat::read(&labels_path)?, "labels", &labels_path)?;
    let setid_path = root.join("setid.mat");
    let setid = mat::read(&setid_path)?;
    let mut splits = Vec::new();
    for (split, var) in [("train", "trnid"), ("val", "valid"), ("test", "tstid")] {
        let mut samples = Vec::new();
        for id in ids(&setid, var, &setid_path)? {
            let label = *labels.get(id.wrapping_sub(1)).ok_or_else(|| {
                DataError::bad(
                    &setid_path,
                    format!("image id {id} has no label in imagelabels.mat"),
                )
            })?;
            if !(1..=102).contains(&label) {
                return Err(DataError::bad(
                    &labels_path,
                    format!("label {label} outside 1..102"),
                ));
            }
            let file = root.join("jpg").join(format!("image_{id:05}.jpg"));
            samples.push(Sample {
                image: ImageRef::File(file),
                label: label as u32 - 1,
            });
        }
        splits.push(Split::new(split, samples));
    }
    let classes = (1..=102).map(|i| i.to_string()).collect();
    let mut ds = Dataset::new("flowers102", root, classes, splits);
    if train_val {
        let val = ds.split("val")?.samples.clone();
        let train = ds
            .splits
            .iter_mut()
            .find(|s| s.name == "train")
            .expect("train split exists");
        train.samples.extend(val);
        // Evaluation on val would then measure training images.
        ds.eval_split = "test".into();
    }
    Ok(ds)
}
