//! netaug-detect: the tensor-free parts of the YOLOv3-style detector: boxes and IoU
//! ([`geometry`]), anchors (the YOLOv3 set scaled to a resolution, or k-means with the
//! 1 - IoU distance on the training boxes, [`anchors`]), target assignment of ground-truth
//! boxes to a scale, cell and anchor ([`assign`]), and decoding the head's outputs into
//! scored boxes with per-class NMS ([`decode`]). The network and its loss build on these.
#![warn(missing_docs)]

pub mod anchors;
pub mod assign;
pub mod decode;
pub mod geometry;

pub use geometry::Corners;
