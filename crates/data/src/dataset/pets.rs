//! Oxford-IIIT Pet: `images/<Breed_name>_<n>.jpg`, `annotations/{trainval,test}.txt`
//! (lines `<image> <class id> <species> <breed id>`).

use std::path::Path;

use super::layout::{lines, read_text, require_file, resolve_root};
use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;

pub(super) const LAYOUT: &str =
    "{images/<name>.jpg, annotations/trainval.txt, annotations/test.txt}";

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    let root = resolve_root(
        "pets",
        root,
        &["oxford-iiit-pet"],
        "annotations/trainval.txt",
        LAYOUT,
    )?;
    let mut classes: Vec<Option<String>> = Vec::new();
    let mut splits = Vec::new();
    for name in ["trainval", "test"] {
        let path = root.join("annotations").join(format!("{name}.txt"));
        let path = require_file("pets", path, LAYOUT)?;
        let mut samples = Vec::new();
        for (n, line) in lines(&read_text(&path)?) {
            let mut parts = line.split_whitespace();
            let (Some(image), Some(class)) = (parts.next(), parts.next()) else {
                return Err(DataError::bad(
                    &path,
                    format!("line {n}: expected `<image> <class id> ...`"),
                ));
            };
            let class: usize = class.parse().ok().filter(|c| *c >= 1).ok_or_else(|| {
                DataError::bad(&path, format!("line {n}: bad class id `{class}`"))
            })?;
            // The breed name is the image name without its trailing `_<number>`.
            let breed = image.rsplit_once('_').map_or(image, |(b, _)| b).to_string();
            if classes.len() < class {
                classes.resize(class, None);
            }
            classes[class - 1].get_or_insert(breed);
            let file = root.join("images").join(format!("{image}.jpg"));
            samples.push(Sample {
                image: ImageRef::File(file),
                label: class as u32 - 1,
            });
        }
        splits.push(Split::new(name, samples));
    }
    let classes = classes
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.unwrap_or_else(|| format!("class_{}", i + 1)))
        .collect();
    Ok(Dataset::new("pets", root, classes, splits))
}
