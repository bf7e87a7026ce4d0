//! The training loop of one run (official `train.py`): epochs of NetAug (or baseline, KD,
//! regularized) steps under the cosine schedule, BN re-calibration and evaluation of the
//! target net after each epoch, checkpoints, metrics and the exported tiny net.
//!
//! Resuming gives the same run as never stopping: every step seeds the device's and the
//! sampler's generators from (seed, step), the loader's batches depend only on (seed,
//! epoch), and a checkpoint holds the weights, BN statistics and optimizer state.

use std::path::Path;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use netaug_data::{Loader, LoaderConfig, Normalize, Transform};
use netaug_model::{Active, AugFactors, Mode, Net, Profile, zoo};

use crate::checkpoint::{self, TrainState};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::eval::{evaluate, to_device};
use crate::layout::TrainOptions;
use crate::ledger::{Ledger, calibrate_phase, open_run, running_loss};
use crate::loss::{hits_topk, mixed_targets, smoothed_targets};
use crate::metrics::{EpochMetrics, Status, Summary};
use crate::observer::{Observer, Running};
use crate::sampling::{AugMode, mix, with_sampled};
use crate::schedule::CosineWithWarmup;
use crate::step::{Distill, Objective, step_loss};
use crate::{backend, data, optim, transfer};

