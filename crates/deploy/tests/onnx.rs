//! Every zoo net, exported as ONNX and run by a Rust ONNX runtime (tract), gives the logits
//! of `Net::forward` in eval mode; and the graph counts the MACs the profiler counts.

use burn::tensor::{Device, Distribution, Tensor};
use netaug_deploy::{Graph, onnx};
use netaug_model::{Active, AugFactors, InitKind, Mode, Net, zoo};
use tract_onnx::prelude::*;

/// The zoo's seven nets, at a side small enough for a test.
const NETS: [(&str, usize); 7] = [
    ("tinymbv2", 48),
    ("mbv2-0.35", 48),
    ("proxylessnas-0.35", 48),
    ("mcunet", 48),
    ("mbv3-0.35", 48),
    ("mbv2-1.0", 32),
    ("resnet50", 32),
];

/// A NetAug supernet whose BN statistics are those of real batches (so folding them is
/// not the identity), its target active.
fn net(name: &str, side: usize, device: &Device) -> Net {
    let spec = zoo::spec(name, 10, 3).unwrap();
    let factors = AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).unwrap();
    let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 7, device);
    net.set_active(Active::Min);
    let batch = Tensor::<4>::random([8, 3, side, side], Distribution::Normal(0.5, 1.0), device);
    net.calibrate_bn([batch]);
    net
}

fn run_onnx(bytes: &[u8], image: &[f32], side: usize) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, side, side]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input: Tensor4 = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), image.to_vec())
        .unwrap()
        .into();
    let out = model.run(tvec!(input.into())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

type Tensor4 = tract_onnx::prelude::Tensor;

#[test]
fn onnx_logits_equal_the_nets_for_all_seven_nets() {
    let device = Device::flex();
    // Seeded: the same images and BN statistics on every run.
    device.seed(0);
    for (name, side) in NETS {
        let net = net(name, side, &device);
        let graph = Graph::of(&net, side).unwrap();
        assert_eq!(graph.macs(), net.profile(side).macs, "{name}: MACs");
        let bytes = onnx::write(&graph, &[("resolution".into(), side.to_string())]);

        let image =
            Tensor::<4>::random([1, 3, side, side], Distribution::Normal(0.0, 1.0), &device);
        let pixels: Vec<f32> = image.to_data().try_into_vec().unwrap();
        let want: Vec<f32> = net
            .forward(image, Mode::Eval)
            .into_data()
            .try_into_vec()
            .unwrap();
        let got = run_onnx(&bytes, &pixels, side);
        assert_eq!(got.len(), want.len(), "{name}");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{name}: {:.2e} of the logit scale", diff / scale);
        assert!(
            diff <= 1e-4 * scale,
            "{name}: max |onnx - net| = {diff} (logit scale {scale})"
        );
    }
}
