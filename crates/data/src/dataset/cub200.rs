//! CUB-200-2011: `CUB_200_2011/{images/, images.txt, image_class_labels.txt,
//! train_test_split.txt, classes.txt}`.

use std::collections::HashMap;
use std::path::Path;

use super::layout::{lines, read_text, require_file, resolve_root};
use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;

pub(super) const LAYOUT: &str =
    "CUB_200_2011/{images/, images.txt, image_class_labels.txt, train_test_split.txt, classes.txt}";

/// `<id> <value>` lines as a map.
fn id_map(path: &Path) -> Result<Vec<(u32, String)>, DataError> {
    let path = &require_file("cub200", path.to_path_buf(), LAYOUT)?;
    lines(&read_text(path)?)
        .map(|(n, l)| {
            let (id, rest) = l.split_once(' ').ok_or_else(|| {
                DataError::bad(path, format!("line {n}: expected `<id> <value>`"))
            })?;
            let id = id
                .parse()
                .map_err(|_| DataError::bad(path, format!("line {n}: `{id}` is not an id")))?;
            Ok((id, rest.trim().to_string()))
        })
        .collect()
}

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    let root = resolve_root("cub200", root, &["CUB_200_2011"], "images.txt", LAYOUT)?;
    let classes_path = root.join("classes.txt");
    let class_rows = id_map(&classes_path)?;
    let classes: Vec<String> = class_rows.iter().map(|(_, c)| c.clone()).collect();
    let labels_path = root.join("image_class_labels.txt");
    let labels: HashMap<u32, String> = id_map(&labels_path)?.into_iter().collect();
    let split_path = root.join("train_test_split.txt");
    let is_train: HashMap<u32, String> = id_map(&split_path)?.into_iter().collect();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (id, rel) in id_map(&root.join("images.txt"))? {
        let missing = |file: &Path| DataError::bad(file, format!("no entry for image id {id}"));
        let class: usize = labels
            .get(&id)
            .ok_or_else(|| missing(&labels_path))?
            .parse()
            .map_err(|_| DataError::bad(&labels_path, format!("bad class id for image {id}")))?;
        if class == 0 || class > classes.len() {
            return Err(DataError::bad(
                &labels_path,
                format!("class {class} of image {id} is not in classes.txt"),
            ));
        }
        let sample = Sample {
            image: ImageRef::File(root.join("images").join(&rel)),
            label: class as u32 - 1,
        };
        match is_train
            .get(&id)
            .ok_or_else(|| missing(&split_path))?
            .as_str()
        {
            "1" => train.push(sample),
            "0" => test.push(sample),
            v => {
                return Err(DataError::bad(
                    &split_path,
                    format!("image {id}: `{v}` is not 0 or 1"),
                ));
            }
        }
    }
    let splits = vec![Split::new("train", train), Split::new("test", test)];
    Ok(Dataset::new("cub200", root, classes, splits))
}
