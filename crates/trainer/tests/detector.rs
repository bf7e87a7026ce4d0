//! The detector, its target assignment and loss wired together: a tinymbv2 detector
//! fits eight pasted canvases (two item shapes as two classes); the loss falls and the
//! decoded detections find the boxes.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use netaug_data::image::Image;
use netaug_data::pasted::{PasteOptions, paste};
use netaug_detect::anchors::yolov3_scaled;
use netaug_detect::assign::assign;
use netaug_detect::decode::{DecodeOptions, ScaleOutput, decode};
use netaug_detect::geometry::Corners;
use netaug_model::detector::STRIDES;
use netaug_model::{Active, AugFactors, Detector, InitKind, Mode, zoo};
use netaug_trainer::detection::loss::{detector_geometry, yolo_loss};
use netaug_trainer::optim::optimizer;

/// Class 0: a filled square; class 1: a frame.
fn items() -> Vec<(Image, u32)> {
    let square = Image::new(28, 28, 1, vec![220; 28 * 28]);
    let mut frame = vec![0u8; 28 * 28];
    for y in 0..28 {
        for x in 0..28 {
            if !(5..23).contains(&x) || !(5..23).contains(&y) {
                frame[y * 28 + x] = 220;
            }
        }
    }
    vec![(square, 0), (Image::new(28, 28, 1, frame), 1)]
}

#[test]
fn a_detector_fits_a_few_canvases() {
    let device = Device::flex().autodiff();
    device.seed(0);
    let size = 64;
    let canvases = paste(
        &items(),
        8,
        &PasteOptions {
            canvas: size,
            max_items: 2,
            min_side: 16,
            max_side: 32,
            seed: 5,
        },
    );
    let pixels: Vec<f32> = canvases
        .iter()
        .flat_map(|(img, _)| img.data.iter().map(|&p| p as f32 / 255.0 - 0.5))
        .collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [8, 1, size, size]), &device);
    let anchors = yolov3_scaled(size);
    let targets: Vec<_> = canvases
        .iter()
        .map(|(_, boxes)| {
            let b: Vec<(Corners, usize)> = boxes
                .iter()
                .map(|b| {
                    (
                        Corners {
                            x1: b.x1,
                            y1: b.y1,
                            x2: b.x2,
                            y2: b.y2,
                        },
                        b.class as usize,
                    )
                })
                .collect();
            assign(&b, &anchors, &STRIDES, (size, size))
        })
        .collect();
    let spec = zoo::spec("tinymbv2", 1, 1).unwrap();
    let mut det = Detector::new(
        &spec,
        &AugFactors::none(),
        2,
        3,
        InitKind::KaimingUniform,
        0,
        &device,
    );
    det.set_active(Active::Min);
    let mut opt = optimizer(0.0);
    let mut losses = Vec::new();
    for _ in 0..80 {
        let out = det.forward(images.clone(), Mode::Train);
        let loss = yolo_loss(&out, &detector_geometry(&anchors), &targets, 2);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &det);
        det = opt.step(0.02, det, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.1 * first, "loss {first} -> {last}: {losses:?}");

    // Decoded on the training canvases, most boxes are found with their class.
    let out = det.forward(images, Mode::Train);
    let (mut found, mut total) = (0, 0);
    for (i, (_, boxes)) in canvases.iter().enumerate() {
        let data: Vec<Vec<f32>> = out
            .iter()
            .map(|t| {
                let [_, c, h, w] = t.dims();
                t.clone()
                    .slice([i..i + 1, 0..c, 0..h, 0..w])
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            })
            .collect();
        let scales: Vec<ScaleOutput> = (0..3)
            .map(|s| {
                let [_, _, h, w] = out[s].dims();
                ScaleOutput {
                    stride: STRIDES[s],
                    anchors: &anchors[3 * s..3 * s + 3],
                    rows: h,
                    cols: w,
                    data: &data[s],
                }
            })
            .collect();
        let dets = decode(
            &scales,
            2,
            (size, size),
            &DecodeOptions {
                score_threshold: 0.3,
                ..Default::default()
            },
        );
        for b in boxes {
            total += 1;
            let gt = Corners {
                x1: b.x1,
                y1: b.y1,
                x2: b.x2,
                y2: b.y2,
            };
            if dets
                .iter()
                .any(|d| d.class == b.class as usize && d.bbox.iou(&gt) > 0.5)
            {
                found += 1;
            }
        }
    }
    eprintln!("loss {first:.1} -> {last:.2}; found {found} of {total} boxes");
    assert!(found * 4 >= total * 3, "found {found} of {total} boxes");
}
