//! Detection runs end to end on a small pasted set in the COCO layout (two item shapes as
//! two classes): the trained detector's mAP50 rises well above the untrained one's, and a
//! NetAug run interrupted after an epoch resumes to the same metrics as one never stopped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use netaug_data::detection::{DetLoader, DetTransform};
use netaug_data::image::Image;
use netaug_data::pasted::{PasteOptions, paste, write_coco};
use netaug_data::{LoaderConfig, Normalize};
use netaug_model::detector::DetLabels;
use netaug_model::{Active, AugFactors, Detector, InitKind, zoo};
use netaug_trainer::detection::task::{ANCHORS_PER_SCALE, anchors, decode_options};
use netaug_trainer::detection::{data, eval};
use netaug_trainer::metrics::{DetEpochMetrics, EpochReport, read_metrics};
use netaug_trainer::{Observer, Quiet, RunConfig, Status, TrainOptions, train};

/// Class 0: a filled square; class 1: a frame.
fn items() -> Vec<(Image, u32)> {
    let square = Image::new(28, 28, 1, vec![220; 28 * 28]);
    let mut frame = vec![0u8; 28 * 28];
    for y in 0..28 {
        for x in 0..28 {
            if !(6..22).contains(&x) || !(6..22).contains(&y) {
                frame[y * 28 + x] = 220;
            }
        }
    }
    vec![(square, 0), (Image::new(28, 28, 1, frame), 1)]
}

