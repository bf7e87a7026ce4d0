//! The optimizer: Nesterov SGD as PyTorch's, weight decay on conv/linear weights only.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use netaug_model::{AugFactors, InitKind, Net, zoo};
use netaug_trainer::{
    optim::optimizer,
    step::{Objective, step_loss},
};

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

#[test]
fn first_step_is_nesterov_sgd_with_decay_only_on_weights() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let spec = zoo::spec("mcunet", 10, 1).unwrap();
    let mut net = Net::new(&spec, &AugFactors::none(), InitKind::HeFout, 3, &device);
    let images = Tensor::<4>::random([4, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let loss = step_loss(
        &mut net,
        images,
        &Objective::hard(&[1, 2, 3, 4], 10, 0.1, &device),
        None,
    )
    .unwrap();
    let grads = GradientsParams::from_grads(loss.total.backward(), &net);

    let stem = net.stem.conv.weight.clone();
    let gamma = net.stem.bn.as_ref().unwrap().gamma.clone();
    let bias = net.classifier.bias.clone();
    let (w0, g_w) = (vals(stem.val()), vals(grads.get::<4>(stem.id).unwrap()));
    let (gm0, g_gm) = (vals(gamma.val()), vals(grads.get::<1>(gamma.id).unwrap()));
    let (b0, g_b) = (vals(bias.val()), vals(grads.get::<1>(bias.id).unwrap()));

    let (lr, wd, mu) = (0.5f32, 0.1f32, 0.9f32);
    let mut opt = optimizer(wd as f64);
    let net = opt.step(lr as f64, net, grads);
    let after_w = vals(net.stem.conv.weight.val());
    let after_gm = vals(net.stem.bn.as_ref().unwrap().gamma.val());
    let after_b = vals(net.classifier.bias.val());

    // First step: velocity = g'; update = g' + mu * velocity (Nesterov), g' = g + wd * w.
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (1.0 + b.abs());
    for i in 0..w0.len() {
        let g = g_w[i] + wd * w0[i];
        assert!(
            close(after_w[i], w0[i] - lr * (g + mu * g)),
            "conv weight {i}"
        );
    }
    for i in 0..gm0.len() {
        assert!(
            close(after_gm[i], gm0[i] - lr * (1.0 + mu) * g_gm[i]),
            "BN gamma {i}: decayed?"
        );
    }
    for i in 0..b0.len() {
        assert!(
            close(after_b[i], b0[i] - lr * (1.0 + mu) * g_b[i]),
            "bias {i}: decayed?"
        );
    }
}