/// Trains a classification run (the folder locked, a finished run already handled).
pub(crate) fn train(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Summary, TrainError> {
    let mut run = Run::prepare(config, out, options)?;
    match run.execute(observer) {
        Ok(summary) => Ok(summary),
        Err(e) => Err(run
            .ledger
            .stopped(e, |status, why| run.summary(status, why))),
    }
}

/// What one epoch of training steps measured.
struct EpochTotals {
    /// Mean loss of the target net.
    loss: f64,
    /// Top-1 of the target net (percent).
    top1: f64,
    /// Images trained on.
    images: usize,
    /// Seconds of the steps.
    seconds: f64,
}

struct Run {
    config: RunConfig,
    ledger: Ledger,
    device: Device,
    net: Option<Net>,
    optimizer: Option<ModuleOptimizer>,
    teacher: Option<Net>,
    train: Loader,
    eval: Loader,
    recal: Option<Loader>,
    classes: usize,
    schedule: CosineWithWarmup,
    total_epochs: usize,
    metrics: Vec<EpochMetrics>,
    profile: Profile,
    model: String,
}

impl Run {
    fn prepare(config: &RunConfig, out: &Path, options: &TrainOptions) -> Result<Self, TrainError> {
        let started = Instant::now();
        let device = backend::device(&config.device)?.autodiff();
        let dataset = data::open(&config.data)?;
        let classes = dataset.classes.len();
        let model = config
            .model_name()
            .map_err(|m| TrainError::setting("model.width", m))?;
        let spec = zoo::spec(&model, classes, dataset.channels)
            .map_err(|e| TrainError::setting("model.name", e.to_string()))?;
        let factors = match &config.netaug {
            Some(n) => AugFactors::new(n.aug_expand_list.clone(), n.aug_width_mult_list.clone())?,
            None => AugFactors::none(),
        };
        let init = config
            .init_kind()
            .map_err(|(k, m)| TrainError::setting(k, m))?;

        // Everything the user pointed at is read before the run folder is touched.
        let teacher = match &config.kd {
            Some(kd) => {
                let dir = checkpoint::resolve_net(&kd.teacher)
                    .map_err(|e| TrainError::setting("kd.teacher", e.to_string()))?;
                let mut t = Net::load(&dir, &device)
                    .map_err(|e| TrainError::setting("kd.teacher", e.to_string()))?;
                t.set_active(Active::Min);
                if t.spec().classes != classes {
                    return Err(TrainError::setting(
                        "kd.teacher",
                        format!(
                            "{}: the teacher has {} classes, the dataset {classes}",
                            dir.display(),
                            t.spec().classes
                        ),
                    ));
                }
                Some(burn::module::Module::no_grad(t))
            }
            None => None,
        };

        let train_samples = data::subset(&dataset.train().samples, config.data.train_subset);
        let eval_samples = data::subset(&dataset.eval().samples, config.data.eval_subset);
        let norm = Normalize::for_channels(dataset.channels);
        let mut train_cfg = LoaderConfig::train(config.data.batch_size, config.run.seed);
        train_cfg.workers = config.data.workers;
        train_cfg.mixup_alpha = config.regularization.as_ref().and_then(|r| r.mixup);
        let train_transform = data::train_transform(config);
        let recal = match &config.netaug {
            Some(n) if n.bn_recal_images > 0 => {
                let samples = data::subset(&train_samples, Some(n.bn_recal_images));
                let cfg =
                    data::recal_config(config.data.batch_size, config.data.workers, samples.len());
                Some(Loader::new(
                    samples,
                    Transform::Train(train_transform.clone()),
                    norm.clone(),
                    cfg,
                )?)
            }
            _ => None,
        };
        let train = Loader::new(
            train_samples,
            Transform::Train(train_transform),
            norm,
            train_cfg,
        )?;
        let steps = train.batches();
        if steps == 0 {
            return Err(TrainError::setting(
                "data.batch_size",
                format!(
                    "{} is larger than the {} training images",
                    config.data.batch_size,
                    train.shard_len()
                ),
            ));
        }
        let eval = data::eval_loader(
            eval_samples,
            dataset.channels,
            config.data.image_size,
            config.data.batch_size,
            config.data.workers,
        )?;

        let mut net = Net::new(&spec, &factors, init, config.run.seed, &device);
        if let Some(from) = &config.model.init_from {
            let report = transfer::init_from(&mut net, from, &device)
                .map_err(|e| TrainError::setting("model.init_from", e.to_string()))?;
            tracing::info!("{report}");
        }
        let mut optimizer = optim::optimizer(config.run.weight_decay);
        let mut state = TrainState::default();
        let mut metrics: Vec<EpochMetrics> = Vec::new();

        if let Some(r) = open_run(config, out, options.resume)? {
            net = Net::load(&r.dir, &device)?;
            optimizer = checkpoint::load_optimizer(&r.dir, optimizer)?;
            (state, metrics) = (r.state, r.metrics);
        }
        net.set_stochastic(config.stochastic())?;
        net.set_active(Active::Min);
        let profile = net.profile(config.data.image_size);
        let total_epochs = config.run.warmup_epochs + config.run.epochs;
        let schedule = CosineWithWarmup::for_run(config, steps);
        Ok(Self {
            config: config.clone(),
            ledger: Ledger::new(out.to_path_buf(), state, started),
            device,
            net: Some(net),
            optimizer: Some(optimizer),
            teacher,
            train,
            eval,
            recal,
            classes,
            schedule,
            total_epochs,
            metrics,
            profile,
            model,
        })
    }

    fn execute(&mut self, observer: &mut dyn Observer) -> Result<Summary, TrainError> {
        for epoch in self.ledger.state.epochs_done..self.total_epochs {
            self.epoch(epoch, observer)?;
        }
        let exported = match self.ledger.export_source(self.config.run.export_from) {
            Some(dir) => Net::load(&dir, &self.device)?.export(),
            None => {
                let net = self.net.as_mut().expect("the loop owns the net");
                net.set_active(Active::Min);
                net.export()
            }
        };
        self.ledger.export(&exported)?;
        let summary = self.summary(Status::Done, None);
        self.ledger.write_summary(&summary)?;
        Ok(summary)
    }

    fn epoch(&mut self, epoch: usize, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let epoch_start = Instant::now();
        let mode = self
            .config
            .netaug
            .as_ref()
            .and_then(|n| AugMode::of(n, epoch, self.total_epochs));
        let mut net = self.net.take().expect("the loop owns the net");
        if mode == Some(AugMode::Random)
            && self.config.netaug.as_ref().is_some_and(|n| n.sort_channels)
        {
            net.sort_channels();
        }
        let (mut net, result) = self.train_epoch(net, epoch, mode, observer);
        let EpochTotals {
            loss: train_loss,
            top1: train_top1,
            images,
            seconds,
        } = match result {
            Ok(r) => r,
            Err(e) => {
                self.net = Some(net);
                return Err(e);
            }
        };
        net.set_active(Active::Min);
        let evaluated = self
            .recalibrate(&net, observer)
            .and_then(|()| evaluate(&net, &self.eval, &self.device, observer));
        self.net = Some(net);
        let val = evaluated?;

        self.ledger.record_training(images, seconds);
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss,
            train_top1,
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            lr: self.schedule.at(self.ledger.state.step.saturating_sub(1)),
            seconds: epoch_start.elapsed().as_secs_f64(),
            images_per_second: images as f64 / seconds.max(1e-9),
        };
        self.metrics.push(m.clone());
        let net = self.net.as_ref().expect("the loop owns the net");
        self.ledger.end_epoch(
            epoch,
            &self.metrics,
            m.val_top1,
            |s| &mut s.best_val_top1,
            net,
            self.optimizer.as_ref(),
        )?;
        observer.epoch(&m, self.total_epochs);
        Ok(())
    }

    /// One epoch of steps. The optimizer steps the net by value, so the net comes back
    /// with the result.
    fn train_epoch(
        &mut self,
        mut net: Net,
        epoch: usize,
        mode: Option<AugMode>,
        observer: &mut dyn Observer,
    ) -> (Net, Result<EpochTotals, TrainError>) {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => {
                        observer.finish_phase();
                        return (net, Err(e.into()));
                    }
                }
            };
        }
        let device = self.device.clone();
        let inner = device.clone().inner();
        let seed = self.config.run.seed;
        let smoothing = self.config.run.label_smoothing;
        let log_every = self.config.run.log_every;
        let steps = self.train.batches();
        let mut loss_sum = Tensor::<1>::zeros([1], &inner);
        let mut hits = Tensor::<1, Int>::zeros([1], &inner);
        let mut images = 0usize;
        let start = Instant::now();
        observer.phase(&format!("epoch {}/{}", epoch + 1, self.total_epochs), steps);
        for (i, batch) in self.train.epoch(epoch as u64).enumerate() {
            let batch = tri!(batch);
            let step_seed = mix(seed, self.ledger.state.step as u64);
            device.seed(step_seed);
            let n = batch.labels.len();
            let targets = match &batch.mix {
                Some(m) => mixed_targets(
                    &batch.labels,
                    m.lam,
                    &m.perm,
                    self.classes,
                    smoothing,
                    &device,
                ),
                None => smoothed_targets(&batch.labels, self.classes, smoothing, &device),
            };
            let (x, labels) = to_device(batch, &device);
            let distill = match (&self.teacher, &self.config.kd) {
                (Some(t), Some(kd)) => Some(Distill {
                    teacher_logits: t.forward(x.clone().detach(), Mode::Eval).detach(),
                    temperature: kd.temperature,
                    weight: kd.weight,
                    on_augmented: kd.on_augmented,
                }),
                _ => None,
            };
            let objective = Objective { targets, distill };
            let aug = match (mode, &self.config.netaug) {
                (Some(mode), Some(n)) => {
                    let arch = with_sampled(mode, step_seed, |a| net.sample(a));
                    Some((arch, n.alpha))
                }
                _ => None,
            };
            let out = tri!(step_loss(&mut net, x, &objective, aug));
            let grads = GradientsParams::from_grads(out.total.backward(), &net);
            let lr = self.schedule.at(self.ledger.state.step);
            let optimizer = self
                .optimizer
                .as_mut()
                .expect("the loop owns the optimizer");
            net = optimizer.step(lr, net, grads);
            loss_sum = loss_sum + out.target.inner().mul_scalar(n as f64);
            hits = hits + hits_topk(out.logits.inner(), labels.inner(), 1);
            images += n;
            self.ledger.state.step += 1;
            let running = if (i + 1) % log_every == 0 || i + 1 == steps {
                let loss = match running_loss(&loss_sum, images, epoch + 1, i + 1) {
                    Ok(loss) => loss,
                    Err(e) => {
                        observer.finish_phase();
                        return (net, Err(e));
                    }
                };
                Some(Running {
                    loss,
                    top1: Some(100.0 * hits.clone().into_scalar::<i64>() as f64 / images as f64),
                    images_per_second: images as f64 / start.elapsed().as_secs_f64().max(1e-9),
                })
            } else {
                None
            };
            observer.advance(i + 1, running);
            if let Some(signal) = crate::interrupt::requested() {
                observer.finish_phase();
                return (net, Err(TrainError::Interrupted(signal)));
            }
        }
        observer.finish_phase();
        let seconds = start.elapsed().as_secs_f64();
        let denom = images.max(1) as f64;
        let loss = loss_sum.into_scalar::<f64>() / denom;
        let top1 = 100.0 * hits.into_scalar::<i64>() as f64 / denom;
        let totals = EpochTotals {
            loss,
            top1,
            images,
            seconds,
        };
        (net, Ok(totals))
    }

    /// Re-estimates the target net's BN statistics on the fixed training subset (NetAug).
    fn recalibrate(&self, net: &Net, observer: &mut dyn Observer) -> Result<(), TrainError> {
        let Some(loader) = &self.recal else {
            return Ok(());
        };
        let device = self.device.clone();
        calibrate_phase(
            observer,
            loader.batches(),
            loader.epoch(u64::MAX),
            |b| to_device(b, &device).0,
            |batches| {
                net.calibrate_bn(batches);
            },
        )
    }

    fn summary(&self, status: Status, error: Option<String>) -> Summary {
        let last = self.metrics.last();
        Summary {
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
            train_images: Some(self.train.shard_len() as u64),
            seed: self.config.run.seed,
            device: self.config.device.clone(),
            params: self.profile.params,
            macs: self.profile.macs,
            best_val_top1: Some(self.ledger.state.best_val_top1),
            best_epoch: self.ledger.state.best_epoch,
            final_val_top1: Some(last.map_or(0.0, |m| m.val_top1)),
            final_val_top5: Some(last.map_or(0.0, |m| m.val_top5)),
            best_val_map50: None,
            final_val_map50: None,
            final_val_map: None,
            wall_seconds: self.ledger.wall_seconds(),
            images_per_second: self.ledger.images_per_second(),
            status,
            error,
        }
    }
}
