//! Learning-rate schedule of the official code (`CosineLRwithWarmup`): linear warm-up per
//! step from the unscaled learning rate (the official `warmup_lr`, the rate for one GPU's
//! batch of 128) to the batch-scaled one, then cosine decay per step to 0. At batch 128
//! the warm-up is flat, as on one official GPU.

/// Per-step learning rates of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineWithWarmup {
    /// Peak learning rate (after linear batch scaling).
    pub lr: f64,
    /// Learning rate of the first warm-up step.
    pub warmup_lr: f64,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// Cosine steps after the warm-up.
    pub decay_steps: usize,
}

impl CosineWithWarmup {
    /// The schedule for `base_lr` per 128 images at `batch_size`, warming up from
    /// `warmup_lr` over `warmup_epochs`, then `epochs` epochs of cosine decay, each of
    /// `steps_per_epoch` steps.
    pub fn new(
        base_lr: f64,
        warmup_lr: f64,
        batch_size: usize,
        warmup_epochs: usize,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Self {
        Self {
            lr: base_lr * batch_size as f64 / 128.0,
            warmup_lr,
            warmup_steps: warmup_epochs * steps_per_epoch,
            decay_steps: (epochs * steps_per_epoch).max(1),
        }
    }

    /// The schedule of `config` with `steps_per_epoch` steps per epoch.
    pub fn for_run(config: &crate::RunConfig, steps_per_epoch: usize) -> Self {
        Self::new(
            config.run.base_lr,
            config.warmup_lr(),
            config.data.batch_size,
            config.run.warmup_epochs,
            config.run.epochs,
            steps_per_epoch,
        )
    }

    /// Learning rate of step `step` (0-based, counted over the whole run).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            let t = step as f64 / self.warmup_steps as f64;
            (self.lr - self.warmup_lr) * t + self.warmup_lr
        } else {
            let t = (step - self.warmup_steps) as f64 / self.decay_steps as f64;
            0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_as_a_cosine() {
        let s = CosineWithWarmup::new(0.025, 0.0, 256, 1, 2, 10);
        assert_eq!(s.lr, 0.05);
        assert_eq!(s.at(0), 0.0);
        assert!((s.at(5) - 0.025).abs() < 1e-12);
        assert_eq!(s.at(10), 0.05);
        assert!(
            (s.at(20) - 0.025).abs() < 1e-12,
            "half way through the decay"
        );
        assert!(s.at(30) < 1e-12);
        assert!((1..30).all(|i| s.at(i) > 0.0));
    }

    #[test]
    fn warms_up_from_the_unscaled_rate_as_the_official_code() {
        // Official at 4 x 128 images: from 0.025 (one GPU's rate) to 0.1.
        let s = CosineWithWarmup::new(0.025, 0.025, 512, 1, 2, 10);
        assert_eq!(s.at(0), 0.025);
        assert!((s.at(5) - 0.0625).abs() < 1e-12);
        assert_eq!(s.at(10), 0.1);
        // At 128 images (one official GPU) the warm-up is flat.
        let flat = CosineWithWarmup::new(0.1, 0.1, 128, 2, 2, 10);
        assert!((0..20).all(|i| flat.at(i) == 0.1));
        assert!(flat.at(21) < 0.1);
    }
}
