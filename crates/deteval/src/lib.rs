//! netaug-deteval: detection metrics, computed exactly as the reference tools do.
//! [`coco`] gives the 12 summary numbers of pycocotools' `COCOeval` (bbox); [`voc`] the
//! per-class AP and mAP at IoU 0.5 of the Pascal VOC devkit (`voc_eval.py`), with the
//! VOC2007 11-point or the VOC2010+ all-point metric. [`io`] reads the files: COCO
//! ground truth and results JSON, and VOC annotation folders.
#![warn(missing_docs)]

pub mod coco;
mod error;
pub mod io;
pub mod voc;

pub use error::EvalError;

/// A box as COCO writes it: left, top, width, height.
pub type Xywh = [f64; 4];

/// One detection of a results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Image id.
    pub image_id: u64,
    /// Category id.
    pub category_id: u64,
    /// The box.
    pub bbox: Xywh,
    /// Confidence.
    pub score: f64,
}
