//! Stanford Cars: `cars_train/`, `cars_test/`, `devkit/cars_meta.mat` (`class_names`),
//! `devkit/cars_train_annos.mat` and `cars_test_annos_withlabels.mat` (`annotations`:
//! struct array with `class` (1-based) and `fname`).

use std::path::Path;

use super::layout::{require_file, resolve_root};
use super::samples::{Dataset, ImageRef, Sample, Split};
use crate::error::DataError;
use crate::mat::{self, MatValue};

pub(super) const LAYOUT: &str = "{cars_train/, cars_test/, devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat}";

fn read_var(path: &Path, name: &str) -> Result<MatValue, DataError> {
    mat::read(&require_file("cars", path.to_path_buf(), LAYOUT)?)?
        .remove(name)
        .ok_or_else(|| DataError::bad(path, format!("no variable `{name}`")))
}

fn samples(
    root: &Path,
    annos: &Path,
    images: &str,
    classes: usize,
) -> Result<Vec<Sample>, DataError> {
    let MatValue::Struct(items) = read_var(annos, "annotations")? else {
        return Err(DataError::bad(annos, "`annotations` is not a struct array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let class = item
                .get("class")
                .and_then(|v| v.numbers())
                .and_then(|n| n.first().copied());
            let fname = item.get("fname").and_then(|v| v.text());
            let (Some(class), Some(fname)) = (class, fname) else {
                return Err(DataError::bad(
                    annos,
                    format!("annotation {} lacks `class` or `fname`", i + 1),
                ));
            };
            let class = class as usize;
            if class == 0 || class > classes {
                return Err(DataError::bad(
                    annos,
                    format!("annotation {}: class {class} outside 1..{classes}", i + 1),
                ));
            }
            let file = root.join(images).join(fname);
            Ok(Sample {
                image: ImageRef::File(file),
                label: class as u32 - 1,
            })
        })
        .collect()
}

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    let root = resolve_root(
        "cars",
        root,
        &["stanford_cars", "stanford-cars"],
        "devkit/cars_meta.mat",
        LAYOUT,
    )?;
    let meta = root.join("devkit/cars_meta.mat");
    let MatValue::Cell(names) = read_var(&meta, "class_names")? else {
        return Err(DataError::bad(&meta, "`class_names` is not a cell array"));
    };
    let classes: Vec<String> = names
        .iter()
        .map(|n| {
            n.text()
                .map(str::to_string)
                .ok_or_else(|| DataError::bad(&meta, "a class name is not text"))
        })
        .collect::<Result<_, _>>()?;
    let train = samples(
        &root,
        &root.join("devkit/cars_train_annos.mat"),
        "cars_train",
        classes.len(),
    )?;
    let test = samples(
        &root,
        &root.join("cars_test_annos_withlabels.mat"),
        "cars_test",
        classes.len(),
    )?;
    let splits = vec![Split::new("train", train), Split::new("test", test)];
    Ok(Dataset::new("cars", root, classes, splits))
}
