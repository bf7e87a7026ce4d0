//! `model.init_from`: a narrower saved net fills the leading slices of a supernet; the
//! classifier stays fresh when the class count differs.

use burn::tensor::{Device, Tensor};
use netaug_model::{Active, AugFactors, InitKind, Net, zoo};
use netaug_trainer::transfer::{copy_into, init_from};

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

#[test]
fn an_exported_tiny_net_seeds_a_supernet_for_another_dataset() {
    let device = Device::flex();
    let tiny_spec = zoo::spec("tinymbv2", 10, 3).unwrap();
    let tiny = Net::new(
        &tiny_spec,
        &AugFactors::none(),
        InitKind::HeFout,
        1,
        &device,
    );
    let dir = std::env::temp_dir().join(format!("netaug-transfer-{}", std::process::id()));
    tiny.save(&dir).unwrap();

    let spec = zoo::spec("tinymbv2", 5, 3).unwrap();
    let factors = AugFactors::new(vec![1.0, 2.2], vec![1.0, 1.8]).unwrap();
    let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 2, &device);
    let fresh_classifier = vals(net.classifier.weight.val());
    let fresh_stem = vals(net.stem.conv.weight.val());
    let report = init_from(&mut net, &dir, &device).unwrap();
    assert_eq!(report.fresh_classifier, 2, "{report}");
    assert!(report.copied > 100, "{report}");

    // Stem weight: the tiny net's [16, 3, 3, 3] fills the leading slice of the wider one.
    let wide = net.stem.conv.weight.val();
    let [o, i, k, _] = wide.dims();
    let small = vals(tiny.stem.conv.weight.val());
    let [so, ..] = tiny.stem.conv.weight.val().dims();
    assert!(so < o, "the supernet stem is wider");
    let got = vals(wide.clone().slice([0..so, 0..i, 0..k, 0..k]));
    assert_eq!(got, small);
    let rest = vals(wide.slice([so..o, 0..i, 0..k, 0..k]));
    assert_eq!(
        rest,
        fresh_stem[so * i * k * k..].to_vec(),
        "beyond the slice: fresh init"
    );
    assert_eq!(vals(net.classifier.weight.val()), fresh_classifier);

    // At the target widths the supernet now computes the tiny net's features.
    net.set_active(Active::Min);
    let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
    let a = net
        .stem
        .forward(x.clone(), net.active().stem, netaug_model::Mode::Eval);
    let b = tiny
        .stem
        .forward(x, tiny.active().stem, netaug_model::Mode::Eval);
    assert_eq!(vals(a), vals(b));

    // A wider source than the destination is refused with the tensor named.
    let mut tiny2 = Net::new(
        &tiny_spec,
        &AugFactors::none(),
        InitKind::HeFout,
        1,
        &device,
    );
    let e = copy_into(&mut tiny2, &net, "wide").unwrap_err().to_string();
    assert!(e.contains("does not fit") && e.contains("stem"), "{e}");
}
