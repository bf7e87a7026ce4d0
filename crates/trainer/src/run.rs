//! The training loop of one run, for every task (official `train.py`): epochs of NetAug
//! (or baseline, KD, regularized) steps under the cosine schedule, BN re-calibration and
//! evaluation of the target net after each epoch, checkpoints, metrics and the exported
//! tiny net. What differs between classification and detection is the [`Task`].
//!
//! A run over several processes ([`World`]) runs this loop on every rank: each takes its
//! share of every batch, the ranks' gradients are summed before the one optimizer step
//! they all take, and rank 0 alone evaluates and writes.
//!
//! Resuming gives the same run as never stopping: every step seeds the device's and the
//! sampler's generators from (seed, step), the loader's batches depend only on (seed,
//! epoch), and a checkpoint holds the weights, BN statistics and optimizer state.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor};
use netaug_model::{Active, Profile, Supernet};

use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::layout::TrainOptions;
use crate::ledger::{Ledger, calibrate_phase, loss_so_far, open_run, resume_point};
use crate::metrics::{Status, Summary};
use crate::observer::{Observer, Running};
use crate::replicas::{self, Replicas};
use crate::sampling::{AugMode, mix, with_sampled};
use crate::scalars::StepWindow;
use crate::schedule::CosineWithWarmup;
use crate::step::{Select, StepLoss, netaug_loss};
use crate::task::{EpochTotals, Task, model_name};
use crate::world::{Start, World};
use crate::{backend, optim};

/// Trains a run of task `T` (the folder locked, a finished run already handled).
pub(crate) fn train<T: Task>(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    let (mut run, net) = Run::<T>::prepare(config, out, options)?;
    if run.world.leads() {
        run.world.start(Start::Train);
    }
    let result = match run.replicas.clone() {
        Some(replicas) => replicas.run(|| run.execute(net, observer)),
        None => run.execute(net, observer),
    };
    match result {
        Ok(summary) => Ok(summary),
        Err(e) => Err(run
            .ledger
            .stopped(e, |status, why| run.summary(status, why))),
    }
}

/// Everything of a run but its network, which the loop holds by value: an optimizer step
/// takes the net and gives back the stepped one.
struct Run<T: Task> {
    task: T,
    config: RunConfig,
    ledger: Ledger,
    device: Device,
    optimizer: ModuleOptimizer,
    schedule: CosineWithWarmup,
    total_epochs: usize,
    metrics: Vec<T::Line>,
    profile: Profile,
    model: String,
    /// The replicas a step is split over; `None` for one.
    replicas: Option<std::sync::Arc<Replicas>>,
    /// The epoch to pause at (`TrainOptions::pause_at`).
    pause_at: Option<usize>,
    /// The processes the run is spread over.
    world: World,
}

