//! From a run config's `data` section to datasets and loaders.

use std::path::PathBuf;

use netaug_data::loader::fixed_subset;
use netaug_data::transform::Policy;
use netaug_data::{
    Dataset, EvalTransform, Loader, LoaderConfig, Normalize, OpenOptions, Sample, TrainTransform,
    Transform,
};

use crate::config::{DataConfig, RunConfig};
use crate::error::TrainError;

/// Seed of the fixed subsets (training subset, evaluation subset): the same images for
/// every run seed, so seeds vary only the training itself.
const SUBSET_SEED: u64 = 0x5eed;

/// The dataset root: `data.root`, or the Debian package's folder for Fashion-MNIST.
pub fn root(data: &DataConfig) -> Result<PathBuf, TrainError> {
    match &data.root {
        Some(r) => Ok(r.clone()),
        None if data.dataset == "fashion-mnist" => {
            Ok(PathBuf::from(netaug_data::dataset::FASHION_MNIST_ROOT))
        }
        // An unknown name is the error to report, not the folder it would need.
        None if !netaug_data::dataset::KNOWN.contains(&data.dataset.as_str()) => {
            Err(TrainError::setting(
                "data.dataset",
                netaug_data::DataError::UnknownDataset {
                    name: data.dataset.clone(),
                    known: netaug_data::dataset::KNOWN,
                }
                .to_string(),
            ))
        }
        None => Err(TrainError::setting(
            "data.root",
            format!("required for dataset `{}`", data.dataset),
        )),
    }
}

/// Opens the dataset of `data`; a missing or malformed layout names `data.root`.
pub fn open(data: &DataConfig) -> Result<Dataset, TrainError> {
    let root = root(data)?;
    if !root.exists() {
        let hint = if data.dataset == "fashion-mnist" {
            " (install the Debian package dataset-fashion-mnist: `make setup`)"
        } else {
            ""
        };
        return Err(TrainError::setting(
            "data.root",
            format!("{}: no such folder{hint}", root.display()),
        ));
    }
    netaug_data::open(&data.dataset, &root, &OpenOptions::default()).map_err(|e| match e {
        netaug_data::DataError::UnknownDataset { .. } => {
            TrainError::setting("data.dataset", e.to_string())
        }
        other => TrainError::setting("data.root", other.to_string()),
    })
}

/// The training split of `dataset` and, with `data.val_split`, the validation images held
/// out of it (a fixed, class-stratified sample, the same for every run seed); without it,
/// the whole training split and no held-out images.
pub fn train_and_val(
    dataset: &Dataset,
    data: &DataConfig,
) -> Result<(Vec<Sample>, Option<Vec<Sample>>), TrainError> {
    let samples = &dataset.train().samples;
    match data.val_split {
        Some(n) => {
            let h = netaug_data::holdout(samples, n, SUBSET_SEED)
                .map_err(|e| TrainError::setting("data.val_split", e.to_string()))?;
            Ok((h.train, Some(h.val)))
        }
        None => Ok((samples.clone(), None)),
    }
}

/// [`subset`] for a key that asks for `n` images of `samples`: more than there are is
/// refused naming `key` (it was cut to what there is without a word).
pub fn asked_subset<T: Clone>(
    samples: &[T],
    n: Option<usize>,
    key: &str,
    what: &str,
) -> Result<Vec<T>, TrainError> {
    match n {
        Some(n) if n > samples.len() => Err(TrainError::setting(
            key,
            format!(
                "{n} is more than the {} {what} images there are; lower it, or remove it \
                 to use them all",
                samples.len()
            ),
        )),
        _ => Ok(subset(samples, n)),
    }
}

/// The first `n` of a fixed shuffle of `samples` (all of them without `n`).
pub fn subset<T: Clone>(samples: &[T], n: Option<usize>) -> Vec<T> {
    match n {
        Some(n) => fixed_subset(samples, n, SUBSET_SEED),
        None => samples.to_vec(),
    }
}

/// Loader settings of BN re-calibration over `images` images: as the official
/// `sub_train` loader, full batches only (the short last one dropped) unless not even
/// one batch is full.
pub fn recal_config(batch_size: usize, workers: usize, images: usize) -> LoaderConfig {
    let mut cfg = LoaderConfig::eval(batch_size);
    cfg.workers = workers;
    cfg.drop_last = images >= batch_size;
    cfg
}

/// The training transform of a run: the official recipe, its crop scale, and the
/// AutoAugment / RandAugment regularizers.
pub fn train_transform(config: &RunConfig) -> TrainTransform {
    let mut t = TrainTransform::imagenet(config.data.image_size);
    t.scale = (config.data.min_scale, 1.0);
    if let Some(r) = &config.regularization {
        if r.autoaugment {
            t.policy = Some(Policy::AutoAugment);
        }
        if let Some(ra) = r.randaugment {
            t.policy = Some(Policy::RandAugment {
                ops: ra.ops,
                magnitude: ra.magnitude,
            });
        }
    }
    t
}