fn dataset(name: &str, train: usize, val: usize) -> PathBuf {
    let root = std::env::temp_dir().join(format!("netaug-detrun-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let classes = vec!["square".to_string(), "frame".to_string()];
    for (split, n, seed) in [("train", train, 1), ("val", val, 2)] {
        let o = PasteOptions {
            canvas: 64,
            max_items: 2,
            min_side: 18,
            max_side: 36,
            seed,
        };
        write_coco(&root, split, &paste(&items(), n, &o), &classes).unwrap();
    }
    root
}

fn config(root: &Path, extra: &str) -> RunConfig {
    let text = format!(
        "data: {{dataset: coco, root: {}, image_size: 64, batch_size: 16}}
model: {{name: tinymbv2}}
run: {{base_lr: 0.2, warmup_lr: 0.0, log_every: 2, {extra}}}
detection: {{min_crop: 0.7}}
",
        root.display()
    );
    RunConfig::parse(&text, "test.yaml", &[]).unwrap()
}

#[test]
fn a_trained_detector_scores_well_above_an_untrained_one() {
    let root = dataset("learn", 128, 48);
    let config = config(&root, "epochs: 7, warmup_epochs: 1");
    let out = root.join("run");
    let summary = train(&config, &out, &TrainOptions::default(), &mut Quiet).unwrap();
    assert_eq!(summary.status, Status::Done);
    let trained = summary.metric("final_val_map50").unwrap();

    // The same detector before any step, scored the same way.
    let device = Device::flex();
    let opened = data::open(&config.data).unwrap();
    let spec = zoo::spec("tinymbv2", 2, 3).unwrap();
    let mut det = Detector::new(
        &spec,
        &AugFactors::none(),
        2,
        ANCHORS_PER_SCALE,
        InitKind::HeFout,
        0,
        &device,
    );
    let labels = DetLabels {
        anchors: anchors(config.detection.as_ref().unwrap(), &opened, 64),
        categories: opened.categories.clone(),
    };
    det.set_labels(labels.clone()).unwrap();
    det.set_active(Active::Min);
    let loader = DetLoader::new(
        opened.eval.clone(),
        DetTransform::Eval(64),
        Normalize::imagenet(),
        LoaderConfig::eval(16),
    )
    .unwrap();
    let options = decode_options(config.detection.as_ref().unwrap());
    let found = eval::predict(&det, &loader, &device, &options, &mut Quiet).unwrap();
    let untrained = eval::score(&opened.gt, &found).unwrap().map50;
    eprintln!("mAP50: untrained {untrained:.2}%, trained {trained:.2}%");
    assert!(
        trained > untrained + 40.0,
        "untrained {untrained:.2}%, trained {trained:.2}%"
    );

    // The exported detector is the best epoch's: it carries its labels and scores the
    // run's best mAP50.
    let exported = Detector::load(&out.join("exported"), &device).unwrap();
    assert_eq!(exported.labels(), &labels);
    let found = eval::predict(&exported, &loader, &device, &options, &mut Quiet).unwrap();
    let again = eval::score(&opened.gt, &found).unwrap().map50;
    let best = summary.metric("best_val_map50").unwrap();
    assert!(
        (again - best).abs() < 1e-6,
        "{again} vs the run's best {best}"
    );
    let metrics: Vec<DetEpochMetrics> = read_metrics(&out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 8);
    let _ = std::fs::remove_dir_all(&root);
}

/// Panics after `after` epochs, as a kill would stop the run.
struct KillAfter(usize);

impl Observer for KillAfter {
    fn epoch(&mut self, line: &dyn EpochReport, _total: usize) {
        if line.epoch() == self.0 {
            panic!("killed after epoch {}", line.epoch());
        }
    }
}

#[test]
fn a_netaug_detection_run_resumes_to_the_same_metrics() {
    let root = dataset("resume", 48, 16);
    let config = {
        let mut c = config(&root, "epochs: 2, warmup_epochs: 1");
        c.netaug = Some(
            serde_yaml_ng::from_str(
                "{aug_expand_list: [1.0, 1.6], aug_width_mult_list: [1.0, 1.5], bn_recal_images: 32}",
            )
            .unwrap(),
        );
        c.detection.as_mut().unwrap().multi_scale = vec![64, 96];
        c
    };
    let whole = root.join("whole");
    let s = train(&config, &whole, &TrainOptions::default(), &mut Quiet).unwrap();
    assert_eq!((s.method.as_str(), s.status), ("netaug", Status::Done));

    let cut = root.join("cut");
    let killed = catch_unwind(AssertUnwindSafe(|| {
        train(&config, &cut, &TrainOptions::default(), &mut KillAfter(1))
    }));
    assert!(killed.is_err(), "the observer stops the run after epoch 1");
    assert!(!cut.join("summary.json").exists());
    let resumed = train(
        &config,
        &cut,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(resumed.status, Status::Done);
    let strip = |dir: &Path| -> Vec<(usize, f64, f64, f64)> {
        read_metrics::<DetEpochMetrics>(&dir.join("metrics.jsonl"))
            .unwrap()
            .into_iter()
            .map(|m| (m.epoch, m.train_loss, m.val_map50, m.val_map))
            .collect()
    };
    assert_eq!(strip(&whole), strip(&cut));
    assert_eq!(strip(&whole).len(), 3);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_voc_run_trains_on_both_trainvals_and_scores_on_2007_test() {
    use netaug_data::fixtures::voc_image;
    let root = std::env::temp_dir().join(format!("netaug-detrun-voc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let set = |year: &str, name: &str, ids: &[&str]| {
        let base = root.join(format!("VOCdevkit/VOC{year}"));
        for id in ids {
            let objects: &[(&str, [u32; 4], bool)] = &[
                ("dog", [10, 12, 60, 50], false),
                ("cat", [70, 20, 110, 70], true),
            ];
            voc_image(&base, id, 120, 90, objects).unwrap();
        }
        std::fs::create_dir_all(base.join("ImageSets/Main")).unwrap();
        std::fs::write(
            base.join(format!("ImageSets/Main/{name}.txt")),
            ids.join("\n"),
        )
        .unwrap();
    };
    set("2007", "trainval", &["000001", "000002", "000003"]);
    set("2007", "test", &["000004", "000005"]);
    set("2012", "trainval", &["2008_000001"]);
    let text = format!(
        "data: {{dataset: voc, root: {}, image_size: 64, batch_size: 2}}
model: {{name: tinymbv2}}
run: {{epochs: 1, warmup_epochs: 0}}
detection: {{anchors: yolov3}}
",
        root.display()
    );
    let config = RunConfig::parse(&text, "voc.yaml", &[]).unwrap();
    let opened = data::open(&config.data).unwrap();
    assert_eq!(opened.categories.len(), 20);
    assert_eq!(opened.train.len(), 4, "2007 and 2012 trainval");
    assert_eq!(opened.eval.iter().map(|s| s.id).collect::<Vec<_>>(), [4, 5]);
    let data::GroundTruth::Voc { voc, coco } = &opened.gt else {
        panic!("VOC ground truth");
    };
    assert_eq!(voc.images.len(), 2);
    // The difficult cat is an ignored crowd region for COCOeval.
    let crowd: Vec<bool> = coco.annotations.iter().map(|a| a.iscrowd).collect();
    assert_eq!(crowd, [false, true, false, true]);
    let s = train(
        &config,
        &root.join("run"),
        &TrainOptions::default(),
        &mut Quiet,
    )
    .unwrap();
    assert_eq!((s.status, s.dataset.as_str()), (Status::Done, "voc"));
    assert!(s.metric("final_val_map50").is_some() && s.metric("final_val_top1").is_none());
    // A VOC folder without 2007 test names the layout.
    std::fs::remove_dir_all(root.join("VOCdevkit/VOC2007/ImageSets")).unwrap();
    let e = data::open(&config.data).unwrap_err().to_string();
    assert!(e.contains("data.root") && e.contains("VOCdevkit"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