impl<T: Task> Run<T> {
    /// Reads everything the user pointed at, then creates (or, resuming, reopens) the run
    /// folder; returns the run and its supernet.
    fn prepare(
        config: &RunConfig,
        out: &Path,
        options: &TrainOptions,
    ) -> Result<(Self, T::Net), TrainError> {
        let started = Instant::now();
        let devices = config
            .replica_devices()
            .iter()
            .map(|name| Ok(backend::device(name)?.autodiff()))
            .collect::<Result<Vec<_>, TrainError>>()?;
        let device = devices[0].clone();
        let (mut task, mut net) = T::open(config, &device)?;
        if task.steps() == 0 {
            return Err(TrainError::setting(
                "data.batch_size",
                format!(
                    "{} is larger than the {} training images",
                    config.data.batch_size,
                    task.train_images()
                ),
            ));
        }
        let model = model_name(config)?;
        let world = options.world.clone();
        if world.size() > 1 {
            let shares = world.size() * devices.len();
            if !config.data.batch_size.is_multiple_of(shares) {
                return Err(TrainError::setting(
                    "data.batch_size",
                    format!(
                        "{} images do not split evenly over {} ranks x {} replica(s)",
                        config.data.batch_size,
                        world.size(),
                        devices.len()
                    ),
                ));
            }
            task.shard(netaug_data::BatchPart {
                first: world.rank() * devices.len(),
                count: devices.len(),
                of: shares,
            })?;
        }
        let mut optimizer = optim::optimizer(config.run.weight_decay);
        let mut state = Default::default();
        let mut metrics = Vec::new();
        let resumed = if world.leads() {
            open_run(config, out, options.resume)?
        } else {
            resume_point(out, options.resume)?
        };
        if let Some(r) = resumed {
            net = T::Net::load(&r.dir, &device)?;
            optimizer = checkpoint::load_optimizer(&r.dir, optimizer)?;
            (state, metrics) = (r.state, r.metrics);
        }
        task.configure(&mut net)?;
        net.set_active(Active::Min);
        let profile = net.profile(config.data.image_size);
        let schedule = CosineWithWarmup::for_run(config, task.steps());
        let ledger = if world.leads() {
            Ledger::open(out.to_path_buf(), config, state, &metrics, started)?
        } else {
            Ledger::silent(out.to_path_buf(), state, started)
        };
        // Over several ranks a step always goes through the replicas' sum, which weighs
        // each share by its part of the global batch.
        let replicas = match devices.len() {
            1 if world.size() == 1 => None,
            n => {
                // The cores this run may use (RAYON_NUM_THREADS, or all) shared evenly.
                let threads = (rayon::current_num_threads() / n).max(1);
                tracing::info!(
                    "{n} replicas of {threads} thread(s) each on {}",
                    config.device
                );
                Some(std::sync::Arc::new(Replicas::new(devices, threads)?))
            }
        };
        let run = Self {
            task,
            config: config.clone(),
            ledger,
            device,
            optimizer,
            schedule,
            total_epochs: config.run.warmup_epochs + config.run.epochs,
            metrics,
            profile,
            model,
            replicas,
            pause_at: options.pause_at,
            world,
        };
        Ok((run, net))
    }

    fn execute(
        &mut self,
        mut net: T::Net,
        observer: &mut dyn Observer,
    ) -> Result<Summary, TrainError> {
        let pause_at = self.pause_at.filter(|&p| p < self.total_epochs);
        let end = pause_at.unwrap_or(self.total_epochs);
        for epoch in self.ledger.state.epochs_done..end {
            net = self.epoch(net, epoch, observer)?;
        }
        if let Some(epoch) = pause_at {
            // The checkpoint of the epoch it pauses at is written; the schedule stays
            // the full run's, so resuming continues as if it had never stopped.
            tracing::info!("paused after epoch {epoch} of {}", self.total_epochs);
            let summary = self.summary(Status::Paused, None);
            self.ledger.write_summary(&summary)?;
            return Ok(summary);
        }
        if self.ledger.writes() {
            let exported = match self.ledger.export_source(self.config.run.export_from) {
                Some(dir) => T::Net::load(&dir, &self.device)?.export(),
                None => {
                    net.set_active(Active::Min);
                    net.export()
                }
            };
            self.ledger.export(&exported)?;
        }
        let summary = self.summary(Status::Done, None);
        self.ledger.write_summary(&summary)?;
        Ok(summary)
    }

