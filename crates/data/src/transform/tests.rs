use super::*;
use crate::image::{Image, decode};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn max_diff(ours: &FImage, pil: &[u8]) -> f32 {
    assert_eq!(ours.data.len(), pil.len());
    ours.data
        .iter()
        .zip(pil)
        .map(|(a, &b)| (a - b as f32).abs())
        .fold(0.0, f32::max)
}

#[test]
fn resampling_matches_pillow_bilinear_within_rounding() {
    let src = decode(&fixture("resize_src.png"), None).unwrap();
    assert_eq!((src.width, src.height), (37, 29));
    let full = (0.0, 0.0, 37.0, 29.0);
    // Pillow rounds its intermediate rows to 8 bits; we keep floats: at most ~1 apart.
    let down = resize_box(&src, full, 16, 12);
    assert!(max_diff(&down, &fixture("resize_16x12.rgb")) <= 1.5);
    let up = resize_box(&src, full, 64, 48);
    assert!(max_diff(&up, &fixture("resize_64x48.rgb")) <= 1.5);
    let boxed = resize_box(&src, (3.0, 5.0, 27.0, 20.0), 10, 10);
    assert!(max_diff(&boxed, &fixture("resize_box_10x10.rgb")) <= 1.5);
}

#[test]
fn random_resized_crop_stays_inside_and_within_ranges() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (w, h) in [(500, 375), (64, 64), (30, 300)] {
        for _ in 0..500 {
            let (x, y, cw, ch) =
                random_resized_crop_box(w, h, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(x + cw <= w && y + ch <= h && cw > 0 && ch > 0);
        }
    }
    // On a regular image the area fraction and aspect ratio respect their ranges (up to
    // rounding to whole pixels).
    for _ in 0..500 {
        let (_, _, cw, ch) =
            random_resized_crop_box(500, 400, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
        let area = (cw * ch) as f64 / 200_000.0;
        let ratio = cw as f64 / ch as f64;
        assert!((0.075..=1.0).contains(&area), "area {area}");
        assert!((0.74..=1.35).contains(&ratio), "ratio {ratio}");
    }
}

#[test]
fn eval_transform_resizes_the_short_side_then_center_crops() {
    // A vertical gradient: after the transform the center row keeps the center value.
    let (w, h) = (80, 120);
    let data: Vec<u8> = (0..h)
        .flat_map(|y| std::iter::repeat_n((y * 2) as u8, w * 3))
        .collect();
    let img = Image::new(w, h, 3, data);
    let t = EvalTransform::imagenet(32);
    assert_eq!(t.resize_side(), 37);
    let out = t.apply(&img);
    assert_eq!((out.width, out.height, out.channels), (32, 32, 3));
    // Resize to 37x55, crop rows 12..44 of 55: source rows ~ 26..96 of 120.
    let first = out.data[0];
    let last = out.data[out.data.len() - 1];
    assert!(
        (first - 2.0 * 26.0).abs() < 6.0 && (last - 2.0 * 95.0).abs() < 6.0,
        "{first} {last}"
    );
}

#[test]
fn flips_and_policies_keep_shape_and_range_and_are_seeded() {
    let img = decode(&fixture("resize_src.png"), None).unwrap();
    let mut f = to_float(&img);
    let orig = f.clone();
    hflip(&mut f);
    assert_ne!(f, orig);
    hflip(&mut f);
    assert_eq!(f, orig);
    for policy in [
        Policy::AutoAugment,
        Policy::RandAugment {
            ops: 2,
            magnitude: 9,
        },
    ] {
        let mut t = TrainTransform::imagenet(24);
        t.policy = Some(policy);
        let run = |seed| t.apply(&img, &mut ChaCha8Rng::seed_from_u64(seed));
        let a = run(1);
        assert_eq!((a.width, a.height), (24, 24));
        assert!(a.data.iter().all(|v| (0.0..=255.0).contains(v)));
        assert_eq!(a, run(1), "{policy:?} is not reproducible");
        assert_ne!(a, run(2));
    }
}

#[test]
fn point_operations_match_pil_definitions() {
    // One grey row, an op applied at a magnitude.
    let applied = |data: Vec<f32>, op: Op, magnitude: f32| {
        let mut img = FImage {
            width: data.len(),
            height: 1,
            channels: 1,
            data,
        };
        apply_op(&mut img, op, magnitude);
        img.data
    };
    let row = vec![0.0, 100.0, 200.0, 255.0];
    assert_eq!(
        applied(row.clone(), Op::Posterize, 2.0),
        [0.0, 64.0, 192.0, 192.0]
    );
    assert_eq!(applied(row, Op::Solarize, 128.0), [0.0, 100.0, 55.0, 0.0]);
    assert_eq!(
        applied(vec![50.0, 60.0, 70.0, 80.0], Op::AutoContrast, 0.0),
        [0.0, 85.0, 170.0, 255.0]
    );
    // PIL equalize of [10, 10, 20, 30]: step = (4 - 1) // 255 = 0 -> unchanged.
    let few = vec![10.0, 10.0, 20.0, 30.0];
    assert_eq!(applied(few.clone(), Op::Equalize, 0.0), few);
    // 600 pixels in three values: a spread over 0..255.
    let many: Vec<f32> = (0..600).map(|i| [10.0, 20.0, 30.0][i % 3]).collect();
    assert_eq!(&applied(many, Op::Equalize, 0.0)[..3], &[0.0, 200.0, 255.0]);
}

#[test]
fn center_crop_offsets_round_half_to_even_as_torchvision() {
    // torchvision: int(round((side - size) / 2.0)), Python's round.
    assert_eq!(center_offset(37, 32), 2.0, "2.5 -> 2");
    assert_eq!(center_offset(39, 32), 4.0, "3.5 -> 4");
    assert_eq!(center_offset(38, 32), 3.0);
    assert_eq!(center_offset(32, 32), 0.0);
}
