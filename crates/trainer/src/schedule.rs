//! Learning-rate schedule of the official code (`CosineLRwithWarmup`): linear warm-up
//! from 0 per step, then cosine decay per step to 0.

/// Per-step learning rates of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineWithWarmup {
    /// Peak learning rate (after linear batch scaling).
    pub lr: f64,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// Cosine steps after the warm-up.
    pub decay_steps: usize,
}

impl CosineWithWarmup {
    /// The schedule for `base_lr` per 128 images at `batch_size`, with `warmup_epochs` +
    /// `epochs` epochs of `steps_per_epoch` steps.
    pub fn new(
        base_lr: f64,
        batch_size: usize,
        warmup_epochs: usize,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Self {
        Self {
            lr: base_lr * batch_size as f64 / 128.0,
            warmup_steps: warmup_epochs * steps_per_epoch,
            decay_steps: (epochs * steps_per_epoch).max(1),
        }
    }

    /// Learning rate of step `step` (0-based, counted over the whole run).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            self.lr * step as f64 / self.warmup_steps as f64
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
        let s = CosineWithWarmup::new(0.025, 256, 1, 2, 10);
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
}