    /// Trains, re-calibrates and evaluates 0-based `epoch`, then writes its line and
    /// checkpoints.
    fn epoch(
        &mut self,
        mut net: T::Net,
        epoch: usize,
        observer: &mut dyn Observer,
    ) -> Result<T::Net, TrainError> {
        let epoch_start = Instant::now();
        let netaug = self.config.netaug.as_ref();
        let mode = netaug.and_then(|n| AugMode::of(n, epoch, self.total_epochs));
        if mode == Some(AugMode::Random) && netaug.is_some_and(|n| n.sort_channels) {
            net.sort_channels();
        }
        observer.phase(
            &format!("epoch {}/{}", epoch + 1, self.total_epochs),
            self.task.steps(),
        );
        let trained = self.train_epoch(net, epoch, mode, observer);
        observer.finish_phase();
        let (mut net, totals) = trained?;
        // The epoch's last update can make weights NaN while every loss it summed was
        // finite: such a net is never evaluated, checkpointed or chosen as the best.
        if let Some(bad) = netaug_model::net::non_finite_weights(&net) {
            return Err(TrainError::Diverged(format!(
                "{bad} weights are not finite after epoch {} (its last update)",
                epoch + 1
            )));
        }

        net.set_active(Active::Min);
        if !self.world.leads() {
            // Rank 0 evaluates and writes; this rank only keeps its position.
            self.ledger.record_training(totals.images, totals.seconds);
            self.ledger.end_epoch(
                epoch,
                &self.metrics,
                0.0,
                T::SELECTION,
                &net,
                &self.optimizer,
            )?;
            return Ok(net);
        }
        // Re-calibration and evaluation run on a copy whose weights need no gradients: on
        // the trained net every forward pass was recorded in the autodiff graph, which
        // then held every calibration batch's activations (8.5 GB resident for a NetAug
        // run of the default sweep). The copy shares the BN statistics it re-estimates.
        let frozen = net.clone().no_grad();
        if let Some((total, batches)) = self.task.calibration(&self.device) {
            calibrate_phase(observer, &frozen, total, batches)?;
        }
        let val = self.task.evaluate(&frozen, &self.device, observer)?;
        drop(frozen);

        self.ledger.record_training(totals.images, totals.seconds);
        let lr = self.schedule.at(self.ledger.state.step.saturating_sub(1));
        let seconds = epoch_start.elapsed().as_secs_f64();
        let line = self.task.line(epoch + 1, &totals, val, lr, seconds);
        self.metrics.push(line.clone());
        self.ledger.end_epoch(
            epoch,
            &self.metrics,
            T::score(&line),
            T::SELECTION,
            &net,
            &self.optimizer,
        )?;
        observer.epoch(&line, self.total_epochs);
        Ok(net)
    }

