//! Fashion-MNIST: the IDX files `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`
//! (Debian package `dataset-fashion-mnist` puts them in `/usr/share/datasets/fashion-mnist`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::samples::{Dataset, GrayImages, ImageRef, Sample, Split};
use crate::error::DataError;

/// Where the Debian package installs the files.
pub const DEFAULT_ROOT: &str = "/usr/share/datasets/fashion-mnist";

const LAYOUT: &str = "{train,t10k}-images-idx3-ubyte[.gz], {train,t10k}-labels-idx1-ubyte[.gz]";

const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The file `stem` or `stem.gz` in `root`.
fn find(root: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let plain = root.join(stem);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = root.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Layout {
        dataset: "fashion-mnist",
        path: gz,
        layout: LAYOUT,
    })
}

/// The bytes of a file, gunzipped when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::bad(path, format!("bad gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes: (dims, data).
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |r: &str| DataError::bad(path, format!("not an IDX file of unsigned bytes: {r}"));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic"));
    }
    if bytes[2] != 0x08 {
        return Err(bad("element type is not unsigned byte"));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let count: usize = dims.iter().product();
    if bytes.len() != header + count {
        return Err(bad(&format!(
            "expected {count} data bytes, found {}",
            bytes.len() - header
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}

fn split(root: &Path, prefix: &str, name: &str) -> Result<Split, DataError> {
    let images_path = find(root, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(root, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (dims, pixels) = parse_idx(&images_path, &read_maybe_gz(&images_path)?)?;
    let (ldims, labels) = parse_idx(&labels_path, &read_maybe_gz(&labels_path)?)?;
    if dims.len() != 3 || ldims.len() != 1 || dims[0] != ldims[0] {
        return Err(DataError::bad(
            &images_path,
            format!(
                "shape {dims:?} does not match labels {ldims:?} in {}",
                labels_path.display()
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= CLASSES.len()) {
        return Err(DataError::bad(
            &labels_path,
            format!("label {bad} outside 0..9"),
        ));
    }
    let images = Arc::new(GrayImages {
        source: images_path,
        height: dims[1],
        width: dims[2],
        pixels,
    });
    let samples = labels
        .iter()
        .enumerate()
        .map(|(index, &l)| Sample {
            image: ImageRef::Gray {
                images: images.clone(),
                index,
            },
            label: l as u32,
        })
        .collect();
    Ok(Split::new(name, samples))
}

pub(super) fn open(root: &Path) -> Result<Dataset, DataError> {
    if !root.is_dir() {
        return Err(DataError::Layout {
            dataset: "fashion-mnist",
            path: root.to_path_buf(),
            layout: LAYOUT,
        });
    }
    let splits = vec![split(root, "train", "train")?, split(root, "t10k", "test")?];
    let classes = CLASSES.iter().map(|c| c.to_string()).collect();
    let mut ds = Dataset::new("fashion-mnist", root.to_path_buf(), classes, splits);
    ds.channels = 1;
    Ok(ds)
}
