//! netaug-data: datasets (ImageNet-style folders, the fine-grained sets, Fashion-MNIST IDX,
//! Pascal VOC, COCO) in their published layouts, the official transforms, and a parallel,
//! seeded loader that keeps the trainer fed.
//!
//! Nothing here yet: the data issue builds it. The crate exists so the workspace has the
//! shape of DESIGN.md and dependencies can point the right way from the start.
