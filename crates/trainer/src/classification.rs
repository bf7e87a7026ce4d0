//! Classification as a [`Task`]: an image-folder (or Fashion-MNIST, ...) dataset, a zoo
//! classifier, label-smoothed (possibly mixed) targets, knowledge distillation from a
//! teacher, and top-1 / top-5 evaluation.

use burn::tensor::{Device, Tensor};
use netaug_data::{BatchPart, DataError, Loader, LoaderConfig, Normalize, Transform};
use netaug_model::{Active, Mode, Net, zoo};

use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::eval::{EvalResult, evaluate, to_device};
use crate::loss::{hits_topk, mixed_targets, smoothed_targets};
use crate::metrics::{EpochMetrics, Metrics, Selection};
use crate::observer::Observer;
use crate::step::{Distill, Objective};
use crate::task::{Calibration, EpochTotals, Scored, Task, supernet_settings};
use crate::{data, transfer};

/// A classification run's data and teacher.
pub(crate) struct Classification {
    config: RunConfig,
    train: Loader,
    /// What every choice reads: the held-out part of the training split with
    /// `data.val_split`, else the dataset's evaluation split.
    val: Loader,
    /// The evaluation split when `val` is held out of the training split: reported only.
    test: Option<Loader>,
    /// A fixed sample of the training images under the eval transform.
    train_eval: Option<Loader>,
    recal: Option<Loader>,
    teacher: Option<Net>,
    classes: usize,
}

/// What one evaluation after an epoch measured.
pub(crate) struct Scores {
    val: EvalResult,
    test: Option<EvalResult>,
    train_eval: Option<EvalResult>,
}

/// A training batch on the device.
pub(crate) struct Input {
    images: Tensor<4>,
    labels: Tensor<1, burn::tensor::Int>,
    objective: Objective,
}

impl Task for Classification {
    type Net = Net;
    type Batch = netaug_data::Batch;
    type Input = Input;
    type Scores = Scores;
    type Line = EpochMetrics;

    fn open(config: &RunConfig, device: &Device) -> Result<(Self, Net), TrainError> {
        let dataset = data::open(&config.data)?;
        let classes = dataset.classes.len();
        let (model, factors, init) = supernet_settings(config)?;
        let spec = zoo::spec(&model, classes, dataset.channels)
            .map_err(|e| TrainError::setting("model.name", e.to_string()))?;
        let teacher = match &config.kd {
            Some(kd) => Some(teacher(&kd.teacher, classes, device)?),
            None => None,
        };

        let (pool, held) = data::train_and_val(&dataset, &config.data)?;
        let train_samples = data::asked_subset(
            &pool,
            config.data.train_subset,
            "data.train_subset",
            "training",
        )?;
        let eval_samples = data::asked_subset(
            &dataset.eval().samples,
            config.data.eval_subset,
            "data.eval_subset",
            "evaluation",
        )?;
        let train_eval_samples = config
            .data
            .train_eval_images
            .map(|n| data::subset(&train_samples, Some(n)));
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
        let eval_loader = |samples| {
            data::eval_loader(
                samples,
                dataset.channels,
                config.data.image_size,
                config.data.batch_size,
                config.data.workers,
            )
        };
        let (val, test) = match held {
            Some(held) => (eval_loader(held)?, Some(eval_loader(eval_samples)?)),
            None => (eval_loader(eval_samples)?, None),
        };
        let train_eval = train_eval_samples.map(eval_loader).transpose()?;

        let mut net = Net::new(&spec, &factors, init, config.run.seed, device);
        if let Some(from) = &config.model.init_from {
            let report = transfer::init_from(&mut net, from, device)
                .map_err(|e| TrainError::setting("model.init_from", e.to_string()))?;
            tracing::info!("{report}");
        }
        let task = Self {
            config: config.clone(),
            train,
            val,
            test,
            train_eval,
            recal,
            teacher,
            classes,
        };
        Ok((task, net))
    }

    fn configure(&mut self, net: &mut Net) -> Result<(), TrainError> {
        // Dropout and stochastic depth are run settings, not saved with the weights.
        net.set_stochastic(self.config.stochastic())?;
        Ok(())
    }

    fn steps(&self) -> usize {
        self.train.batches()
    }

    fn train_images(&self) -> usize {
        self.train.shard_len()
    }

    fn batches(&self, epoch: usize) -> impl Iterator<Item = Result<Self::Batch, DataError>> {
        self.train.epoch(epoch as u64)
    }

