//! Reading ground truth and detections: COCO instances JSON (`images`, `annotations`,
//! `categories`), COCO results JSON (a list of `{image_id, category_id, bbox, score}`),
//! and Pascal VOC folders.

use std::path::Path;

use serde::Deserialize;

use crate::coco::{CocoGt, GtBox};
use crate::error::EvalError;
use crate::voc::{VocBox, VocGt};
use crate::{Detection, Xywh};

#[derive(Deserialize)]
struct GtFile {
    images: Vec<GtImage>,
    annotations: Vec<GtAnn>,
    categories: Vec<GtCat>,
}

#[derive(Deserialize)]
struct GtImage {
    id: u64,
}

#[derive(Deserialize)]
struct GtAnn {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: Xywh,
    /// Absent: the box's area.
    area: Option<f64>,
    #[serde(default)]
    iscrowd: u8,
    /// VOC's flag, kept by VOC-to-COCO converters.
    #[serde(default)]
    difficult: u8,
}

#[derive(Deserialize)]
struct GtCat {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct DetRecord {
    image_id: u64,
    category_id: u64,
    bbox: Xywh,
    score: f64,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::file(path, e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| EvalError::file(path, format!("{}: {}", e.path(), e.inner())))
}

/// A COCO instances file as COCO ground truth.
pub fn coco_gt(path: &Path) -> Result<CocoGt, EvalError> {
    let f: GtFile = read_json(path)?;
    Ok(CocoGt {
        image_ids: f.images.iter().map(|i| i.id).collect(),
        category_ids: f.categories.iter().map(|c| c.id).collect(),
        annotations: f
            .annotations
            .into_iter()
            .map(|a| GtBox {
                id: a.id,
                image_id: a.image_id,
                category_id: a.category_id,
                area: a.area.unwrap_or(a.bbox[2] * a.bbox[3]),
                bbox: a.bbox,
                iscrowd: a.iscrowd != 0,
            })
            .collect(),
    })
}

/// A COCO-format file as VOC ground truth (`difficult` per annotation; categories in
/// file order).
pub fn voc_gt_from_coco(path: &Path) -> Result<VocGt, EvalError> {
    let f: GtFile = read_json(path)?;
    let mut gt = VocGt {
        categories: f.categories.into_iter().map(|c| (c.id, c.name)).collect(),
        images: f.images.iter().map(|i| (i.id, Vec::new())).collect(),
    };
    for a in f.annotations {
        let [x, y, w, h] = a.bbox;
        gt.images
            .get_mut(&a.image_id)
            .ok_or_else(|| {
                EvalError::file(path, format!("annotation {} names no listed image", a.id))
            })?
            .push(VocBox {
                category_id: a.category_id,
                corners: [x, y, x + w, y + h],
                difficult: a.difficult != 0,
            });
    }
    Ok(gt)
}

/// A Pascal VOC image set (`root` holds `VOCdevkit/` or is it; `year`/`set` such as
/// 2007/test) as VOC ground truth. Image ids are the numbers of the file stems
/// (`000001` -> 1) and category ids the class's position in the VOC list plus one.
pub fn voc_gt_from_folder(root: &Path, year: &str, set: &str) -> Result<VocGt, EvalError> {
    let ds =
        netaug_data::detection::voc(root, &[(year, set)]).map_err(|e| EvalError::file(root, e))?;
    Ok(voc_gt_of(&ds.samples, &ds.classes))
}

/// VOC ground truth of loaded `samples` with `classes`: image ids are the samples', the
/// category id of class `c` is `c + 1`.
pub fn voc_gt_of(samples: &[netaug_data::detection::DetSample], classes: &[String]) -> VocGt {
    VocGt {
        categories: classes
            .iter()
            .enumerate()
            .map(|(i, c)| (i as u64 + 1, c.clone()))
            .collect(),
        images: samples
            .iter()
            .map(|s| {
                let boxes = s
                    .boxes
                    .iter()
                    .map(|b| VocBox {
                        category_id: b.class as u64 + 1,
                        corners: [b.x1 as f64, b.y1 as f64, b.x2 as f64, b.y2 as f64],
                        difficult: b.difficult,
                    })
                    .collect();
                (s.id, boxes)
            })
            .collect(),
    }
}

/// A COCO results file.
pub fn detections(path: &Path) -> Result<Vec<Detection>, EvalError> {
    let records: Vec<DetRecord> = read_json(path)?;
    Ok(records
        .into_iter()
        .map(|r| Detection {
            image_id: r.image_id,
            category_id: r.category_id,
            bbox: r.bbox,
            score: r.score,
        })
        .collect())
}
