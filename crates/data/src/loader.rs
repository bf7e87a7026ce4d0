//! A seeded, sharded, parallel loader: the order of an epoch depends only on (seed, epoch,
//! rank, world size) and each image's augmentation only on (seed, epoch, image), so a
//! batch is the same whatever the thread count or timing. Images are decoded and
//! augmented on a rayon pool; a producer thread keeps `prefetch` batches ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::Sample;
use crate::error::DataError;
use crate::image;
use crate::transform::{EvalTransform, FImage, IMAGENET_MEAN, IMAGENET_STD, TrainTransform};

/// What each image goes through.
#[derive(Clone, Debug)]
pub enum Transform {
    /// Random crop, flip, jitter, optional policy.
    Train(TrainTransform),
    /// Resize and center crop.
    Eval(EvalTransform),
}

/// Per-channel normalization (0..1 scale).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    /// Means.
    pub mean: Vec<f32>,
    /// Standard deviations.
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet statistics (also used for the other RGB sets, as the official code).
    pub fn imagenet() -> Self {
        Self {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        }
    }

    /// Fashion-MNIST's training-set statistics.
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// The usual statistics for `channels`-channel data.
    pub fn for_channels(channels: usize) -> Self {
        if channels == 1 {
            Self::fashion_mnist()
        } else {
            Self::imagenet()
        }
    }
}

/// Loader settings.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Shuffle each epoch (training).
    pub shuffle: bool,
    /// Drop the last incomplete batch (training).
    pub drop_last: bool,
    /// Seed of the order and of the augmentations.
    pub seed: u64,
    /// This process's shard.
    pub rank: usize,
    /// Number of shards.
    pub world_size: usize,
    /// Decode threads; 0 = one per core.
    pub workers: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Skip unreadable images (counted, see [`Loader::skipped`]) instead of failing.
    pub skip_corrupt: bool,
    /// Mixup with this Beta(alpha, alpha) (training).
    pub mixup_alpha: Option<f64>,
    /// Load only these parts of every batch (a rank's shares of a run over processes).
    pub part: Option<BatchPart>,
}

/// Consecutive parts of every batch: the batch cut into `of` parts as [`Batch::split`]
/// cuts it, of which parts `first..first + count` are kept. One rank's shares of a run
/// spread over processes: the ranks together load each batch once, and each image gets
/// the augmentation it gets in one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPart {
    /// The first part kept.
    pub first: usize,
    /// How many consecutive parts are kept.
    pub count: usize,
    /// The parts a batch is cut into.
    pub of: usize,
}

impl BatchPart {
    /// The positions, in a batch of `n` images, of the parts kept.
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        let of = self.of.max(1);
        let start = |k: usize| k * (n / of) + k.min(n % of);
        start(self.first)..start(self.first + self.count)
    }
}

impl LoaderConfig {
    /// Training defaults: shuffled, drop_last, one shard, all cores, 4 batches ahead.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            shuffle: true,
            drop_last: true,
            seed,
            rank: 0,
            world_size: 1,
            workers: 0,
            prefetch: 4,
            skip_corrupt: false,
            mixup_alpha: None,
            part: None,
        }
    }

    /// Evaluation defaults: in order, every image.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            shuffle: false,
            drop_last: false,
            ..Self::train(batch_size, 0)
        }
    }
}

impl LoaderConfig {
    /// Refuses batch size 0, a bad shard, or fewer than `n` images than ranks.
    pub(crate) fn check(&self, n: usize) -> Result<(), DataError> {
        if self.batch_size == 0 {
            return Err(DataError::BadOption("batch size must be at least 1".into()));
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return Err(DataError::BadOption(format!(
                "rank {} is not below world size {}",
                self.rank, self.world_size
            )));
        }
        if let Some(p) = self.part
            && (p.count == 0 || p.first + p.count > p.of)
        {
            return Err(DataError::BadOption(format!(
                "parts {}..{} of a batch cut into {}",
                p.first,
                p.first + p.count,
                p.of
            )));
        }
        if n < self.world_size {
            return Err(DataError::BadOption(format!(
                "{n} images cannot be sharded over {} ranks",
                self.world_size
            )));
        }
        Ok(())
    }

    /// The decode threads (`workers`; 0 = one per core), named `<name>-<i>`.
    pub(crate) fn pool(&self, name: &'static str) -> Result<Arc<rayon::ThreadPool>, DataError> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.workers)
            .thread_name(move |i| format!("{name}-{i}"))
            .build()
            .map(Arc::new)
            .map_err(|e| DataError::BadOption(format!("cannot start loader threads: {e}")))
    }