    fn split(&self, batch: Self::Batch, parts: usize) -> Result<Vec<Self::Batch>, TrainError> {
        if batch.mix.is_some() {
            return Err(TrainError::setting(
                "regularization.mixup",
                "mixup pairs images across the whole batch; it trains on one replica",
            ));
        }
        Ok(batch.split(parts))
    }

    fn shard(&mut self, part: BatchPart) -> Result<(), TrainError> {
        Ok(self.train.set_part(part)?)
    }

    fn input(&self, batch: Self::Batch, device: &Device) -> (Input, usize) {
        let n = batch.labels.len();
        let smoothing = self.config.run.label_smoothing;
        let targets = match &batch.mix {
            Some(m) => mixed_targets(
                &batch.labels,
                m.lam,
                &m.perm,
                self.classes,
                smoothing,
                device,
            ),
            None => smoothed_targets(&batch.labels, self.classes, smoothing, device),
        };
        let (images, labels) = to_device(batch, device);
        let distill = match (&self.teacher, &self.config.kd) {
            (Some(t), Some(kd)) => Some(Distill {
                teacher_logits: t.forward(images.clone().detach(), Mode::Eval).detach(),
                temperature: kd.temperature,
                weight: kd.weight,
                on_augmented: kd.on_augmented,
            }),
            _ => None,
        };
        let objective = Objective { targets, distill };
        let input = Input {
            images,
            labels,
            objective,
        };
        (input, n)
    }

    fn loss(&self, net: &Net, input: &Input, augmented: bool) -> Scored {
        let logits = net.forward(input.images.clone(), Mode::Train);
        let hits = (!augmented)
            .then(|| hits_topk(logits.clone().inner(), input.labels.clone().inner(), 1));
        Scored {
            loss: input.objective.loss(logits, augmented),
            hits,
        }
    }

    fn calibration(&self, device: &Device) -> Option<(usize, Calibration<'_>)> {
        let loader = self.recal.as_ref()?;
        let device = device.clone();
        let batches = loader
            .epoch(u64::MAX)
            .map(move |b| b.map(|b| to_device(b, &device).0));
        Some((loader.batches(), Box::new(batches)))
    }

    fn evaluate(
        &self,
        net: &Net,
        device: &Device,
        observer: &mut dyn Observer,
    ) -> Result<Scores, TrainError> {
        let val = evaluate(net, &self.val, device, observer, "val")?;
        let mut other = |loader: &Option<Loader>, phase| {
            loader
                .as_ref()
                .map(|l| evaluate(net, l, device, observer, phase))
                .transpose()
        };
        let test = other(&self.test, "test")?;
        let train_eval = other(&self.train_eval, "train (unaugmented)")?;
        Ok(Scores {
            val,
            test,
            train_eval,
        })
    }

    fn line(
        &self,
        epoch: usize,
        train: &EpochTotals,
        scores: Scores,
        lr: f64,
        seconds: f64,
    ) -> EpochMetrics {
        let Scores {
            val,
            test,
            train_eval,
        } = scores;
        EpochMetrics {
            epoch,
            train_loss: train.loss,
            train_top1: train.top1.unwrap_or(0.0),
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            train_eval_top1: train_eval.map(|t| t.top1),
            test_loss: test.map(|t| t.loss),
            test_top1: test.map(|t| t.top1),
            test_top5: test.map(|t| t.top5),
            lr,
            seconds,
            images_per_second: train.images_per_second(),
        }
    }

    const SELECTION: Selection = Selection::higher("val_top1");

    fn final_metrics(last: Option<&EpochMetrics>) -> Metrics {
        let mut m = Metrics::new();
        m.insert("final_val_top1".into(), last.map_or(0.0, |l| l.val_top1));
        m.insert("final_val_top5".into(), last.map_or(0.0, |l| l.val_top5));
        let test = [
            ("final_test_top1", last.and_then(|l| l.test_top1)),
            ("final_test_top5", last.and_then(|l| l.test_top5)),
        ];
        m.extend(
            test.into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?))),
        );
        m
    }
}

/// The KD teacher at `path` (a run folder or a saved net), target net active, no
/// gradients; refused when its classes differ from the dataset's.
fn teacher(path: &std::path::Path, classes: usize, device: &Device) -> Result<Net, TrainError> {
    let dir = checkpoint::resolve_net(path)
        .map_err(|e| TrainError::setting("kd.teacher", e.to_string()))?;
    let mut t =
        Net::load(&dir, device).map_err(|e| TrainError::setting("kd.teacher", e.to_string()))?;
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
    Ok(burn::module::Module::no_grad(t))
}
