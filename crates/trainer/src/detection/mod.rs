//! Detection runs: a YOLOv3-style [`netaug_model::Detector`] on a zoo backbone trained on
//! COCO or Pascal VOC (or any set in their layouts), with baseline or NetAug steps, and
//! scored by mAP50 and mAP@[.5:.95] with netaug-deteval.
//!
//! [`data`] opens the splits and their ground truth, [`loss`] is the YOLOv3 loss,
//! [`eval`] decodes and scores, [`task`] is what the training loop ([`crate::run`]) needs
//! of a detection run.

pub mod data;
pub mod eval;
pub mod loss;
pub mod task;
