//! Food-101: `food-101/{images/<class>/<id>.jpg, meta/{classes,train,test}.txt}`.

use std::path::Path;

use super::layout::{lines, read_text, require_file, resolve_root};
use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;

pub(super) const LAYOUT: &str =
    "food-101/{images/<class>/<id>.jpg, meta/classes.txt, meta/train.txt, meta/test.txt}";

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    let root = resolve_root("food101", root, &["food-101"], "meta/classes.txt", LAYOUT)?;
    let classes_path = root.join("meta/classes.txt");
    let classes: Vec<String> = lines(&read_text(&classes_path)?)
        .map(|(_, l)| l.to_string())
        .collect();
    let mut splits = Vec::new();
    for name in ["train", "test"] {
        let path = root.join("meta").join(format!("{name}.txt"));
        let path = require_file("food101", path, LAYOUT)?;
        let mut samples = Vec::new();
        for (n, line) in lines(&read_text(&path)?) {
            let class = line.split('/').next().unwrap_or_default();
            let label = classes.iter().position(|c| c == class).ok_or_else(|| {
                DataError::bad(
                    &path,
                    format!("line {n}: class `{class}` not in meta/classes.txt"),
                )
            })?;
            let image = root.join("images").join(format!("{line}.jpg"));
            samples.push(Sample {
                image: ImageRef::File(image),
                label: label as u32,
            });
        }
        splits.push(Split::new(name, samples));
    }
    Ok(Dataset::new("food101", root, classes, splits))
}
