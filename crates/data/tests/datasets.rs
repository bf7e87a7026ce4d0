//! Every dataset layout, built in its real format, opened and checked.

use std::path::{Path, PathBuf};

use netaug_data::dataset::{self, ImageRef};
use netaug_data::{DataError, OpenOptions, fixtures, mat};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("netaug-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(name: &str, root: &Path) -> dataset::Dataset {
    dataset::open(name, root, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Asserts that `name` at `root` does not open, with an error that says each of `says`.
fn assert_open_fails(name: &str, root: &Path, says: &[&str]) {
    let err = match dataset::open(name, root, &OpenOptions::default()) {
        Ok(_) => panic!("{name} at {} opened", root.display()),
        Err(e) => e.to_string(),
    };
    for s in says {
        assert!(err.contains(s), "`{s}` not in: {err}");
    }
}

fn counts(ds: &dataset::Dataset) -> Vec<(String, usize)> {
    ds.splits
        .iter()
        .map(|s| (s.name.clone(), s.samples.len()))
        .collect()
}

fn labels(ds: &dataset::Dataset, split: &str) -> Vec<u32> {
    ds.split(split)
        .unwrap()
        .samples
        .iter()
        .map(|s| s.label)
        .collect()
}

fn file_name(r: &ImageRef) -> String {
    match r {
        ImageRef::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
        _ => panic!("not a file"),
    }
}

#[test]
fn folder_layout() {
    let t = TempDir::new("folder");
    fixtures::folder(&t.0, &["n02", "n01", "n03"], 2, 1).unwrap();
    fixtures::png_rgba(&t.0.join("train/n01/extra.png"), 20, 10, 1).unwrap();
    let ds = open("folder", &t.0);
    assert_eq!(ds.classes, vec!["n01", "n02", "n03"]);
    assert_eq!(counts(&ds), vec![("train".into(), 7), ("val".into(), 3)]);
    assert_eq!(labels(&ds, "val"), vec![0, 1, 2]);
    assert_eq!(
        (ds.train_split.as_str(), ds.eval_split.as_str()),
        ("train", "val")
    );
    assert_open_fails("folder", &t.0.join("nope"), &["nope/train", "{train,val}"]);
    // Symlinks that lead nowhere are named for what they are.
    let bad = |link: &str, target: &str, says: &str| {
        let path = t.0.join("val/n01").join(link);
        std::os::unix::fs::symlink(target, &path).unwrap();
        assert_open_fails("folder", &t.0, &[link, says]);
        std::fs::remove_file(&path).unwrap();
    };
    bad(
        "gone.png",
        "/no/such/image.png",
        "is a symlink to /no/such/image.png, which does not exist",
    );
    bad("loop.png", "loop.png", "is a symlink loop");
    // An empty class folder is refused, not a silent extra class.
    std::fs::create_dir_all(t.0.join("train/n04")).unwrap();
    assert_open_fails("folder", &t.0, &["train/n04: no images"]);
}

#[test]
fn food101_layout_from_outer_or_inner_root() {
    let t = TempDir::new("food");
    fixtures::food101(&t.0, &["apple_pie", "baby_back_ribs", "baklava"], 3, 2).unwrap();
    for root in [t.0.clone(), t.0.join("food-101")] {
        let ds = open("food101", &root);
        assert_eq!(ds.classes, vec!["apple_pie", "baby_back_ribs", "baklava"]);
        assert_eq!(counts(&ds), vec![("train".into(), 9), ("test".into(), 6)]);
        assert_eq!(labels(&ds, "test"), vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(ds.eval_split, "test");
    }
    std::fs::remove_file(t.0.join("food-101/meta/test.txt")).unwrap();
    assert_open_fails("food101", &t.0, &["meta/test.txt", "food-101/"]);
}

#[test]
fn flowers102_reads_the_mat_files() {
    let t = TempDir::new("flowers");
    let labels = [5, 5, 1, 102, 7, 1];
    fixtures::flowers102(&t.0, &labels, &[1, 3], &[2], &[4, 5, 6]).unwrap();
    let ds = open("flowers102", &t.0);
    assert_eq!(ds.classes.len(), 102);
    assert_eq!(
        counts(&ds),
        vec![("train".into(), 2), ("val".into(), 1), ("test".into(), 3)]
    );
    assert_eq!(labels_of(&ds, "train"), vec![4, 0]);
    assert_eq!(labels_of(&ds, "test"), vec![101, 6, 0]);
    assert_eq!(
        file_name(&ds.split("test").unwrap().samples[0].image),
        "image_00004.jpg"
    );
    assert_eq!(ds.eval_split, "val");
    let tv = dataset::open(
        "flowers102",
        &t.0,
        &OpenOptions {
            flowers_train_val: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(tv.train().samples.len(), 3);
    assert_eq!(tv.eval_split, "test");
}

fn labels_of(ds: &dataset::Dataset, split: &str) -> Vec<u32> {
    labels(ds, split)
}

#[test]
fn cars_reads_struct_and_cell_arrays() {
    let t = TempDir::new("cars");
    let classes = [
        "AM General Hummer SUV 2000",
        "Acura RL Sedan 2012",
        "Audi TTS Coupe 2012",
    ];
    fixtures::cars(&t.0.join("stanford_cars"), &classes, &[3, 1, 2, 2], &[1, 3]).unwrap();
    let ds = open("cars", &t.0);
    assert_eq!(ds.classes, classes);
    assert_eq!(counts(&ds), vec![("train".into(), 4), ("test".into(), 2)]);
    assert_eq!(labels(&ds, "train"), vec![2, 0, 1, 1]);
    assert_eq!(labels(&ds, "test"), vec![0, 2]);
    assert_eq!(
        file_name(&ds.split("test").unwrap().samples[1].image),
        "00002.jpg"
    );
}

#[test]
fn cub200_layout() {
    let t = TempDir::new("cub");
    let classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"];
    fixtures::cub200(
        &t.0,
        &classes,
        &[(1, true), (2, false), (2, true), (1, true)],
    )
    .unwrap();
    let ds = open("cub200", &t.0);
    assert_eq!(ds.classes, classes);
    assert_eq!(counts(&ds), vec![("train".into(), 3), ("test".into(), 1)]);
    assert_eq!(labels(&ds, "train"), vec![0, 1, 0]);
    let inner = open("cub200", &t.0.join("CUB_200_2011"));
    assert_eq!(counts(&inner), counts(&ds));
}

#[test]
fn pets_layout_with_class_names_from_file_names() {
    let t = TempDir::new("pets");
    fixtures::pets(
        &t.0,
        &[
            ("Abyssinian", 1),
            ("american_bulldog", 2),
            ("Abyssinian", 1),
        ],
        &[("american_bulldog", 2), ("Bengal", 3)],
    )
    .unwrap();
    let ds = open("pets", &t.0);
    assert_eq!(ds.classes, vec!["Abyssinian", "american_bulldog", "Bengal"]);
    assert_eq!(
        counts(&ds),
        vec![("trainval".into(), 3), ("test".into(), 2)]
    );
    assert_eq!(
        (ds.train_split.as_str(), ds.eval_split.as_str()),
        ("trainval", "test")
    );
    assert_eq!(labels(&ds, "test"), vec![1, 2]);
}

#[test]
fn fashion_mnist_idx_plain_and_gzipped() {
    for gz in [false, true] {
        let t = TempDir::new(&format!("fmnist{gz}"));
        fixtures::fashion_mnist(&t.0, 30, 12, gz).unwrap();
        let ds = open("fashion-mnist", &t.0);
        assert_eq!(ds.classes.len(), 10);
        assert_eq!(ds.classes[9], "Ankle boot");
        assert_eq!(ds.channels, 1);
        assert_eq!(counts(&ds), vec![("train".into(), 30), ("test".into(), 12)]);
        assert_eq!(labels(&ds, "test")[..3], [0, 1, 2]);
        let img = netaug_data::image::load(&ds.train().samples[3].image, None).unwrap();
        assert_eq!((img.width, img.height, img.channels), (28, 28, 1));
    }
    let t = TempDir::new("fmnist-bad");
    fixtures::fashion_mnist(&t.0, 5, 5, false).unwrap();
    let p = t.0.join("t10k-labels-idx1-ubyte");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    let says = ["t10k-labels-idx1-ubyte", "expected 5 data bytes"];
    assert_open_fails("fashion-mnist", &t.0, &says);
}

/// The real data set from Debian's `dataset-fashion-mnist` (installed by `make test`).
#[test]
fn fashion_mnist_from_the_debian_package() {
    let root = Path::new(dataset::FASHION_MNIST_ROOT);
    if !root.join("train-images-idx3-ubyte.gz").is_file() {
        // `make test` installs the package; only a machine where it cannot be installed
        // gets here.
        eprintln!(
            "\n*** SKIPPED: {} is not installed (apt-get install dataset-fashion-mnist) ***\n",
            root.display()
        );
        return;
    }
    let ds = open("fashion-mnist", root);
    assert_eq!(
        counts(&ds),
        vec![("train".into(), 60_000), ("test".into(), 10_000)]
    );
    let mut per_class = [0usize; 10];
    for s in &ds.train().samples {
        per_class[s.label as usize] += 1;
    }
    assert_eq!(per_class, [6000; 10]);
}

#[test]
fn unknown_names_and_splits_are_clear_errors() {
    let err = dataset::open("imagenet21k", Path::new("/x"), &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownDataset { .. }));
    assert!(err.to_string().contains("food101"));
    let t = TempDir::new("splits");
    fixtures::fashion_mnist(&t.0, 3, 3, false).unwrap();
    let ds = open("fashion-mnist", &t.0);
    let err = ds.split("val").unwrap_err().to_string();
    assert!(err.contains("train, test"), "{err}");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn mat_reader_reads_what_scipy_writes() {
    for file in ["scipy_compressed.mat", "scipy_plain.mat"] {
        let vars = mat::read(&fixture(file)).unwrap();
        assert_eq!(vars["labels"].numbers().unwrap(), &[1.0, 102.0, 7.0]);
        let mat::MatValue::Cell(names) = &vars["class_names"] else {
            panic!("{file}: cell")
        };
        assert_eq!(names[1].text(), Some("Acura RL Sedan 2012"));
        let mat::MatValue::Struct(items) = &vars["annotations"] else {
            panic!("{file}: struct")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["class"].numbers().unwrap(), &[3.0]);
        assert_eq!(items[0]["fname"].text(), Some("00001.jpg"));
    }
}

#[test]
fn cmyk_grayscale_and_rgba_images_become_rgb() {
    let bytes = std::fs::read(fixture("cmyk.jpg")).unwrap();
    let img = netaug_data::image::decode(&bytes, None).unwrap();
    assert_eq!((img.width, img.height, img.channels), (8, 6, 3));
    let pil = std::fs::read(fixture("cmyk.rgb")).unwrap();
    let worst = img
        .data
        .iter()
        .zip(&pil)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 2, "CMYK conversion differs from Pillow by {worst}");
    let t = TempDir::new("img");
    fixtures::jpeg(&t.0.join("g.jpg"), 9, 7, true, 1).unwrap();
    let g = netaug_data::image::load(&ImageRef::File(t.0.join("g.jpg")), None).unwrap();
    assert_eq!(
        (g.channels, g.data[0], g.data[0]),
        (3, g.data[1], g.data[2])
    );
    fixtures::png_rgba(&t.0.join("a.png"), 5, 4, 2).unwrap();
    let a = netaug_data::image::load(&ImageRef::File(t.0.join("a.png")), None).unwrap();
    assert_eq!((a.width, a.height, a.channels, a.data.len()), (5, 4, 3, 60));
}

#[test]
fn jpegs_decode_at_reduced_scale_when_asked() {
    let t = TempDir::new("dct");
    fixtures::jpeg(&t.0.join("big.jpg"), 400, 300, false, 3).unwrap();
    let r = ImageRef::File(t.0.join("big.jpg"));
    let full = netaug_data::image::load(&r, None).unwrap();
    assert_eq!((full.width, full.height), (400, 300));
    // Shorter side at least 70: the 1/4 scale (100 x 75) qualifies, 1/8 would not.
    let small = netaug_data::image::load(&r, Some(70)).unwrap();
    assert_eq!((small.width, small.height), (100, 75));
}

/// `bytes` of a JPEG with the frame size its SOF0 header declares set to `w` x `h`.
fn with_declared_size(mut bytes: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let sof = bytes
        .windows(2)
        .position(|m| m == [0xff, 0xc0])
        .expect("a baseline JPEG has SOF0");
    // Marker, length (2), precision (1), then height and width, big-endian.
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn images_whose_header_claims_too_many_pixels_are_refused_naming_the_file() {
    let t = TempDir::new("huge");
    fixtures::jpeg(&t.0.join("ok.jpg"), 64, 48, false, 1).unwrap();
    let bytes = std::fs::read(t.0.join("ok.jpg")).unwrap();
    // 65,500 x 65,500: decoding took 40 s and 300 MB before there was a limit.
    std::fs::write(
        t.0.join("huge.jpg"),
        with_declared_size(bytes, 65_500, 65_500),
    )
    .unwrap();
    fixtures::png_rgba(&t.0.join("ok.png"), 5, 4, 2).unwrap();
    let mut png = std::fs::read(t.0.join("ok.png")).unwrap();
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    std::fs::write(t.0.join("huge.png"), png).unwrap();
    for name in ["huge.jpg", "huge.png"] {
        let start = std::time::Instant::now();
        let err = netaug_data::image::load(&ImageRef::File(t.0.join(name)), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(name) && err.contains("over the limit"),
            "{err}"
        );
        assert!(
            start.elapsed().as_secs() < 5,
            "{name} was decoded before refusing"
        );
    }
    // Images within the limit decode as before.
    assert!(netaug_data::image::load(&ImageRef::File(t.0.join("ok.jpg")), None).is_ok());
}

#[test]
fn corrupt_and_truncated_images_name_the_file() {
    let t = TempDir::new("corrupt");
    fixtures::jpeg(&t.0.join("ok.jpg"), 64, 48, false, 1).unwrap();
    let bytes = std::fs::read(t.0.join("ok.jpg")).unwrap();
    std::fs::write(t.0.join("cut.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(t.0.join("junk.jpg"), b"not an image at all").unwrap();
    for name in ["cut.jpg", "junk.jpg"] {
        let err = netaug_data::image::load(&ImageRef::File(t.0.join(name)), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn a_missing_image_fails_the_open_or_is_listed_per_split() {
    // Every layout whose annotation files name image files: one image removed.
    let t = TempDir::new("missing");
    fixtures::food101(&t.0.join("food"), &["a", "b"], 2, 1).unwrap();
    fixtures::cub200(
        &t.0.join("cub"),
        &["001.A", "002.B"],
        &[(1, true), (2, false)],
    )
    .unwrap();
    fixtures::pets(&t.0.join("pets"), &[("Bengal", 1)], &[("pug", 2)]).unwrap();
    fixtures::cars(&t.0.join("cars"), &["x", "y"], &[1, 2], &[1]).unwrap();
    fixtures::flowers102(&t.0.join("fl"), &[1, 2, 3], &[1], &[2], &[3]).unwrap();
    let cases: [(&str, &str, &str, &str, usize); 5] = [
        ("food101", "food", "food-101/images/b/1004.jpg", "train", 3),
        (
            "cub200",
            "cub",
            "CUB_200_2011/images/002.B/Bird_2.jpg",
            "test",
            0,
        ),
        ("pets", "pets", "images/pug_2.jpg", "test", 0),
        ("cars", "cars", "cars_test/00001.jpg", "test", 0),
        ("flowers102", "fl", "jpg/image_00002.jpg", "val", 0),
    ];
    for (name, dir, file, split, left) in cases {
        let root = t.0.join(dir);
        std::fs::remove_file(root.join(file)).unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
        let err = dataset::open(name, &root, &OpenOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DataError::Layout { path, .. } if path.ends_with(file)),
            "{name}: {err}"
        );
        let opts = OpenOptions {
            allow_missing: true,
            ..Default::default()
        };
        let ds = dataset::open(name, &root, &opts).unwrap();
        assert_eq!(ds.missing.len(), 1, "{name}");
        assert_eq!(ds.missing[0].split, split, "{name}");
        assert!(ds.missing[0].path.ends_with(file), "{name}");
        assert_eq!(ds.split(split).unwrap().samples.len(), left, "{name}");
    }
    assert_eq!(
        dataset::published("food101"),
        Some(&[("train", 75_750), ("test", 25_250)][..])
    );
    assert_eq!(dataset::published("folder"), None);
}
