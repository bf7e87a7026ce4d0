//! Writers of small datasets in the real published layouts and file formats (JPEG, PNG,
//! IDX, MATLAB v5, VOC XML, COCO JSON), for tests here and in the CLI crate.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mat::{MatValue, write as matw};

type Res = std::io::Result<()>;

fn mkdir(p: &Path) -> Res {
    std::fs::create_dir_all(p)
}

/// Random pixels.
fn pixels(w: usize, h: usize, channels: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..w * h * channels).map(|_| rng.random()).collect()
}

/// Writes a JPEG (RGB, or grayscale with `gray`) of random content.
pub fn jpeg(path: &Path, w: usize, h: usize, gray: bool, seed: u64) -> Res {
    mkdir(path.parent().expect("a file path"))?;
    let (channels, color) = if gray {
        (1, image::ExtendedColorType::L8)
    } else {
        (3, image::ExtendedColorType::Rgb8)
    };
    let data = pixels(w, h, channels, seed);
    let file = std::fs::File::create(path)?;
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90)
        .encode(&data, w as u32, h as u32, color)
        .map_err(std::io::Error::other)
}

/// Writes an RGBA PNG of random content.
pub fn png_rgba(path: &Path, w: usize, h: usize, seed: u64) -> Res {
    mkdir(path.parent().expect("a file path"))?;
    let data = pixels(w, h, 4, seed);
    image::save_buffer(path, &data, w as u32, h as u32, image::ColorType::Rgba8)
        .map_err(std::io::Error::other)
}

/// `ROOT/{train,val}/<class>/<i>.jpg`: `n_train` and `n_val` images per class.
pub fn folder(root: &Path, classes: &[&str], n_train: usize, n_val: usize) -> Res {
    for (split, n) in [("train", n_train), ("val", n_val)] {
        for (c, class) in classes.iter().enumerate() {
            for i in 0..n {
                let p = root.join(split).join(class).join(format!("img_{i}.jpg"));
                jpeg(&p, 40 + i, 30, false, (c * 100 + i) as u64)?;
            }
        }
    }
    Ok(())
}

/// `food-101/` with `n_train` / `n_test` images per class.
pub fn food101(outer: &Path, classes: &[&str], n_train: usize, n_test: usize) -> Res {
    let root = outer.join("food-101");
    mkdir(&root.join("meta"))?;
    std::fs::write(root.join("meta/classes.txt"), classes.join("\n") + "\n")?;
    let mut id = 1000;
    for (split, n) in [("train", n_train), ("test", n_test)] {
        let mut list = String::new();
        for class in classes {
            for _ in 0..n {
                id += 1;
                list.push_str(&format!("{class}/{id}\n"));
                jpeg(
                    &root.join("images").join(class).join(format!("{id}.jpg")),
                    32,
                    24,
                    false,
                    id,
                )?;
            }
        }
        std::fs::write(root.join("meta").join(format!("{split}.txt")), list)?;
    }
    Ok(())
}

/// Flowers-102 with `labels[i]` (1..=102) for image i+1 and the three id lists.
pub fn flowers102(root: &Path, labels: &[u32], trn: &[u32], val: &[u32], tst: &[u32]) -> Res {
    for i in 1..=labels.len() {
        jpeg(
            &root.join("jpg").join(format!("image_{i:05}.jpg")),
            30,
            20,
            false,
            i as u64,
        )?;
    }
    let row = |v: &[u32]| matw::row(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
    matw::file(
        &root.join("imagelabels.mat"),
        &[("labels", row(labels))],
        true,
    )?;
    matw::file(
        &root.join("setid.mat"),
        &[
            ("trnid", row(trn)),
            ("valid", row(val)),
            ("tstid", row(tst)),
        ],
        true,
    )
}

fn car_annos(entries: &[(u32, String)]) -> MatValue {
    MatValue::Struct(
        entries
            .iter()
            .map(|(class, fname)| {
                BTreeMap::from([
                    ("bbox_x1".to_string(), matw::row(&[1.0])),
                    ("bbox_y1".to_string(), matw::row(&[2.0])),
                    ("bbox_x2".to_string(), matw::row(&[20.0])),
                    ("bbox_y2".to_string(), matw::row(&[15.0])),
                    ("class".to_string(), matw::row(&[*class as f64])),
                    ("fname".to_string(), MatValue::Char(fname.clone())),
                ])
            })
            .collect(),
    )
}

/// Stanford Cars with the given class names and (class 1-based) per train/test image.
pub fn cars(root: &Path, classes: &[&str], train: &[u32], test: &[u32]) -> Res {
    mkdir(&root.join("devkit"))?;
    let names = MatValue::Cell(
        classes
            .iter()
            .map(|c| MatValue::Char(c.to_string()))
            .collect(),
    );
    matw::file(
        &root.join("devkit/cars_meta.mat"),
        &[("class_names", names)],
        false,
    )?;
    for (dir, labels, annos) in [
        (
            "cars_train",
            train,
            root.join("devkit/cars_train_annos.mat"),
        ),
        (
            "cars_test",
            test,
            root.join("cars_test_annos_withlabels.mat"),
        ),
    ] {
        let entries: Vec<(u32, String)> = labels
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, format!("{:05}.jpg", i + 1)))
            .collect();
        for (i, (_, f)) in entries.iter().enumerate() {
            jpeg(&root.join(dir).join(f), 36, 24, false, 7000 + i as u64)?;
        }
        matw::file(&annos, &[("annotations", car_annos(&entries))], true)?;
    }
    Ok(())
}

