//! Data parallelism in one process (`run.replicas`): a step's batch is split over N
//! replicas, each runs forward and backward on its share on threads of its own, their
//! gradients are averaged (weighted by their images, so the average is the gradient of
//! the whole batch's mean loss) and the one optimizer step of the run follows.
//!
//! Replica 0 is the run's network itself, stepped on the thread that runs the training
//! loop, so its batch-norm running statistics are the run's, exactly as the official
//! multi-GPU code keeps rank 0's (DDP without SyncBN). Replicas 1.. are copies made at
//! each step: the same weights (and parameter ids, which key the gradients), autodiff
//! leaves of their own (so that their graphs never merge with replica 0's and the
//! backward passes run in parallel) and batch-norm running statistics of their own, which
//! are dropped after the step (burn keeps running statistics per thread and averages
//! them when read; shared, the replicas' updates would mix in whatever order the threads
//! ran).
//!
//! With a device list (`device: [tch-cuda:0, tch-cuda:1]`) replica k lives on device k:
//! its copy is forked there and takes its share of the batch there, and its gradients and
//! totals come back to the main device (the first) for the sum: an exchange through the
//! main device, as LibTorch has no collective operations.
//!
//! Every replica has a rayon pool of its own threads; the training loop itself runs on
//! replica 0's pool ([`Replicas::run`]), so no replica's parallel loops spill onto another's
//! cores. The summation order of the gradients is fixed (replica 0, 1, ...): a run is
//! deterministic for a given replica count.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};
use netaug_model::ModelError;

use crate::error::TrainError;
use crate::step::StepLoss;

/// The replicas of a run: one rayon pool and one device each.
pub(crate) struct Replicas {
    pools: Vec<rayon::ThreadPool>,
    devices: Vec<Device>,
}

/// What the replicas of one step computed together.
pub(crate) struct Stepped {
    /// The gradient of the whole batch's loss.
    pub grads: GradientsParams,
    /// The target net's loss summed over the batch's images.
    pub loss_sum: Tensor<1>,
    /// Correct top-1 predictions of the target net (classification).
    pub hits: Option<Tensor<1, Int>>,
}

/// One replica's share of a step.
struct Share {
    grads: GradientsParams,
    loss_sum: Tensor<1>,
    hits: Option<Tensor<1, Int>>,
    images: usize,
}

impl Replicas {
    /// One replica on each of `devices` (autodiff devices; the first is the main one),
    /// with `threads` threads each.
    pub fn new(devices: Vec<Device>, threads: usize) -> Result<Self, TrainError> {
        let pools = (0..devices.len())
            .map(|k| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.max(1))
                    .thread_name(move |i| format!("replica-{k}-{i}"))
                    .build()
                    .map_err(|e| TrainError::setting("run.replicas", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { pools, devices })
    }

    /// `count` replicas on one device.
    #[cfg(test)]
    pub fn on(device: &Device, count: usize, threads: usize) -> Result<Self, TrainError> {
        Self::new(vec![device.clone(); count], threads)
    }

    /// How many replicas there are.
    pub fn count(&self) -> usize {
        self.pools.len()
    }

    /// The replicas' devices, in order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Runs `f` (the training loop) on a thread of replica 0's pool, which it keeps for
    /// its whole run.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pools[0].install(f)
    }

