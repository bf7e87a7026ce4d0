//! The loader: reproducible, sharded, parallel, skipping or naming bad images.

use std::path::PathBuf;

use netaug_data::dataset::{self, Sample};
use netaug_data::loader::{self, Loader, LoaderConfig, Normalize, Transform};
use netaug_data::{EvalTransform, OpenOptions, TrainTransform, fixtures};

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("netaug-loader-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn folder_samples(name: &str) -> (PathBuf, Vec<Sample>) {
    let root = temp(name);
    fixtures::folder(&root, &["a", "b", "c"], 7, 1).unwrap();
    let ds = dataset::open("folder", &root, &OpenOptions::default()).unwrap();
    (root, ds.train().samples.clone())
}

fn train_loader(samples: Vec<Sample>, cfg: LoaderConfig) -> Loader {
    Loader::new(
        samples,
        Transform::Train(TrainTransform::imagenet(16)),
        Normalize::imagenet(),
        cfg,
    )
    .unwrap()
}

#[test]
fn same_seed_same_batches_whatever_the_thread_count() {
    let (root, samples) = folder_samples("seed");
    let run = |seed: u64, workers: usize, epoch: u64| {
        let mut cfg = LoaderConfig::train(4, seed);
        cfg.workers = workers;
        let l = train_loader(samples.clone(), cfg);
        l.epoch(epoch).map(Result::unwrap).collect::<Vec<_>>()
    };
    let a = run(1, 1, 0);
    assert_eq!(a.len(), 5, "21 images, batch 4, drop_last");
    assert!(a.iter().all(|b| b.shape == [4, 3, 16, 16]));
    assert_eq!(a, run(1, 3, 0));
    assert_ne!(a, run(2, 1, 0));
    assert_ne!(
        a,
        run(1, 1, 1),
        "each epoch has its own order and augmentations"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn ranks_get_disjoint_equal_shards() {
    let (root, samples) = folder_samples("shards");
    let mut seen = Vec::new();
    for rank in 0..3 {
        let mut cfg = LoaderConfig::train(2, 9);
        (cfg.rank, cfg.world_size) = (rank, 3);
        let l = train_loader(samples.clone(), cfg);
        let order = l.order(4);
        assert_eq!(order.len(), 7);
        seen.extend(order);
    }
    seen.sort();
    assert_eq!(seen, (0..21).collect::<Vec<_>>());
    let mut cfg = LoaderConfig::train(2, 9);
    (cfg.rank, cfg.world_size) = (3, 3);
    assert!(
        Loader::new(
            samples,
            Transform::Eval(EvalTransform::imagenet(8)),
            Normalize::imagenet(),
            cfg
        )
        .is_err()
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn eval_loader_keeps_order_and_the_last_partial_batch() {
    let (root, samples) = folder_samples("eval");
    let l = Loader::new(
        samples.clone(),
        Transform::Eval(EvalTransform::imagenet(12)),
        Normalize::imagenet(),
        LoaderConfig::eval(8),
    )
    .unwrap();
    let batches: Vec<_> = l.epoch(0).map(Result::unwrap).collect();
    assert_eq!(
        batches.iter().map(|b| b.shape[0]).collect::<Vec<_>>(),
        vec![8, 8, 5]
    );
    let labels: Vec<u32> = batches.iter().flat_map(|b| b.labels.clone()).collect();
    assert_eq!(labels, samples.iter().map(|s| s.label).collect::<Vec<_>>());
    // Normalized values: a uniform-noise image has mean near (0.5 - 0.45) / 0.23.
    let mean = batches[0].images.iter().sum::<f32>() / batches[0].images.len() as f32;
    assert!((0.0..0.5).contains(&mean), "{mean}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn corrupt_images_fail_naming_the_file_or_are_counted_when_skipping() {
    let (root, samples) = folder_samples("corrupt");
    let bad = root.join("train/b/img_3.jpg");
    std::fs::write(&bad, b"garbage").unwrap();
    let l = Loader::new(
        samples.clone(),
        Transform::Eval(EvalTransform::imagenet(8)),
        Normalize::imagenet(),
        LoaderConfig::eval(32),
    )
    .unwrap();
    let err = l
        .epoch(0)
        .find_map(Result::err)
        .expect("an error")
        .to_string();
    assert!(err.contains("img_3.jpg"), "{err}");
    let mut cfg = LoaderConfig::eval(32);
    cfg.skip_corrupt = true;
    let l = Loader::new(
        samples,
        Transform::Eval(EvalTransform::imagenet(8)),
        Normalize::imagenet(),
        cfg,
    )
    .unwrap();
    let batches: Vec<_> = l.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches[0].shape[0], 20);
    assert_eq!(l.skipped(), 1);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn calibration_subset_is_fixed_by_its_seed() {
    let (root, samples) = folder_samples("calib");
    let ids = |v: Vec<Sample>| {
        v.iter()
            .map(|s| format!("{:?}", s.image))
            .collect::<Vec<_>>()
    };
    let a = ids(loader::fixed_subset(&samples, 5, 3));
    assert_eq!(a.len(), 5);
    assert_eq!(a, ids(loader::fixed_subset(&samples, 5, 3)));
    assert_ne!(a, ids(loader::fixed_subset(&samples, 5, 4)));
    assert_eq!(
        loader::fixed_subset(&samples, 16_000, 3).len(),
        21,
        "the whole set when smaller"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn mixup_blends_pairs_with_one_weight() {
    let root = temp("mixup");
    fixtures::fashion_mnist(&root, 16, 4, false).unwrap();
    let ds = dataset::open("fashion-mnist", &root, &OpenOptions::default()).unwrap();
    let mut cfg = LoaderConfig::train(8, 5);
    cfg.mixup_alpha = Some(0.2);
    let eval = EvalTransform {
        size: 28,
        crop_ratio: 1.0,
    };
    let l = Loader::new(
        ds.train().samples.clone(),
        Transform::Eval(eval.clone()),
        Normalize::fashion_mnist(),
        cfg.clone(),
    )
    .unwrap();
    cfg.mixup_alpha = None;
    let plain = Loader::new(
        ds.train().samples.clone(),
        Transform::Eval(eval),
        Normalize::fashion_mnist(),
        cfg,
    )
    .unwrap();
    let (m, p) = (
        l.epoch(0).next().unwrap().unwrap(),
        plain.epoch(0).next().unwrap().unwrap(),
    );
    assert_eq!(m.shape, [8, 1, 28, 28]);
    let mix = m.mix.clone().expect("mixup info");
    assert!((0.0..=1.0).contains(&mix.lam));
    let per = 28 * 28;
    for (i, &j) in mix.perm.iter().enumerate() {
        let want = mix.lam * p.images[i * per + 100] + (1.0 - mix.lam) * p.images[j * per + 100];
        assert!((m.images[i * per + 100] - want).abs() < 1e-5);
    }
    std::fs::remove_dir_all(root).unwrap();
}