    /// Images of this shard per epoch, of `n`.
    pub(crate) fn shard_len(&self, n: usize) -> usize {
        n / self.world_size
    }

    /// Batches per epoch, of `n` images.
    pub(crate) fn batches(&self, n: usize) -> usize {
        let n = self.shard_len(n);
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// This shard's indices of `n` samples for `epoch`, in order: the shuffled list (the
    /// same on every rank) cut to a multiple of the world size, every `world_size`-th
    /// from `rank`.
    pub(crate) fn order(&self, n: usize, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        if self.shuffle {
            idx.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
                self.seed,
                epoch,
                u64::MAX,
            )));
        }
        let keep = n / self.world_size * self.world_size;
        idx.truncate(keep);
        idx.into_iter()
            .skip(self.rank)
            .step_by(self.world_size)
            .collect()
    }

    /// `order` in batches; with `drop_last`, without a short last one; with `part`, each
    /// batch cut to the part's images.
    pub(crate) fn chunks(&self, order: &[usize]) -> Vec<Vec<usize>> {
        let bs = self.batch_size;
        let mut chunks: Vec<Vec<usize>> = order.chunks(bs).map(<[usize]>::to_vec).collect();
        if self.drop_last && chunks.last().is_some_and(|c| c.len() < bs) {
            chunks.pop();
        }
        if let Some(part) = self.part {
            for chunk in &mut chunks {
                *chunk = chunk[part.range(chunk.len())].to_vec();
            }
        }
        chunks
    }
}

/// Mixup applied to a batch: images are `lam * x + (1 - lam) * x[perm]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    /// Weight of the batch's own labels.
    pub lam: f32,
    /// The partner of each image.
    pub perm: Vec<usize>,
}

/// A batch of normalized images `[n, c, h, w]` and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `n * c * h * w` values, CHW per image.
    pub images: Vec<f32>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// Labels.
    pub labels: Vec<u32>,
    /// Indices of the images in the loader's sample list.
    pub indices: Vec<usize>,
    /// Mixup partners and weight, when mixup is on.
    pub mix: Option<Mix>,
}

impl Batch {
    /// The batch cut into `parts` batches of consecutive images, sizes as even as they
    /// can be (the first `n % parts` get one more); empty parts are left out. Mixup
    /// partners do not survive a cut: a mixed batch keeps its `mix` whole only when
    /// `parts` is 1.
    pub fn split(self, parts: usize) -> Vec<Batch> {
        let n = self.labels.len();
        let parts = parts.max(1);
        if parts == 1 {
            return vec![self];
        }
        let [_, c, h, w] = self.shape;
        let per_image = c * h * w;
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for k in 0..parts {
            let len = n / parts + usize::from(k < n % parts);
            if len == 0 {
                continue;
            }
            let end = start + len;
            out.push(Batch {
                images: self.images[start * per_image..end * per_image].to_vec(),
                shape: [len, c, h, w],
                labels: self.labels[start..end].to_vec(),
                indices: self.indices[start..end].to_vec(),
                mix: None,
            });
            start = end;
        }
        out
    }
}

/// The loader over a list of samples.
pub struct Loader {
    samples: Arc<Vec<Sample>>,
    transform: Arc<Transform>,
    norm: Arc<Normalize>,
    cfg: LoaderConfig,
    pool: Arc<rayon::ThreadPool>,
    skipped: Arc<AtomicUsize>,
}

impl Loader {
    /// A loader; refuses an empty sample list, batch size 0 or a bad shard.
    pub fn new(
        samples: Vec<Sample>,
        transform: Transform,
        norm: Normalize,
        cfg: LoaderConfig,
    ) -> Result<Self, DataError> {
        cfg.check(samples.len())?;
        let pool = cfg.pool("netaug-loader")?;
        Ok(Self {
            samples: Arc::new(samples),
            transform: Arc::new(transform),
            norm: Arc::new(norm),
            cfg,
            pool,
            skipped: Arc::default(),
        })
    }

    /// From now on, loads only `part` of every batch.
    pub fn set_part(&mut self, part: BatchPart) -> Result<(), DataError> {
        let cfg = LoaderConfig {
            part: Some(part),
            ..self.cfg.clone()
        };
        cfg.check(self.samples.len())?;
        self.cfg = cfg;
        Ok(())
    }

    /// Images of this shard per epoch.
    pub fn shard_len(&self) -> usize {
        self.cfg.shard_len(self.samples.len())
    }

    /// Batches per epoch.
    pub fn batches(&self) -> usize {
        self.cfg.batches(self.samples.len())
    }