    /// One epoch of steps (inside the epoch's progress phase).
    fn train_epoch(
        &mut self,
        mut net: T::Net,
        epoch: usize,
        mode: Option<AugMode>,
        observer: &mut dyn Observer,
    ) -> Result<(T::Net, EpochTotals), TrainError> {
        let device = self.device.clone();
        let inner = device.clone().inner();
        // The augmented net's sampling mode and weight, in an epoch that has one.
        let augment = mode.zip(self.config.netaug.as_ref().map(|n| n.alpha));
        let log_every = self.config.run.log_every;
        let steps = self.task.steps();
        let mut loss_sum = Tensor::<1>::zeros([1], &inner);
        let mut hits: Option<Tensor<1, Int>> = None;
        let mut images = 0usize;
        let start = Instant::now();
        let mut window = StepWindow::new(start);
        // Time in the ranks' gradient sum (waiting for the slowest rank included).
        let mut summing = std::time::Duration::ZERO;
        for (i, batch) in self.task.batches(epoch).enumerate() {
            let batch = batch?;
            let step_seed = mix(self.config.run.seed, self.ledger.state.step as u64);
            device.seed(step_seed);
            let lr = self.schedule.at(self.ledger.state.step);
            let task = &self.task;
            let work = |net: &mut T::Net, input: &T::Input| {
                augmented_loss(task, net, input, augment, step_seed)
            };
            let (stepped, n) = match &self.replicas {
                None => {
                    let whole = task.input(batch, &device);
                    (replicas::alone(&mut net, &whole, &work)?, whole.1)
                }
                Some(replicas) => {
                    let shares: Vec<_> = task
                        .split(batch, replicas.count())?
                        .into_iter()
                        .zip(replicas.devices())
                        .map(|(b, d)| task.input(b, d))
                        .collect();
                    let mine = shares.iter().map(|(_, n)| n).sum();
                    let n = self.world.images(mine).iter().sum();
                    (replicas.step(&mut net, &shares, n, &work)?, n)
                }
            };
            let mut stepped = stepped;
            let summed = Instant::now();
            let stop = self.world.sum_step(
                &net,
                &inner,
                &mut stepped.grads,
                &mut stepped.loss_sum,
                &mut stepped.hits,
                crate::interrupt::requested().is_some(),
            )?;
            summing += summed.elapsed();
            net = self.optimizer.step(lr, net, stepped.grads);
            loss_sum = loss_sum + stepped.loss_sum;
            if let Some(h) = stepped.hits {
                hits = Some(match hits {
                    Some(sum) => sum + h,
                    None => h,
                });
            }
            images += n;
            self.ledger.state.step += 1;
            let running = if (i + 1) % log_every == 0 || i + 1 == steps {
                let loss = loss_so_far(&loss_sum, epoch + 1, i + 1)?;
                let step = self.ledger.state.step;
                self.ledger
                    .log_step(&window.line(step, epoch + 1, loss, images, lr))?;
                Some(Running {
                    loss: loss / images.max(1) as f64,
                    top1: hits
                        .as_ref()
                        .map(|h| 100.0 * h.clone().into_scalar::<i64>() as f64 / images as f64),
                    images_per_second: images as f64 / start.elapsed().as_secs_f64().max(1e-9),
                })
            } else {
                None
            };
            observer.advance(i + 1, running);
            // Every rank stops after the same step: a stop asked of any rank is in the sum.
            if stop {
                let signal = crate::interrupt::requested().unwrap_or(SIGTERM);
                return Err(TrainError::Interrupted(signal));
            }
        }
        if self.world.size() > 1 {
            tracing::info!(
                "epoch {}: the gradient sum over {} ranks took {:.3} ms a step ({:.1}% of the steps' time)",
                epoch + 1,
                self.world.size(),
                summing.as_secs_f64() * 1e3 / steps.max(1) as f64,
                100.0 * summing.as_secs_f64() / start.elapsed().as_secs_f64().max(1e-9)
            );
        }
        let denom = images.max(1) as f64;
        let totals = EpochTotals {
            loss: loss_sum.into_scalar::<f64>() / denom,
            top1: hits.map(|h| 100.0 * h.into_scalar::<i64>() as f64 / denom),
            images,
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok((net, totals))
    }

    fn summary(&self, status: Status, error: Option<String>) -> Summary {
        let mut summary = Summary {
            run_id: self
                .ledger
                .out
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            dataset: self.config.data.dataset.clone(),
            model: self.model.clone(),
            resolution: self.config.data.image_size,
            method: self.config.method(),
            epochs: self.total_epochs,
            train_images: Some(self.task.train_images() as u64),
            seed: self.config.run.seed,
            device: self.config.device.to_string(),
            params: self.profile.params,
            macs: self.profile.macs,
            best_epoch: self.ledger.state.best_epoch,
            metrics: T::final_metrics(self.metrics.last()),
            wall_seconds: self.ledger.wall_seconds(),
            images_per_second: self.ledger.images_per_second(),
            status,
            error,
        };
        let best = T::SELECTION.best_key();
        summary.metrics.insert(best, self.ledger.state.best);
        summary
    }
}

/// The loss of one step of `task` on `input`: the target net's, plus, in an epoch with an
/// augmented net (`augment`: its sampling mode and weight), that of the augmented net the
/// step's seed draws; every replica of a step draws the same one.
fn augmented_loss<T: Task>(
    task: &T,
    net: &mut T::Net,
    input: &T::Input,
    augment: Option<(AugMode, f64)>,
    step_seed: u64,
) -> Result<StepLoss<Option<Tensor<1, Int>>>, netaug_model::ModelError> {
    let mut select;
    let aug: Option<(Select<'_, T::Net>, f64)> = match augment {
        Some((mode, alpha)) => {
            select = move |net: &mut T::Net| {
                with_sampled(mode, step_seed, |a| net.set_active(a));
                Ok(())
            };
            Some((&mut select, alpha))
        }
        None => None,
    };
    netaug_loss(
        net,
        |net, augmented| {
            let s = task.loss(net, input, augmented);
            (s.loss, s.hits)
        },
        aug,
    )
}

/// SIGTERM's number: what stops a rank that was not signalled itself when another rank
/// was.
const SIGTERM: i32 = 15;