/// An in-order evaluation loader over `samples` at `size` pixels.
pub fn eval_loader(
    samples: Vec<Sample>,
    channels: usize,
    size: usize,
    batch_size: usize,
    workers: usize,
) -> Result<Loader, TrainError> {
    let mut cfg = LoaderConfig::eval(batch_size);
    cfg.workers = workers;
    Ok(Loader::new(
        samples,
        Transform::Eval(EvalTransform::imagenet(size)),
        Normalize::for_channels(channels),
        cfg,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_dataset_without_a_root_is_named_as_unknown() {
        let config = |dataset: &str| {
            let text = format!(
                "data: {{dataset: {dataset}, image_size: 32, batch_size: 64}}\n\
                 model: {{name: tinymbv2}}\nrun: {{epochs: 3}}\n"
            );
            RunConfig::parse(&text, "t.yaml", &[]).unwrap().data
        };
        // It used to say "data.root: required for dataset `mnist`".
        let e = root(&config("mnist")).unwrap_err().to_string();
        assert!(
            e.contains("data.dataset") && e.contains("unknown dataset `mnist`"),
            "{e}"
        );
        let e = root(&config("pets")).unwrap_err().to_string();
        assert!(e.contains("data.root: required"), "{e}");
        assert!(root(&config("fashion-mnist")).is_ok());
    }

    #[test]
    fn validation_images_are_never_trained_on() {
        use netaug_data::{ImageRef, Sample, Split};
        let samples: Vec<Sample> = (0..1000)
            .map(|i| Sample {
                image: ImageRef::File(format!("{i}.png").into()),
                label: (i % 10) as u32,
            })
            .collect();
        let dataset = Dataset {
            name: "folder".into(),
            root: "/".into(),
            classes: (0..10).map(|c| c.to_string()).collect(),
            splits: vec![Split::new("train", samples), Split::new("test", Vec::new())],
            channels: 1,
            train_split: "train".into(),
            eval_split: "test".into(),
            missing: Vec::new(),
        };
        let config = RunConfig::parse(
            "data: {dataset: folder, image_size: 32, batch_size: 8, val_split: 100, train_subset: 500}
model: {name: tinymbv2}
run: {epochs: 1}",
            "r.yaml",
            &[],
        )
        .unwrap();
        let (pool, val) = train_and_val(&dataset, &config.data).unwrap();
        let val: std::collections::BTreeSet<String> =
            val.unwrap().iter().map(|s| s.image.describe()).collect();
        assert_eq!(val.len(), 100);
        let trained = subset(&pool, config.data.train_subset);
        assert_eq!(trained.len(), 500);
        assert!(
            trained.iter().all(|s| !val.contains(&s.image.describe())),
            "a validation image is in the training subset"
        );
        // More than the pool is refused naming the key.
        let e = asked_subset(&pool, Some(pool.len() + 1), "data.train_subset", "training");
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("data.train_subset") && e.contains("is more than"),
            "{e}"
        );
        assert_eq!(
            asked_subset(&pool, Some(pool.len()), "k", "w")
                .unwrap()
                .len(),
            pool.len()
        );
        // Without a validation split the whole training split is the pool.
        let mut plain = config.data.clone();
        plain.val_split = None;
        let (pool, val) = train_and_val(&dataset, &plain).unwrap();
        assert_eq!((pool.len(), val.is_none()), (1000, true));
    }

    #[test]
    fn recalibration_uses_min_16000_all_images_in_full_batches() {
        let default = RunConfig::parse(
            "data: {dataset: fashion-mnist, image_size: 32, batch_size: 128}
model: {name: tinymbv2}
run: {epochs: 1}
netaug: {aug_expand_list: [1.0, 2.0], aug_width_mult_list: [1.0, 2.0]}",
            "r.yaml",
            &[],
        )
        .unwrap();
        let images = default.netaug.as_ref().unwrap().bn_recal_images;
        assert_eq!(images, 16_000, "the official sub_train size");
        for (train, want_images, want_batches) in [(5000, 5000, 39), (60_000, 16_000, 125)] {
            let samples: Vec<usize> = (0..train).collect();
            let subset = subset(&samples, Some(images));
            assert_eq!(subset.len(), want_images);
            let cfg = recal_config(128, 1, subset.len());
            assert!(cfg.drop_last, "the short last batch is dropped");
            assert_eq!(subset.len() / cfg.batch_size, want_batches);
        }
        assert!(
            !recal_config(128, 1, 100).drop_last,
            "one short batch is kept"
        );
    }
}
