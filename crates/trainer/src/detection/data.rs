//! From a run config's `data` section to a detection training split, an evaluation split
//! and its ground truth: COCO (`annotations/instances_{train2017,val2017}.json`, or
//! `instances_{train,val}.json` as `netaug data pasted` writes) and Pascal VOC (train on
//! 2007 and 2012 trainval, those present; evaluate on 2007 test).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netaug_data::detection::{self, DetSample};
use netaug_deteval::coco::{CocoGt, GtBox};
use netaug_deteval::io::voc_gt_of;
use netaug_deteval::voc::VocGt;
use netaug_model::detector::Category;

use crate::config::DataConfig;
use crate::data::{root, subset};
use crate::error::TrainError;

/// What the evaluation split is scored against.
#[derive(Clone, Debug)]
pub enum GroundTruth {
    /// COCO: the 12 numbers of pycocotools (mAP50 = AP50, mAP = AP).
    Coco(CocoGt),
    /// VOC: the devkit's 11-point mAP50; `coco` gives mAP@[.5:.95] with difficult boxes
    /// as crowd regions (ignored, as the devkit ignores them).
    Voc {
        /// The devkit's ground truth.
        voc: VocGt,
        /// The same boxes for COCOeval.
        coco: CocoGt,
    },
}

/// A detection dataset opened for a run.
#[derive(Clone, Debug)]
pub struct DetData {
    /// Class index -> dataset category.
    pub categories: Vec<Category>,
    /// Training images (after `data.train_subset`).
    pub train: Vec<DetSample>,
    /// Evaluation images (after `data.eval_subset`).
    pub eval: Vec<DetSample>,
    /// Ground truth of `eval`.
    pub gt: GroundTruth,
}

/// Opens `data.dataset` (`coco` or `voc`) at `data.root`.
pub fn open(data: &DataConfig) -> Result<DetData, TrainError> {
    let root = root(data)?;
    if !root.is_dir() {
        return Err(TrainError::setting(
            "data.root",
            format!("{}: no such folder", root.display()),
        ));
    }
    let bad = |e: netaug_data::DataError| TrainError::setting("data.root", e.to_string());
    let mut opened = match data.dataset.as_str() {
        "coco" => open_coco(&root).map_err(bad)?,
        "voc" => open_voc(&root).map_err(bad)?,
        other => {
            return Err(TrainError::setting(
                "data.dataset",
                format!("`{other}` is not a detection dataset (coco, voc)"),
            ));
        }
    };
    opened.train = subset(&opened.train, data.train_subset);
    opened.eval = subset(&opened.eval, data.eval_subset);
    let keep: BTreeSet<u64> = opened.eval.iter().map(|s| s.id).collect();
    match &mut opened.gt {
        GroundTruth::Coco(gt) => restrict(gt, &keep),
        GroundTruth::Voc { voc, coco } => {
            voc.images.retain(|id, _| keep.contains(id));
            restrict(coco, &keep);
        }
    }
    if opened.train.is_empty() || opened.eval.is_empty() {
        return Err(TrainError::setting(
            "data.root",
            format!("{}: a split has no images", root.display()),
        ));
    }
    Ok(opened)
}

/// The COCO split names under `root`: `train2017`/`val2017`, else `train`/`val`.
pub fn coco_splits(root: &Path) -> (&'static str, &'static str) {
    if annotation_file(root, "train").is_file() && !annotation_file(root, "train2017").is_file() {
        ("train", "val")
    } else {
        ("train2017", "val2017")
    }
}

/// `root/annotations/instances_<split>.json`.
pub fn annotation_file(root: &Path, split: &str) -> PathBuf {
    root.join("annotations")
        .join(format!("instances_{split}.json"))
}

fn open_coco(root: &Path) -> Result<DetData, netaug_data::DataError> {
    let (train_split, val_split) = coco_splits(root);
    let (train, ids) = detection::coco(root, train_split)?;
    let (eval, eval_ids) = detection::coco(root, val_split)?;
    if ids != eval_ids {
        return Err(netaug_data::DataError::bad(
            annotation_file(root, val_split),
            format!("its categories differ from {train_split}'s"),
        ));
    }
    let path = annotation_file(root, val_split);
    let gt = netaug_deteval::io::coco_gt(&path)
        .map_err(|e| netaug_data::DataError::bad(&path, e.to_string()))?;
    let categories = ids
        .iter()
        .zip(&train.classes)
        .map(|(&id, name)| Category {
            id,
            name: name.clone(),
        })
        .collect();
    Ok(DetData {
        categories,
        train: train.samples,
        eval: eval.samples,
        gt: GroundTruth::Coco(gt),
    })
}

fn open_voc(root: &Path) -> Result<DetData, netaug_data::DataError> {
    let devkit = detection::voc_devkit(root);
    let sets: Vec<(&str, &str)> = ["2007", "2012"]
        .into_iter()
        .filter(|y| {
            devkit
                .join(format!("VOC{y}/ImageSets/Main/trainval.txt"))
                .is_file()
        })
        .map(|y| (y, "trainval"))
        .collect();
    // With neither present, ask for 2007's so the error names the expected layout.
    let sets = if sets.is_empty() {
        vec![("2007", "trainval")]
    } else {
        sets
    };
    let train = detection::voc(root, &sets)?;
    let eval = detection::voc(root, &[("2007", "test")])?;
    let categories: Vec<Category> = train
        .classes
        .iter()
        .enumerate()
        .map(|(i, name)| Category {
            id: i as u64 + 1,
            name: name.clone(),
        })
        .collect();
    let gt = voc_truth(&eval.samples, &categories);
    Ok(DetData {
        categories,
        train: train.samples,
        eval: eval.samples,
        gt,
    })
}

/// The VOC ground truth of `samples` (VOC categories: ids are positions + 1), for the
/// devkit metric and, with difficult boxes as crowd regions, for COCOeval.
pub fn voc_truth(samples: &[DetSample], categories: &[Category]) -> GroundTruth {
    let names: Vec<String> = categories.iter().map(|c| c.name.clone()).collect();
    let voc = voc_gt_of(samples, &names);
    let mut coco = CocoGt {
        image_ids: samples.iter().map(|s| s.id).collect(),
        category_ids: voc.categories.iter().map(|c| c.0).collect(),
        annotations: Vec::new(),
    };
    for s in samples {
        for b in voc.images.get(&s.id).into_iter().flatten() {
            let [x1, y1, x2, y2] = b.corners;
            let (w, h) = (x2 - x1, y2 - y1);
            coco.annotations.push(GtBox {
                id: coco.annotations.len() as u64 + 1,
                image_id: s.id,
                category_id: b.category_id,
                bbox: [x1, y1, w, h],
                area: w * h,
                iscrowd: b.difficult,
            });
        }
    }
    GroundTruth::Voc { voc, coco }
}

/// Keeps the images of `keep` (and their annotations).
fn restrict(gt: &mut CocoGt, keep: &BTreeSet<u64>) {
    gt.image_ids.retain(|id| keep.contains(id));
    gt.annotations.retain(|a| keep.contains(&a.image_id));
}
