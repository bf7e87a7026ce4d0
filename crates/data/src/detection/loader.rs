//! The detection loader: batches of images with their boxes, seeded like the
//! classification [`crate::Loader`] (an epoch's order depends on (seed, epoch), an image's
//! augmentation on (seed, epoch, image), a batch's training size on (seed, epoch, batch)),
//! decoded and augmented on a rayon pool and prepared ahead on a producer thread.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::boxes::{BBox, DetSample, flip, random_crop_resize, resize};
use crate::ImageRef;
use crate::error::DataError;
use crate::image::{self, Image};
use crate::loader::{EpochIter, LoaderConfig, Normalize, mix, spawn_epoch};
use crate::transform::{FImage, color_jitter};

/// Box-aware training augmentation: a random crop (each side `min_scale..=1` of the
/// image's) resized to a square side drawn per batch from `sizes` (multi-scale training
/// with more than one), a horizontal flip, brightness and saturation jitter.
#[derive(Clone, Debug, PartialEq)]
pub struct DetTrainTransform {
    /// Square training sides; one is drawn per batch.
    pub sizes: Vec<usize>,
    /// Smallest crop side as a fraction of the image's side (1 = no crop).
    pub min_scale: f64,
    /// Random horizontal flip with p = 0.5.
    pub flip: bool,
    /// Brightness jitter: factor in [1 - b, 1 + b].
    pub brightness: f32,
    /// Saturation jitter: factor in [1 - s, 1 + s].
    pub saturation: f32,
}

impl DetTrainTransform {
    /// The defaults at one `size`: crops down to half a side, flip, the classification
    /// recipe's jitter (32/255 brightness, 0.5 saturation).
    pub fn new(size: usize) -> Self {
        Self {
            sizes: vec![size],
            min_scale: 0.5,
            flip: true,
            brightness: 32.0 / 255.0,
            saturation: 0.5,
        }
    }
}

/// What each image goes through.
#[derive(Clone, Debug, PartialEq)]
pub enum DetTransform {
    /// Crop, flip, jitter, multi-scale.
    Train(DetTrainTransform),
    /// Resize to a `size x size` square (boxes scaled with it).
    Eval(usize),
}

/// A batch: images, their boxes in the batch's pixels, and what maps them back.
#[derive(Clone, Debug, PartialEq)]
pub struct DetBatch {
    /// Normalized CHW images, `shape` = [N, C, H, W].
    pub images: Vec<f32>,
    /// Shape of `images`.
    pub shape: [usize; 4],
    /// Boxes of each image in the batch's pixels (training: crowd boxes dropped).
    pub boxes: Vec<Vec<BBox>>,
    /// Dataset ids of the images.
    pub ids: Vec<u64>,
    /// Original (width, height) of each image, to map detections back.
    pub original: Vec<(usize, usize)>,
}

/// Boxes narrower or lower than this many pixels after augmentation are dropped.
const MIN_BOX_SIDE: f32 = 2.0;

/// The loader over a detection split.
pub struct DetLoader {
    samples: Arc<Vec<DetSample>>,
    transform: Arc<DetTransform>,
    norm: Arc<Normalize>,
    cfg: LoaderConfig,
    pool: Arc<rayon::ThreadPool>,
}

impl DetLoader {
    /// A loader; refuses an empty split, batch size 0 or an empty size list.
    pub fn new(
        samples: Vec<DetSample>,
        transform: DetTransform,
        norm: Normalize,
        cfg: LoaderConfig,
    ) -> Result<Self, DataError> {
        if samples.is_empty() {
            return Err(DataError::BadOption("the split has no images".into()));
        }
        cfg.check(samples.len())?;
        let sizes_ok = match &transform {
            DetTransform::Train(t) => !t.sizes.is_empty() && t.sizes.iter().all(|&s| s > 0),
            DetTransform::Eval(s) => *s > 0,
        };
        if !sizes_ok {
            return Err(DataError::BadOption(
                "image sizes must be at least 1 pixel".into(),
            ));
        }
        let pool = cfg.pool("netaug-det-loader")?;
        Ok(Self {
            samples: Arc::new(samples),
            transform: Arc::new(transform),
            norm: Arc::new(norm),
            cfg,
            pool,
        })
    }

    /// Images per epoch.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the loader has no images (never: [`DetLoader::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, in dataset order.
    pub fn samples(&self) -> &[DetSample] {
        &self.samples
    }

    /// Batches per epoch (of this shard, as [`crate::Loader`]).
    pub fn batches(&self) -> usize {
        self.cfg.batches(self.samples.len())
    }

    /// The batches of `epoch`, prepared ahead on a background thread.
    pub fn epoch(&self, epoch: u64) -> EpochIter<DetBatch> {
        let chunks = self.cfg.chunks(&self.cfg.order(self.samples.len(), epoch));
        let job = Job {
            samples: self.samples.clone(),
            transform: self.transform.clone(),
            norm: self.norm.clone(),
            pool: self.pool.clone(),
            seed: self.cfg.seed,
            epoch,
        };
        spawn_epoch(self.cfg.prefetch, chunks, move |b, chunk| {
            job.batch(b, chunk)
        })
    }
}

/// An image ready for the batch, its boxes in its pixels, its original (width, height).
type Prepared = (FImage, Vec<BBox>, (usize, usize));

struct Job {
    samples: Arc<Vec<DetSample>>,
    transform: Arc<DetTransform>,
    norm: Arc<Normalize>,
    pool: Arc<rayon::ThreadPool>,
    seed: u64,
    epoch: u64,
}

