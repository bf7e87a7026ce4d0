//! NetAug's step trains the target slice with both losses: the one backward of
//! `L(min) + alpha * L(aug)` equals two separate backward passes added.

use burn::module::Param;
use burn::tensor::{Device, Distribution, Gradients, Tensor};
use netaug_model::layers::ParamRef;
use netaug_model::{Active, AugFactors, InitKind, Net, zoo};
use netaug_trainer::step::{Objective, step_loss};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn grad(p: ParamRef<'_>, g: &Gradients) -> Vec<f32> {
    fn get<const D: usize>(p: &Param<Tensor<D>>, g: &Gradients) -> Vec<f32> {
        let n = p.val().dims().iter().product();
        p.val().grad(g).map_or(vec![0.0; n], |t| {
            t.into_data().try_into_vec::<f32>().unwrap()
        })
    }
    match p {
        ParamRef::R1(p) => get(p, g),
        ParamRef::R2(p) => get(p, g),
        ParamRef::R4(p) => get(p, g),
    }
}

/// Whether flat index `flat` of a tensor of shape `full` lies in the leading `active` slice.
fn inside(flat: usize, full: &[usize], active: &[usize]) -> bool {
    let mut rest = flat;
    let mut ok = true;
    for d in (0..full.len()).rev() {
        ok &= rest % full[d] < active[d];
        rest /= full[d];
    }
    ok
}

#[test]
fn one_backward_of_the_sum_equals_both_losses_gradients() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let spec = zoo::spec("tinymbv2", 10, 1).unwrap();
    let factors = AugFactors::new(vec![1.0, 1.6, 2.2], vec![1.0, 1.8]).unwrap();
    let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 1, &device);
    let images = Tensor::<4>::random([8, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<u32> = (0..8).map(|i| i % 10).collect();
    let arch = net.sample(Active::Random(&mut ChaCha8Rng::seed_from_u64(4)));
    let alpha = 0.7;

    let objective = Objective::hard(&labels, 10, 0.1, &device);
    let joint = step_loss(
        &mut net,
        images.clone(),
        &objective,
        Some((arch.clone(), alpha)),
    )
    .unwrap();
    let g_joint = joint.total.backward();
    let target_only = step_loss(&mut net, images.clone(), &objective, None).unwrap();
    let g_target = target_only.target.backward();
    net.set_active_arch(arch).unwrap();
    let aug_logits = net.forward(images, netaug_model::Mode::Train);
    let aug_loss = netaug_trainer::loss::cross_entropy(aug_logits, &labels, 0.1);
    let g_aug = aug_loss.backward();
    net.set_active(Active::Min);

    let (mut worst, mut scale, mut aug_in_target) = (0f32, 0f32, 0f32);
    for w in net.active_weights() {
        let (j, t, a) = (
            grad(w.param, &g_joint),
            grad(w.param, &g_target),
            grad(w.param, &g_aug),
        );
        for i in 0..j.len() {
            worst = worst.max((j[i] - (t[i] + alpha as f32 * a[i])).abs());
            scale = scale.max(j[i].abs());
        }
        // Entries of the target's slice that the augmented loss moves.
        let full = w.param.shape();
        aug_in_target += a
            .iter()
            .enumerate()
            .filter(|(flat, _)| inside(*flat, &full, &w.active))
            .map(|(_, v)| v.abs())
            .sum::<f32>();
    }
    assert!(scale > 0.0);
    assert!(
        worst <= 1e-4 * scale,
        "joint vs separate gradients differ by {worst} (scale {scale})"
    );
    assert!(
        aug_in_target > 0.0,
        "the augmented loss must reach the target net's weights"
    );
}