    /// Images skipped as unreadable so far (with `skip_corrupt`).
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// This shard's sample indices for `epoch`, in order: the shuffled list (the same on
    /// every rank) cut to a multiple of the world size, every `world_size`-th from `rank`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        self.cfg.order(self.samples.len(), epoch)
    }

    /// The batches of `epoch`, prepared ahead on a background thread.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let chunks = self.cfg.chunks(&self.order(epoch));
        let job = self.job(epoch, self.cfg.mixup_alpha);
        spawn_epoch(self.cfg.prefetch, chunks, move |b, chunk| {
            job.batch(b, chunk)
        })
    }

    /// Loads every image of the given indices as one batch, in order (no prefetch).
    pub fn batch_of(&self, epoch: u64, indices: &[usize]) -> Result<Batch, DataError> {
        self.job(epoch, None).batch(0, indices)
    }

    /// The work of one epoch, shareable with the producer thread.
    fn job(&self, epoch: u64, mixup: Option<f64>) -> Job {
        Job {
            samples: self.samples.clone(),
            transform: self.transform.clone(),
            norm: self.norm.clone(),
            pool: self.pool.clone(),
            skipped: self.skipped.clone(),
            seed: self.cfg.seed,
            skip_corrupt: self.cfg.skip_corrupt,
            mixup,
            epoch,
        }
    }
}

/// A fixed random subset of `n` samples (all of them if fewer), for BN re-calibration:
/// the same for a given seed, in the subset's own random order.
pub fn fixed_subset<T: Clone>(samples: &[T], n: usize, seed: u64) -> Vec<T> {
    let mut idx: Vec<usize> = (0..samples.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, u64::MAX, 0)));
    idx.truncate(n);
    idx.into_iter().map(|i| samples[i].clone()).collect()
}

/// One stream seed from three numbers (splitmix64 over their combination).
pub(crate) fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut x = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x = z ^ (z >> 31);
    }
    x
}

struct Job {
    samples: Arc<Vec<Sample>>,
    transform: Arc<Transform>,
    norm: Arc<Normalize>,
    pool: Arc<rayon::ThreadPool>,
    skipped: Arc<AtomicUsize>,
    seed: u64,
    skip_corrupt: bool,
    mixup: Option<f64>,
    epoch: u64,
}

impl Job {
    fn image(&self, i: usize) -> Result<FImage, DataError> {
        let sample = &self.samples[i];
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, self.epoch, i as u64));
        let min_side = match &*self.transform {
            Transform::Train(t) => t.decode_min_side(),
            Transform::Eval(t) => t.resize_side(),
        };
        let img = image::load(&sample.image, Some(min_side))?;
        Ok(match &*self.transform {
            Transform::Train(t) => t.apply(&img, &mut rng),
            Transform::Eval(t) => t.apply(&img),
        })
    }

    fn batch(&self, b: usize, indices: &[usize]) -> Result<Batch, DataError> {
        let results: Vec<(usize, Result<FImage, DataError>)> = self
            .pool
            .install(|| indices.par_iter().map(|&i| (i, self.image(i))).collect());
        let mut images = Vec::new();
        let (mut labels, mut kept) = (Vec::new(), Vec::new());
        let mut shape = [0, 0, 0, 0];
        for (i, r) in results {
            let img = match r {
                Ok(img) => img,
                Err(e) if self.skip_corrupt => {
                    tracing::warn!("skipping unreadable image: {e}");
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => return Err(e),
            };
            shape = [0, img.channels, img.height, img.width];
            images.extend(img.to_chw(&self.norm.mean, &self.norm.std));
            labels.push(self.samples[i].label);
            kept.push(i);
        }
        shape[0] = labels.len();
        let mut batch = Batch {
            images,
            shape,
            labels,
            indices: kept,
            mix: None,
        };
        if let Some(alpha) = self.mixup {
            let mut rng =
                ChaCha8Rng::seed_from_u64(mix(self.seed, self.epoch, u64::MAX - 1 - b as u64));
            mixup(&mut batch, alpha, &mut rng);
        }
        Ok(batch)
    }
}

/// Mixes each image with a random partner: `lam ~ Beta(alpha, alpha)`.
pub fn mixup(batch: &mut Batch, alpha: f64, rng: &mut impl Rng) {
    use rand_distr::{Beta, Distribution};
    let n = batch.shape[0];
    if n == 0 || alpha <= 0.0 {
        return;
    }
    let lam = Beta::new(alpha, alpha).map_or(1.0, |d| d.sample(rng)) as f32;
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(rng);
    let per = batch.images.len() / n;
    let src = batch.images.clone();
    for (i, &j) in perm.iter().enumerate() {
        for k in 0..per {
            batch.images[i * per + k] = lam * src[i * per + k] + (1.0 - lam) * src[j * per + k];
        }
    }
    batch.mix = Some(Mix { lam, perm });
}

