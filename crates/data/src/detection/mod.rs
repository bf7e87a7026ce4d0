//! Detection annotations: Pascal VOC (`VOCdevkit/VOC{2007,2012}/{Annotations/*.xml,
//! ImageSets/Main/*.txt, JPEGImages/}`) and COCO (`annotations/instances_{train,val}2017.json`,
//! `{train,val}2017/`), and box-aware resize / flip / crop.

mod boxes;
pub mod loader;

pub use boxes::{BBox, DetDataset, DetSample, flip, random_crop_resize, resize};
pub use loader::{DetBatch, DetLoader, DetTrainTransform, DetTransform};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::DataError;

/// The 20 Pascal VOC classes, in the devkit's order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

const VOC_LAYOUT: &str =
    "VOCdevkit/VOC<year>/{Annotations/<id>.xml, ImageSets/Main/<set>.txt, JPEGImages/<id>.jpg}";

/// The devkit folder of a VOC root: `root/VOCdevkit` when there is one, else `root`.
pub fn voc_devkit(root: &Path) -> PathBuf {
    let nested = root.join("VOCdevkit");
    if nested.is_dir() {
        nested
    } else {
        root.to_path_buf()
    }
}

/// Pascal VOC image sets, e.g. `[("2007", "trainval"), ("2012", "trainval")]`; `root` holds
/// `VOCdevkit/` or is it.
pub fn voc(root: &Path, sets: &[(&str, &str)]) -> Result<DetDataset, DataError> {
    let devkit = voc_devkit(root);
    let mut samples = Vec::new();
    for (year, set) in sets {
        let base = devkit.join(format!("VOC{year}"));
        let list = base.join("ImageSets/Main").join(format!("{set}.txt"));
        let text = std::fs::read_to_string(&list).map_err(|_| DataError::Layout {
            dataset: "voc",
            path: list.clone(),
            layout: VOC_LAYOUT,
        })?;
        for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let xml = base.join("Annotations").join(format!("{id}.xml"));
            let image = base.join("JPEGImages").join(format!("{id}.jpg"));
            if !image.is_file() {
                return Err(DataError::Layout {
                    dataset: "voc",
                    path: image,
                    layout: VOC_LAYOUT,
                });
            }
            let content = std::fs::read_to_string(&xml).map_err(|e| DataError::io(&xml, e))?;
            let (width, height, boxes) =
                parse_voc_xml(&content).map_err(|r| DataError::bad(&xml, r))?;
            let numeric: String = id.chars().filter(char::is_ascii_digit).collect();
            samples.push(DetSample {
                image,
                id: numeric.parse().unwrap_or(samples.len() as u64),
                width,
                height,
                boxes,
            });
        }
    }
    Ok(DetDataset {
        classes: VOC_CLASSES.iter().map(|c| c.to_string()).collect(),
        samples,
    })
}

/// Parses one VOC annotation: (width, height, boxes).
pub fn parse_voc_xml(xml: &str) -> Result<(u32, u32, Vec<BBox>), String> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let (mut width, mut height) = (None, None);
    let mut boxes = Vec::new();
    // Fields of the object being read.
    let mut name = None;
    let mut difficult = false;
    let mut coords = [None; 4];
    loop {
        match reader.read_event().map_err(|e| format!("bad XML: {e}"))? {
            Event::Start(e) => {
                let tag = e.name().as_ref().to_string();
                if tag == "object" {
                    (name, difficult, coords) = (None, false, [None; 4]);
                }
                path.push(tag);
            }
            // Every end tag pops the path (in the guard); only </object> completes a box.
            Event::End(_) if path.pop().as_deref() == Some("object") => {
                let class = name.take().ok_or("an <object> without <name>")?;
                let class = VOC_CLASSES
                    .iter()
                    .position(|c| *c == class)
                    .ok_or_else(|| format!("unknown class `{class}`"))?;
                let [Some(x1), Some(y1), Some(x2), Some(y2)] = coords else {
                    return Err("an <object> without a complete <bndbox>".into());
                };
                boxes.push(BBox {
                    x1,
                    y1,
                    x2,
                    y2,
                    class: class as u32,
                    difficult,
                    crowd: false,
                });
            }
            Event::Text(t) => {
                let text = AsRef::<str>::as_ref(&t).trim().to_string();
                let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
                let num = || {
                    text.parse::<f32>()
                        .map_err(|_| format!("`{text}` is not a number"))
                };
                match (parent, path.last().map(String::as_str)) {
                    (Some("size"), Some("width")) => width = Some(num()? as u32),
                    (Some("size"), Some("height")) => height = Some(num()? as u32),
                    (Some("object"), Some("name")) => name = Some(text),
                    (Some("object"), Some("difficult")) => difficult = text == "1",
                    (Some("bndbox"), Some(tag)) => {
                        let i = ["xmin", "ymin", "xmax", "ymax"]
                            .iter()
                            .position(|t| *t == tag);
                        if let Some(i) = i {
                            coords[i] = Some(num()?);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((
        width.ok_or("no <size><width>")?,
        height.ok_or("no <size><height>")?,
        boxes,
    ))
}

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnn>,
    categories: Vec<CocoCat>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct CocoAnn {
    image_id: u64,
    category_id: u64,
    bbox: [f32; 4],
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct CocoCat {
    id: u64,
    name: String,
}

/// A COCO split (`train2017`, `val2017`); `root` holds `annotations/` and the image folders.
/// Category ids map to contiguous classes in ascending id order.
pub fn coco(root: &Path, split: &str) -> Result<(DetDataset, Vec<u64>), DataError> {
    let ann = root
        .join("annotations")
        .join(format!("instances_{split}.json"));
    let layout = "{annotations/instances_<split>.json, <split>/<file_name>}";
    let text = std::fs::read_to_string(&ann).map_err(|_| DataError::Layout {
        dataset: "coco",
        path: ann.clone(),
        layout,
    })?;
    let file: CocoFile = serde_json::from_str(&text)
        .map_err(|e| DataError::bad(&ann, format!("bad COCO JSON: {e}")))?;
    let mut cats = file.categories;
    cats.sort_by_key(|c| c.id);
    let class_of: HashMap<u64, u32> = cats
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i as u32))
        .collect();
    let mut by_image: HashMap<u64, Vec<BBox>> = HashMap::new();
    for a in file.annotations {
        let class = *class_of.get(&a.category_id).ok_or_else(|| {
            DataError::bad(&ann, format!("category {} is not listed", a.category_id))
        })?;
        let [x, y, w, h] = a.bbox;
        by_image.entry(a.image_id).or_default().push(BBox {
            x1: x,
            y1: y,
            x2: x + w,
            y2: y + h,
            class,
            difficult: false,
            crowd: a.iscrowd != 0,
        });
    }
    let samples = file
        .images
        .into_iter()
        .map(|img| DetSample {
            image: root.join(split).join(&img.file_name),
            id: img.id,
            width: img.width,
            height: img.height,
            boxes: by_image.remove(&img.id).unwrap_or_default(),
        })
        .collect();
    let ids = cats.iter().map(|c| c.id).collect();
    Ok((
        DetDataset {
            classes: cats.into_iter().map(|c| c.name).collect(),
            samples,
        },
        ids,
    ))
}