    /// One step over the replicas: `shares[k]` (an input and its images) goes to replica
    /// k, `work` gives a replica's loss on its share; replica 0 is `net`. Each share's
    /// gradient weighs its images' part of `images`, the whole batch's (over every rank of
    /// a run over processes). Called from the thread of [`Replicas::run`].
    pub fn step<N, I, W>(
        &self,
        net: &mut N,
        shares: &[(I, usize)],
        images: usize,
        work: &W,
    ) -> Result<Stepped, TrainError>
    where
        N: Module + Sync,
        I: Sync,
        W: Fn(&mut N, &I) -> Result<StepLoss<Option<Tensor<1, Int>>>, ModelError> + Sync,
    {
        let main = &self.devices[0];
        let mut copies: Vec<N> = self.devices[1..shares.len()]
            .iter()
            .map(|device| {
                let copy = net.valid().train();
                if device == main {
                    copy
                } else {
                    copy.fork(device)
                }
            })
            .collect();
        let results: Vec<Result<Share, ModelError>> = std::thread::scope(|s| {
            let others: Vec<_> = copies
                .iter_mut()
                .zip(&shares[1..])
                .zip(&self.pools[1..])
                .map(|((copy, share), pool)| {
                    s.spawn(move || pool.install(|| one(copy, share, work)))
                })
                .collect();
            let first = one(net, &shares[0], work);
            std::iter::once(first)
                .chain(others.into_iter().map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                }))
                .collect()
        });
        let shares = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(reduce(net, shares, images, &main.clone().inner()))
    }
}

/// A step without replicas: `net` on the whole batch, on the calling thread's pool.
pub(crate) fn alone<N, I, W>(
    net: &mut N,
    batch: &(I, usize),
    work: &W,
) -> Result<Stepped, TrainError>
where
    N: Module,
    W: Fn(&mut N, &I) -> Result<StepLoss<Option<Tensor<1, Int>>>, ModelError>,
{
    let s = one(net, batch, work)?;
    Ok(Stepped {
        grads: s.grads,
        loss_sum: s.loss_sum,
        hits: s.hits,
    })
}

/// A replica's forward and backward on its share.
fn one<N, I, W>(net: &mut N, (input, images): &(I, usize), work: &W) -> Result<Share, ModelError>
where
    N: Module,
    W: Fn(&mut N, &I) -> Result<StepLoss<Option<Tensor<1, Int>>>, ModelError>,
{
    let out = work(net, input)?;
    let grads = GradientsParams::from_grads(out.total.backward(), net);
    Ok(Share {
        grads,
        loss_sum: out.target.inner().mul_scalar(*images as f64),
        hits: out.out,
        images: *images,
    })
}

/// The shares summed in replica order on the `main` device: gradients weighted by each
/// share's images.
fn reduce<N: Module>(net: &N, shares: Vec<Share>, images: usize, main: &Device) -> Stepped {
    let mut parts = Vec::with_capacity(shares.len());
    let mut loss_sum: Option<Tensor<1>> = None;
    let mut hits: Option<Tensor<1, Int>> = None;
    for s in shares {
        let share_loss = s.loss_sum.to_device(main);
        loss_sum = Some(match loss_sum {
            Some(l) => l + share_loss,
            None => share_loss,
        });
        hits = match (hits, s.hits.map(|h| h.to_device(main))) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        parts.push((s.grads, s.images as f64 / images.max(1) as f64));
    }
    let mut sum = WeightedSum {
        parts,
        main: main.clone(),
        out: GradientsParams::new(),
    };
    net.visit(&mut sum);
    Stepped {
        grads: sum.out,
        loss_sum: loss_sum.expect("a step has at least one share"),
        hits,
    }
}

/// Sums each parameter's gradients over the parts, each times its weight, on `main`.
struct WeightedSum {
    parts: Vec<(GradientsParams, f64)>,
    main: Device,
    out: GradientsParams,
}