/// Runs `make` over `chunks` (batch index, sample indices) on a producer thread that keeps
/// `prefetch` batches ready; stops after the first error.
pub(crate) fn spawn_epoch<T: Send + 'static>(
    prefetch: usize,
    chunks: Vec<Vec<usize>>,
    make: impl Fn(usize, &[usize]) -> Result<T, DataError> + Send + 'static,
) -> EpochIter<T> {
    let (tx, rx) = crossbeam_channel::bounded(prefetch.max(1));
    let handle = std::thread::Builder::new()
        .name("netaug-loader".into())
        .spawn(move || {
            for (b, chunk) in chunks.into_iter().enumerate() {
                let batch = make(b, &chunk);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        })
        .expect("spawning the loader thread");
    EpochIter {
        rx: Some(rx),
        handle: Some(handle),
    }
}

/// Batches of one epoch; dropping it stops the producer.
pub struct EpochIter<T = Batch> {
    rx: Option<crossbeam_channel::Receiver<Result<T, DataError>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl<T> Iterator for EpochIter<T> {
    type Item = Result<T, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl<T> Drop for EpochIter<T> {
    fn drop(&mut self) {
        // Closing the channel makes the producer's next send fail and return.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, BatchPart, LoaderConfig};

    /// A batch of `n` one-pixel, two-channel images whose values name the image.
    fn batch(n: usize) -> Batch {
        Batch {
            images: (0..n).flat_map(|i| [i as f32, -(i as f32)]).collect(),
            shape: [n, 2, 1, 1],
            labels: (0..n as u32).collect(),
            indices: (100..100 + n).collect(),
            mix: None,
        }
    }

    #[test]
    fn a_split_keeps_every_image_once_in_order() {
        let parts = batch(7).split(3);
        let sizes: Vec<usize> = parts.iter().map(|b| b.shape[0]).collect();
        assert_eq!(sizes, [3, 2, 2]);
        let labels: Vec<u32> = parts.iter().flat_map(|b| b.labels.clone()).collect();
        assert_eq!(labels, (0..7).collect::<Vec<_>>());
        let images: Vec<f32> = parts.iter().flat_map(|b| b.images.clone()).collect();
        assert_eq!(images, batch(7).images);
        assert_eq!(parts[1].indices, [103, 104]);
        assert!(parts.iter().all(|b| b.images.len() == b.shape[0] * 2));
    }

    #[test]
    fn a_part_holds_the_images_of_the_same_parts_of_a_split() {
        for (n, of) in [(7, 3), (8, 4), (10, 4), (128, 8)] {
            let parts = batch(n).split(of);
            for first in 0..of {
                for count in 1..=of - first {
                    let range = BatchPart { first, count, of }.range(n);
                    let kept: Vec<u32> = parts[first..first + count]
                        .iter()
                        .flat_map(|b| b.labels.clone())
                        .collect();
                    assert_eq!(
                        kept,
                        batch(n).labels[range].to_vec(),
                        "{n} {of} {first} {count}"
                    );
                }
            }
        }
    }

    #[test]
    fn ranks_loading_their_parts_load_each_batch_of_one_loader_once() {
        let of = 3;
        let whole = LoaderConfig::train(10, 4);
        let order = whole.order(95, 2);
        let all = whole.chunks(&order);
        let ranks: Vec<Vec<Vec<usize>>> = (0..of)
            .map(|first| {
                let cfg = LoaderConfig {
                    part: Some(BatchPart {
                        first,
                        count: 1,
                        of,
                    }),
                    ..LoaderConfig::train(10, 4)
                };
                cfg.check(95).unwrap();
                cfg.chunks(&cfg.order(95, 2))
            })
            .collect();
        assert_eq!(all.len(), 9);
        for (b, batch) in all.iter().enumerate() {
            let joined: Vec<usize> = ranks.iter().flat_map(|r| r[b].clone()).collect();
            assert_eq!(&joined, batch);
        }
        let bad = LoaderConfig {
            part: Some(BatchPart {
                first: 2,
                count: 2,
                of: 3,
            }),
            ..LoaderConfig::train(10, 4)
        };
        assert!(bad.check(95).is_err());
    }

    #[test]
    fn more_parts_than_images_leaves_the_empty_ones_out() {
        assert_eq!(batch(2).split(4).len(), 2);
        assert_eq!(batch(5).split(1), vec![batch(5)]);
    }
}
