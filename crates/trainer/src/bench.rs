//! Training-step throughput on synthetic batches: the same step as the loop (forward,
//! backward, optimizer; NetAug's two forwards), without data loading, so backends and
//! methods compare on compute alone.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use netaug_model::{Active, AugFactors, InitKind, Net, NetSpec, zoo};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend;
use crate::error::TrainError;
use crate::optim::optimizer;
use crate::replicas::Replicas;
use crate::step::{Objective, StepLoss, step_loss};

/// What to measure.
#[derive(Clone, Debug)]
pub struct TrainBench {
    /// Zoo model name.
    pub model: String,
    /// A net description to build instead of the zoo's `model` (its classes and channels
    /// replace `classes` and `channels`).
    pub net: Option<NetSpec>,
    /// Input side in pixels.
    pub resolution: usize,
    /// Images per step.
    pub batch: usize,
    /// Classes of the classifier.
    pub classes: usize,
    /// Input channels.
    pub channels: usize,
    /// NetAug steps (the paper's factor lists for the model) instead of baseline steps.
    pub netaug: bool,
    /// Device.
    pub device: crate::backend::DeviceName,
    /// Replicas the batch is split over (`run.replicas`), each on its share of the
    /// threads.
    pub replicas: usize,
    /// Untimed steps first (kernel selection, allocator warm-up).
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
}

/// Measured throughput.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BenchResult {
    /// Training images per second over the timed steps.
    pub images_per_second: f64,
    /// Seconds of the timed steps.
    pub seconds: f64,
    /// Mean seconds per step.
    pub seconds_per_step: f64,
}

/// The generator of the augmented sub-networks of NetAug steps (one draw per step, warm-up
/// included), also behind `netaug profile --arches`, so other tools can run the same ones.
pub fn arch_rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(0)
}

/// Runs `warmup + steps` training steps and times the last `steps`.
pub fn train_throughput(b: &TrainBench) -> Result<BenchResult, TrainError> {
    let device = backend::device(&b.device)?.autodiff();
    device.seed(0);
    let spec = match &b.net {
        Some(net) => {
            net.validate()
                .map_err(|e| TrainError::setting("--spec", e.to_string()))?;
            net.clone()
        }
        None => zoo::spec(&b.model, b.classes, b.channels)
            .map_err(|e| TrainError::setting("--model", e.to_string()))?,
    };
    let factors = if b.netaug {
        let (e, w) = zoo::paper_factors(&spec.name);
        AugFactors::new(e, w)?
    } else {
        AugFactors::none()
    };
    let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 0, &device);
    let mut opt = optimizer(4e-5);
    let x = Tensor::<4>::random(
        [b.batch, spec.in_channels, b.resolution, b.resolution],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<u32> = (0..b.batch).map(|i| (i % spec.classes) as u32).collect();
    // With replicas, the batch's shares, one per replica, as a training step splits it.
    let replicas = match b.replicas {
        0 | 1 => None,
        n => Some(Replicas::new(
            vec![device.clone(); n],
            rayon::current_num_threads() / n,
        )?),
    };
    let per = b.batch.div_ceil(b.replicas.max(1));
    let shares: Vec<((Tensor<4>, Objective), usize)> = (0..b.batch)
        .step_by(per)
        .map(|start| {
            let end = (start + per).min(b.batch);
            let objective = Objective::hard(&labels[start..end], spec.classes, 0.1, &device);
            (
                (x.clone().narrow(0, start, end - start), objective),
                end - start,
            )
        })
        .collect();
    let mut rng = arch_rng();
    let timed = || {
        let mut total = Tensor::<1>::zeros([1], &device.clone().inner());
        let mut start = Instant::now();
        for i in 0..b.warmup + b.steps {
            if i == b.warmup {
                // Drain queued work so the clock starts on an idle device.
                let _ = total.clone().into_scalar::<f32>();
                start = Instant::now();
            }
            let aug = b
                .netaug
                .then(|| (net.sample(Active::Random(&mut rng)), 1.0));
            let work = |net: &mut Net, (x, objective): &(Tensor<4>, Objective)| {
                let out = step_loss(net, x.clone(), objective, aug.clone())?;
                Ok(StepLoss {
                    total: out.total,
                    target: out.target,
                    out: None,
                })
            };
            let stepped = match &replicas {
                Some(r) => {
                    let images = shares.iter().map(|(_, n)| n).sum();
                    r.step(&mut net, &shares, images, &work)?
                }
                None => crate::replicas::alone(&mut net, &shares[0], &work)?,
            };
            net = opt.step(0.01, net, stepped.grads);
            total = total + stepped.loss_sum;
        }
        // One read at the end waits for every queued kernel.
        let _ = total.into_scalar::<f32>();
        let seconds = start.elapsed().as_secs_f64();
        Ok(BenchResult {
            images_per_second: (b.steps * b.batch) as f64 / seconds,
            seconds,
            seconds_per_step: seconds / b.steps.max(1) as f64,
        })
    };
    match &replicas {
        Some(r) => r.run(timed),
        None => timed(),
    }
}