impl ModuleVisitor for WeightedSum {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let mut sum: Option<Tensor<D>> = None;
        for (grads, weight) in &mut self.parts {
            if let Some(g) = grads.remove::<D>(param.id) {
                let g = g.to_device(&self.main).mul_scalar(*weight);
                sum = Some(match sum {
                    Some(s) => s + g,
                    None => g,
                });
            }
        }
        if let Some(s) = sum {
            self.out.register(param.id, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};
    use netaug_model::{Active, ActiveArch, AugFactors, InitKind, Mode, Net, zoo};

    use super::*;
    use crate::loss::{smoothed_targets, soft_cross_entropy};
    use crate::sampling::{AugMode, with_sampled};
    use crate::step::{Select, netaug_loss};

    /// A share: images and their soft targets.
    type Pair = (Tensor<4>, Tensor<2>);
    /// A replica's loss.
    type Loss = StepLoss<Option<Tensor<1, Int>>>;
    /// The archs the replicas trained, with the thread each ran on.
    type Seen = std::sync::Mutex<Vec<(String, ActiveArch)>>;

    /// A NetAug step's loss with batch norm frozen (running statistics), so that a
    /// share's gradient does not depend on the other images of the batch; the augmented
    /// net is the one `step_seed` draws, as in a training step, and is recorded in `seen`.
    fn frozen_step(
        net: &mut Net,
        pair: &Pair,
        step_seed: u64,
        seen: Option<&Seen>,
    ) -> Result<Loss, ModelError> {
        step_in(Mode::Eval, net, pair, Some(step_seed), seen)
    }

    /// A step's loss with batch norm in `mode`; with `step_seed`, a NetAug step with the
    /// augmented net it draws (recorded in `seen`).
    fn step_in(
        mode: Mode,
        net: &mut Net,
        (images, targets): &Pair,
        step_seed: Option<u64>,
        seen: Option<&Seen>,
    ) -> Result<Loss, ModelError> {
        let mut select = step_seed.map(|step_seed| {
            move |n: &mut Net| -> Result<(), ModelError> {
                with_sampled(AugMode::Random, step_seed, |a| n.set_active(a));
                if let Some(seen) = seen {
                    let thread = std::thread::current().name().unwrap_or("main").to_string();
                    seen.lock().unwrap().push((thread, n.active().clone()));
                }
                Ok(())
            }
        });
        netaug_loss(
            net,
            |n, _| {
                let logits = n.forward(images.clone(), mode);
                (soft_cross_entropy(logits, targets.clone()), None)
            },
            select.as_mut().map(|s| (s as Select<'_, Net>, 1.0)),
        )
    }

    /// [`frozen_step`] with the augmented net of step seed 7.
    fn frozen_netaug(net: &mut Net, pair: &Pair) -> Result<Loss, ModelError> {
        frozen_step(net, pair, 7, None)
    }

    /// The largest difference between two gradients of `net`'s parameters, relative to
    /// the largest gradient entry, and how many parameters have one.
    struct Compare<'a> {
        a: &'a GradientsParams,
        b: &'a GradientsParams,
        worst: f32,
        scale: f32,
        params: usize,
    }

    impl ModuleVisitor for Compare<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = |g: &GradientsParams| {
                g.get::<D>(param.id)
                    .map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            };
            match (values(self.a), values(self.b)) {
                (Some(a), Some(b)) => {
                    self.params += 1;
                    for (x, y) in a.iter().zip(&b) {
                        self.worst = self.worst.max((x - y).abs());
                        self.scale = self.scale.max(x.abs());
                    }
                }
                (None, None) => {}
                _ => panic!("a parameter has a gradient in one run only"),
            }
        }
    }

    fn compare(net: &Net, a: &GradientsParams, b: &GradientsParams) -> (f32, usize) {
        let mut c = Compare {
            a,
            b,
            worst: 0.0,
            scale: 0.0,
            params: 0,
        };
        net.visit(&mut c);
        (c.worst / c.scale.max(f32::MIN_POSITIVE), c.params)
    }

    /// `images` and `targets` cut into shares of the given sizes.
    fn shares(
        images: &Tensor<4>,
        targets: &Tensor<2>,
        sizes: &[usize],
    ) -> Vec<((Tensor<4>, Tensor<2>), usize)> {
        let mut start = 0;
        sizes
            .iter()
            .map(|&n| {
                let share = (
                    (
                        images.clone().narrow(0, start, n),
                        targets.clone().narrow(0, start, n),
                    ),
                    n,
                );
                start += n;
                share
            })
            .collect()
    }