/// `CUB_200_2011/` with per image (class 1-based, is_train).
pub fn cub200(outer: &Path, classes: &[&str], images: &[(u32, bool)]) -> Res {
    let root = outer.join("CUB_200_2011");
    mkdir(&root)?;
    let classes_txt: String = classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} {c}\n", i + 1))
        .collect();
    std::fs::write(root.join("classes.txt"), classes_txt)?;
    let (mut list, mut labels, mut split) = (String::new(), String::new(), String::new());
    for (i, &(class, train)) in images.iter().enumerate() {
        let id = i + 1;
        let rel = format!("{}/{}_{id}.jpg", classes[class as usize - 1], "Bird");
        jpeg(
            &root.join("images").join(&rel),
            30,
            30,
            false,
            3000 + id as u64,
        )?;
        list.push_str(&format!("{id} {rel}\n"));
        labels.push_str(&format!("{id} {class}\n"));
        split.push_str(&format!("{id} {}\n", u8::from(train)));
    }
    std::fs::write(root.join("images.txt"), list)?;
    std::fs::write(root.join("image_class_labels.txt"), labels)?;
    std::fs::write(root.join("train_test_split.txt"), split)
}

/// Oxford-IIIT Pet with (breed, class id) images per split.
pub fn pets(root: &Path, trainval: &[(&str, u32)], test: &[(&str, u32)]) -> Res {
    mkdir(&root.join("annotations"))?;
    let mut n = 0;
    for (split, items) in [("trainval", trainval), ("test", test)] {
        let mut txt = String::from("#Image CLASS-ID SPECIES BREED ID\n");
        for (breed, class) in items {
            n += 1;
            let name = format!("{breed}_{n}");
            jpeg(
                &root.join("images").join(format!("{name}.jpg")),
                28,
                28,
                false,
                5000 + n,
            )?;
            txt.push_str(&format!("{name} {class} 1 {class}\n"));
        }
        std::fs::write(root.join("annotations").join(format!("{split}.txt")), txt)?;
    }
    Ok(())
}

fn idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) -> Res {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    if gz {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes)?;
        bytes = enc.finish()?;
    }
    std::fs::write(path, bytes)
}

/// Fashion-MNIST IDX files with `n_train` / `n_test` 28x28 images; labels cycle 0..9.
pub fn fashion_mnist(root: &Path, n_train: usize, n_test: usize, gz: bool) -> Res {
    mkdir(root)?;
    let ext = if gz { ".gz" } else { "" };
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images = pixels(28, 28, n, n as u64);
        idx(
            &root.join(format!("{prefix}-images-idx3-ubyte{ext}")),
            &[n as u32, 28, 28],
            &images,
            gz,
        )?;
        idx(
            &root.join(format!("{prefix}-labels-idx1-ubyte{ext}")),
            &[n as u32],
            &labels,
            gz,
        )?;
    }
    Ok(())
}

/// One VOC image with boxes `(class, xmin, ymin, xmax, ymax, difficult)`.
pub fn voc_image(base: &Path, id: &str, w: u32, h: u32, objects: &[(&str, [u32; 4], bool)]) -> Res {
    jpeg(
        &base.join("JPEGImages").join(format!("{id}.jpg")),
        w as usize,
        h as usize,
        false,
        11,
    )?;
    let mut xml = format!(
        "<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{id}.jpg</filename>\n\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
    );
    for (name, [x1, y1, x2, y2], difficult) in objects {
        xml.push_str(&format!(
            "\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>{}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n",
            u8::from(*difficult)
        ));
    }
    xml.push_str("</annotation>\n");
    mkdir(&base.join("Annotations"))?;
    std::fs::write(base.join("Annotations").join(format!("{id}.xml")), xml)
}
