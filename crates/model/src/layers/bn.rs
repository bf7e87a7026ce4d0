//! Dynamic batch norm: parameters and running statistics are sliced to the input width.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param, RunningState};
use burn::tensor::{Int, Tensor};

use super::weights::{Mode, ParamRef, WeightList, fresh, permute};
use crate::init::Initializer;
use crate::ops;

/// Batch norm over the leading `C` of `C_max` channels, PyTorch semantics: momentum 0.1,
/// eps 1e-5, running variance updated with the unbiased batch variance.
#[derive(Module, Debug)]
pub struct DynBatchNorm2d {
    /// Scale.
    pub gamma: Param<Tensor<1>>,
    /// Shift.
    pub beta: Param<Tensor<1>>,
    /// Running mean `[C_max]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running variance `[C_max]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Weight of the new batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
    /// Batch statistics gathered in [`Mode::Calibrate`].
    #[module(skip)]
    calib: Arc<Mutex<Option<Calibration>>>,
}

/// Sums of batch means and (biased) variances, weighted by batch size.
#[derive(Clone, Debug)]
struct Calibration {
    mean_sum: Tensor<1>,
    var_sum: Tensor<1>,
    count: f64,
}

impl DynBatchNorm2d {
    /// A new layer: gamma 1, beta 0, mean 0, var 1.
    pub fn new(init: &mut Initializer, c_max: usize) -> Self {
        Self {
            gamma: init.constant(c_max, 1.0),
            beta: init.constant(c_max, 0.0),
            running_mean: RunningState::new(init.constant(c_max, 0.0).val()),
            running_var: RunningState::new(init.constant(c_max, 1.0).val()),
            momentum: 0.1,
            eps: 1e-5,
            calib: Arc::default(),
        }
    }

    /// Normalizes `x` (`[N, C, H, W]`, `C <= C_max`).
    pub fn forward(&self, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let gamma = self.gamma.val().slice([0..c]);
        let beta = self.beta.val().slice([0..c]);
        match mode {
            Mode::Eval => {
                let mean = self.running_mean.value_sync().slice([0..c]);
                let var = self.running_var.value_sync().slice([0..c]);
                ops::batch_norm_eval(x, gamma, beta, mean, var, self.eps)
            }
            Mode::Train => {
                let (out, mean, var) = ops::batch_norm_train(x, gamma, beta, self.eps);
                let count = (n * h * w) as f64;
                let unbiased = var.detach().mul_scalar(count / (count - 1.0).max(1.0));
                self.update(&self.running_mean, mean.detach(), c);
                self.update(&self.running_var, unbiased, c);
                out
            }
            Mode::Calibrate => {
                let (out, mean, var) = ops::batch_norm_train(x, gamma, beta, self.eps);
                let (mean, var) = (
                    mean.detach().mul_scalar(n as f64),
                    var.detach().mul_scalar(n as f64),
                );
                let mut calib = self.calib.lock().expect("calibration lock");
                *calib = Some(match calib.take() {
                    Some(c) if c.mean_sum.dims()[0] == mean.dims()[0] => Calibration {
                        mean_sum: c.mean_sum + mean,
                        var_sum: c.var_sum + var,
                        count: c.count + n as f64,
                    },
                    _ => Calibration {
                        mean_sum: mean,
                        var_sum: var,
                        count: n as f64,
                    },
                });
                out
            }
        }
    }

    /// Drops statistics gathered in [`Mode::Calibrate`].
    pub(crate) fn begin_calibration(&self) {
        *self.calib.lock().expect("calibration lock") = None;
    }

    /// Replaces the running statistics of the calibrated channels by the averages of the
    /// batch statistics gathered since [`Self::begin_calibration`] (the official
    /// `reset_bn`). Returns whether this layer saw any batch.
    pub(crate) fn finish_calibration(&self) -> bool {
        let Some(c) = self.calib.lock().expect("calibration lock").take() else {
            return false;
        };
        let width = c.mean_sum.dims()[0];
        let set = |state: &RunningState<Tensor<1>>, sum: Tensor<1>| {
            let full = state.value_sync().detach();
            state.update(full.slice_assign([0..width], sum.div_scalar(c.count)));
            let _ = state.value_sync();
        };
        set(&self.running_mean, c.mean_sum);
        set(&self.running_var, c.var_sum);
        true
    }

    fn update(&self, state: &RunningState<Tensor<1>>, batch: Tensor<1>, c: usize) {
        let full = state.value_sync().detach();
        let old = full.clone().slice([0..c]);
        let new = old
            .mul_scalar(1.0 - self.momentum)
            .add(batch.mul_scalar(self.momentum));
        state.update(full.slice_assign([0..c], new));
    }

    pub(crate) fn list<'a>(&'a self, list: &mut WeightList<'a>, c: usize) {
        list.push("gamma", ParamRef::R1(&self.gamma), vec![c]);
        list.push("beta", ParamRef::R1(&self.beta), vec![c]);
    }

    /// The plain layer over the first `c` channels (its own running statistics).
    pub fn export(&self, c: usize) -> Self {
        Self {
            gamma: fresh(self.gamma.val().slice([0..c])),
            beta: fresh(self.beta.val().slice([0..c])),
            running_mean: RunningState::new(self.running_mean.value_sync().slice([0..c])),
            running_var: RunningState::new(self.running_var.value_sync().slice([0..c])),
            momentum: self.momentum,
            eps: self.eps,
            calib: Arc::default(),
        }
    }

    /// Reorders channels by `idx`.
    pub(crate) fn permute(&mut self, idx: &Tensor<1, Int>) {
        self.gamma = permute(&self.gamma, 0, idx);
        self.beta = permute(&self.beta, 0, idx);
        let mean = self.running_mean.value_sync().select(0, idx.clone());
        let var = self.running_var.value_sync().select(0, idx.clone());
        // New states: clones of a network share running statistics (burn keeps them behind
        // an Arc), and sorting one copy must not reorder the other's.
        self.running_mean = RunningState::new(mean);
        self.running_var = RunningState::new(var);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn train_mode_updates_only_the_active_running_statistics_as_pytorch() {
        let device = Device::flex();
        let mut init = Initializer::new(Default::default(), 0, &device);
        let bn = DynBatchNorm2d::new(&mut init, 4);
        // Two active channels, batch 2, 1x2 pixels: channel 0 holds 1,2,3,4; channel 1 all 5.
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 5.0, 5.0, 3.0, 4.0, 5.0, 5.0],
                [2, 2, 1, 2],
            ),
            &device,
        );
        let y = bn.forward(x, Mode::Train);
        // Channel 0: mean 2.5, biased var 1.25, unbiased 5/3.
        let mean = vec1(bn.running_mean.value_sync());
        let var = vec1(bn.running_var.value_sync());
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(mean[0], 0.25) && close(mean[1], 0.5), "{mean:?}");
        assert!(
            close(var[0], 0.9 + 0.1 * 5.0 / 3.0) && close(var[1], 0.9),
            "{var:?}"
        );
        assert_eq!(&mean[2..], &[0.0, 0.0]);
        assert_eq!(&var[2..], &[1.0, 1.0]);
        // Output normalized with the biased batch variance.
        let y = y.into_data().try_into_vec::<f32>().unwrap();
        assert!(close(y[0], -1.5 / (1.25f32 + 1e-5).sqrt()), "{y:?}");
    }
}