    /// A tinymbv2 supernet (NetAug factors, target arch active), eight images and their
    /// label-smoothed targets.
    fn setup(device: &Device) -> (Net, Tensor<4>, Tensor<2>) {
        let spec = zoo::spec("tinymbv2", 10, 1).unwrap();
        let factors = AugFactors::new(vec![1.0, 1.6, 2.2], vec![1.0, 1.8]).unwrap();
        // (A new net's running statistics are autodiff leaves, which an eval-mode
        // forward would give gradients; a training run never reads them with a gradient.
        // The round trip makes them plain buffers, as in every replica copy.)
        let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 1, device)
            .valid()
            .train();
        net.set_active(Active::Min);
        device.seed(5);
        let images = Tensor::<4>::random([8, 1, 32, 32], Distribution::Normal(0.0, 1.0), device);
        let labels: Vec<u32> = (0..8).map(|i| (i * 3) % 10).collect();
        let targets = smoothed_targets(&labels, 10, 0.1, device);
        (net, images, targets)
    }

    #[test]
    fn a_step_has_the_same_bits_on_any_number_of_threads() {
        // A run's numbers must follow from its seed and configuration: the same sweep on
        // a machine with other cores (or another --jobs) gives the same table.
        let device = Device::flex().autodiff();
        let (mut net, images, targets) = setup(&device);
        let batch = ((images, targets), 8);
        for aug in [false, true] {
            let grads: Vec<Stepped> = [1, 2, 3]
                .into_iter()
                .map(|threads| {
                    let pool = Replicas::on(&device, 1, threads).unwrap();
                    pool.run(|| {
                        alone(&mut net, &batch, &|n: &mut Net, p: &Pair| {
                            step_in(Mode::Train, n, p, aug.then_some(7), None)
                        })
                    })
                    .unwrap()
                })
                .collect();
            for (k, other) in grads.iter().enumerate().skip(1) {
                let (rel, params) = compare(&net, &grads[0].grads, &other.grads);
                assert!(params > 20, "{params} parameters with gradients");
                assert_eq!(rel, 0.0, "NetAug {aug}: 1 and {} threads differ", k + 1);
            }
        }
    }

    #[test]
    fn every_replica_trains_the_augmented_net_of_the_step() {
        let device = Device::flex().autodiff();
        let (mut net, images, targets) = setup(&device);
        let replicas = Replicas::on(&device, 3, 1).unwrap();
        let parts = shares(&images, &targets, &[3, 3, 2]);
        let mut archs = Vec::new();
        for step_seed in [11, 12, 13] {
            let seen = std::sync::Mutex::new(Vec::new());
            replicas
                .step(&mut net, &parts, 8, &|n: &mut Net, p: &Pair| {
                    frozen_step(n, p, step_seed, Some(&seen))
                })
                .unwrap();
            let seen = seen.into_inner().unwrap();
            let threads: std::collections::BTreeSet<_> = seen.iter().map(|(t, _)| t).collect();
            assert_eq!(threads.len(), 3, "one draw per replica thread: {seen:?}");
            assert!(seen.iter().all(|(_, a)| *a == seen[0].1), "{seen:?}");
            archs.push(seen[0].1.clone());
        }
        assert!(
            archs[0] != archs[1] || archs[1] != archs[2],
            "steps draw other nets"
        );
    }

    /// Checks that replicas on `devices` (the first is the main one) give the gradient of
    /// the whole batch on one replica, on 2 and 3 replicas, and the same bits twice.
    fn check_gradient_average(devices: &[Device]) {
        let device = &devices[0];
        let (mut net, images, targets) = setup(device);
        let whole = Replicas::on(device, 1, 1).unwrap();
        let reference = whole
            .step(
                &mut net,
                &shares(&images, &targets, &[8]),
                8,
                &frozen_netaug,
            )
            .unwrap();
        for sizes in [&[4, 4][..], &[3, 3, 2]] {
            let on: Vec<Device> = (0..sizes.len())
                .map(|k| devices[k % devices.len()].clone())
                .collect();
            let replicas = Replicas::new(on, 1).unwrap();
            let parts: Vec<_> = shares(&images, &targets, sizes)
                .into_iter()
                .zip(replicas.devices())
                .map(|(((x, t), n), d)| ((x.to_device(d), t.to_device(d)), n))
                .collect();
            let split = replicas.step(&mut net, &parts, 8, &frozen_netaug).unwrap();
            let (rel, params) = compare(&net, &reference.grads, &split.grads);
            assert!(params > 20, "{params} parameters with gradients");
            assert!(rel < 1e-5, "{sizes:?}: relative difference {rel}");
            let loss = |s: &Stepped| s.loss_sum.clone().into_scalar::<f64>();
            assert!((loss(&reference) - loss(&split)).abs() < 1e-4 * loss(&reference));

            // The same step again gives the same bits: the sum's order is fixed.
            let again = replicas.step(&mut net, &parts, 8, &frozen_netaug).unwrap();
            assert_eq!(compare(&net, &split.grads, &again.grads).0, 0.0);
        }
    }

    #[test]
    fn ranks_sum_to_the_gradient_of_the_whole_batch_and_all_hold_the_same() {
        // Two processes of 4 images each (here two threads that exchange as ranks do)
        // give the gradient of one process of 8, batch norm frozen.
        let device = Device::flex().autodiff();
        let (mut net, images, targets) = setup(&device);
        let whole = Replicas::on(&device, 1, 1).unwrap();
        let reference = whole
            .step(
                &mut net,
                &shares(&images, &targets, &[8]),
                8,
                &frozen_netaug,
            )
            .unwrap();
        let parts = shares(&images, &targets, &[4, 4]);
        let summed: Vec<Stepped> = std::thread::scope(|s| {
            let handles: Vec<_> = crate::world::threads::ranks(2)
                .into_iter()
                .zip(parts)
                .map(|(rank, part)| {
                    let (mut net, device) = (net.clone(), device.clone());
                    s.spawn(move || {
                        let world = crate::world::World::new(std::sync::Arc::new(rank));
                        let one = Replicas::on(&device, 1, 1).unwrap();
                        let mut st = one.step(&mut net, &[part], 8, &frozen_netaug).unwrap();
                        let stop = world
                            .sum_step(
                                &net,
                                &device.clone().inner(),
                                &mut st.grads,
                                &mut st.loss_sum,
                                &mut st.hits,
                                false,
                            )
                            .unwrap();
                        assert!(!stop);
                        st
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ranked in &summed {
            let (rel, params) = compare(&net, &reference.grads, &ranked.grads);
            assert!(params > 20, "{params} parameters with gradients");
            assert!(rel < 1e-5, "relative difference {rel}");
            let loss = |s: &Stepped| s.loss_sum.clone().into_scalar::<f64>();
            assert!((loss(&reference) - loss(ranked)).abs() < 1e-4 * loss(&reference));
        }
        // Every rank steps the very same gradient.
        assert_eq!(compare(&net, &summed[0].grads, &summed[1].grads).0, 0.0);
    }

    #[test]
    fn replicas_average_to_the_gradient_of_the_whole_batch() {
        check_gradient_average(&[Device::flex().autodiff()]);
    }

    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)] // burn-tch is deprecated upstream but is our fast GPU path.
    fn replicas_average_to_the_gradient_of_the_whole_batch_on_libtorch() {
        check_gradient_average(&[Device::libtorch().autodiff()]);
    }

    /// Two devices of the same machine, LibTorch's CPU and flex, stand for two GPUs: the
    /// copies are forked to their device, their shares are there, and the gradients come
    /// back to the main one.
    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)]
    fn replicas_on_two_devices_average_to_the_gradient_of_the_whole_batch() {
        check_gradient_average(&[Device::libtorch().autodiff(), Device::flex().autodiff()]);
    }
}