impl Job {
    fn batch(&self, b: usize, indices: &[usize]) -> Result<DetBatch, DataError> {
        let size = match &*self.transform {
            DetTransform::Train(t) => {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(mix(self.seed, self.epoch, u64::MAX - 1 - b as u64));
                t.sizes[rng.random_range(0..t.sizes.len())]
            }
            DetTransform::Eval(size) => *size,
        };
        let results: Vec<Result<Prepared, DataError>> = self
            .pool
            .install(|| indices.par_iter().map(|&i| self.image(i, size)).collect());
        let mut batch = DetBatch {
            images: Vec::with_capacity(indices.len() * 3 * size * size),
            shape: [0, 0, size, size],
            boxes: Vec::new(),
            ids: Vec::new(),
            original: Vec::new(),
        };
        for (&i, r) in indices.iter().zip(results) {
            let (img, boxes, original) = r?;
            batch.shape[1] = img.channels;
            batch
                .images
                .extend(img.to_chw(&self.norm.mean, &self.norm.std));
            batch.boxes.push(boxes);
            batch.ids.push(self.samples[i].id);
            batch.original.push(original);
        }
        batch.shape[0] = batch.ids.len();
        Ok(batch)
    }

    /// Image `i` at `size` x `size`, its boxes, its original size.
    fn image(&self, i: usize, size: usize) -> Result<Prepared, DataError> {
        let sample = &self.samples[i];
        let img: Image = image::load(&ImageRef::File(sample.image.clone()), None)?;
        let original = (img.width, img.height);
        let (img, boxes) = match &*self.transform {
            DetTransform::Eval(_) => resize(&img, &sample.boxes, size, size),
            DetTransform::Train(t) => {
                let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, self.epoch, i as u64));
                let usable: Vec<BBox> = sample.boxes.iter().filter(|b| !b.crowd).cloned().collect();
                let (mut img, mut boxes) =
                    random_crop_resize(&img, &usable, t.min_scale, size, size, &mut rng);
                if t.flip && rng.random_bool(0.5) {
                    flip(&mut img, &mut boxes);
                }
                color_jitter(&mut img, t.brightness, t.saturation, &mut rng);
                boxes.retain(|b| b.x2 - b.x1 >= MIN_BOX_SIDE && b.y2 - b.y1 >= MIN_BOX_SIDE);
                (img, boxes)
            }
        };
        Ok((img, boxes, original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pasted::{PasteOptions, paste, write_coco};

    fn pasted_split(root: &std::path::Path) -> Vec<DetSample> {
        let mut item = vec![0u8; 28 * 28];
        for y in 4..24 {
            for x in 6..22 {
                item[y * 28 + x] = 180;
            }
        }
        let items = vec![
            (Image::new(28, 28, 1, item), 0),
            (Image::new(28, 28, 1, vec![200; 784]), 1),
        ];
        let o = PasteOptions {
            canvas: 80,
            max_items: 3,
            min_side: 20,
            max_side: 40,
            seed: 2,
        };
        let classes = vec!["a".to_string(), "b".to_string()];
        write_coco(root, "train", &paste(&items, 10, &o), &classes).unwrap();
        crate::detection::coco(root, "train").unwrap().0.samples
    }

    #[test]
    fn batches_are_seeded_multi_scale_and_keep_boxes_inside() {
        let root = std::env::temp_dir().join(format!("netaug-detloader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let samples = pasted_split(&root);
        let mut t = DetTrainTransform::new(64);
        t.sizes = vec![32, 64];
        let loader = |workers| {
            let mut cfg = LoaderConfig::train(4, 7);
            cfg.workers = workers;
            DetLoader::new(
                samples.clone(),
                DetTransform::Train(t.clone()),
                Normalize::imagenet(),
                cfg,
            )
            .unwrap()
        };
        let a: Vec<DetBatch> = loader(1).epoch(3).map(Result::unwrap).collect();
        let b: Vec<DetBatch> = loader(2).epoch(3).map(Result::unwrap).collect();
        assert_eq!(a, b, "the same batches whatever the thread count");
        assert_eq!(a.len(), 2, "10 images, batch 4, drop_last");
        let sizes: std::collections::BTreeSet<usize> = (0..6)
            .flat_map(|e| {
                loader(1)
                    .epoch(e)
                    .map(|b| b.unwrap().shape[2])
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            sizes.into_iter().collect::<Vec<_>>(),
            vec![32, 64],
            "both training sizes drawn"
        );
        for batch in &a {
            let [n, c, h, w] = batch.shape;
            assert_eq!((n, c, h), (4, 3, w));
            assert_eq!(batch.images.len(), n * c * h * w);
            for b in batch.boxes.iter().flatten() {
                assert!(
                    b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= w as f32 && b.y2 <= h as f32,
                    "{b:?}"
                );
                assert!(b.x2 - b.x1 >= MIN_BOX_SIDE && b.y2 - b.y1 >= MIN_BOX_SIDE);
            }
        }
        // Evaluation: every image in order, boxes scaled by size / original.
        let eval = DetLoader::new(
            samples.clone(),
            DetTransform::Eval(40),
            Normalize::imagenet(),
            LoaderConfig::eval(4),
        )
        .unwrap();
        let batches: Vec<DetBatch> = eval.epoch(0).map(Result::unwrap).collect();
        assert_eq!(
            batches.iter().map(|b| b.shape[0]).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let first = &batches[0];
        assert_eq!(first.ids[0], samples[0].id);
        assert_eq!(first.original[0], (80, 80));
        let (got, want) = (&first.boxes[0][0], &samples[0].boxes[0]);
        assert!((got.x1 - want.x1 * 0.5).abs() < 1e-4 && (got.y2 - want.y2 * 0.5).abs() < 1e-4);
        let bad = DetLoader::new(
            samples,
            DetTransform::Eval(0),
            Normalize::imagenet(),
            LoaderConfig::eval(4),
        );
        assert!(bad.is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
