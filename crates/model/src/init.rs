//! Weight initialization as in the official code (`utils/init.py`).
//!
//! Values are drawn on the host from a seeded ChaCha stream, so a seed gives the same
//! network on every backend.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// How conv weights are initialized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// Normal(0, sqrt(2 / (k*k*out))): the official default for plain training.
    #[default]
    HeFout,
    /// Kaiming uniform with a = sqrt(5): the official choice when NetAug is on.
    KaimingUniform,
}

/// A seeded source of initial weights.
pub struct Initializer {
    kind: InitKind,
    rng: ChaCha8Rng,
    device: Device,
}

impl Initializer {
    /// A new initializer for `device`.
    pub fn new(kind: InitKind, seed: u64, device: &Device) -> Self {
        Self {
            kind,
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A conv weight `[out, in_per_group, k, k]`.
    pub fn conv(&mut self, shape: [usize; 4]) -> Param<Tensor<4>> {
        let [out, in_per_group, k, _] = shape;
        let values: Vec<f32> = match self.kind {
            InitKind::HeFout => {
                let std = (2.0 / (k * k * out) as f64).sqrt();
                self.normal(shape.iter().product(), std)
            }
            InitKind::KaimingUniform => {
                // gain = sqrt(2 / (1 + a^2)) with a = sqrt(5); bound = gain * sqrt(3 / fan_in).
                let fan_in = (in_per_group * k * k) as f64;
                let bound = (1.0 / fan_in).sqrt();
                self.uniform(shape.iter().product(), bound)
            }
        };
        self.param(values, shape)
    }

    /// A linear weight `[out, in]`: truncated normal, std 0.02, cut at +-2 (absolute), as
    /// `torch.nn.init.trunc_normal_`.
    pub fn linear(&mut self, shape: [usize; 2]) -> Param<Tensor<2>> {
        let n = shape[0] * shape[1];
        let mut values = Vec::with_capacity(n);
        while values.len() < n {
            let z: f64 = StandardNormal.sample(&mut self.rng);
            let v = 0.02 * z;
            if (-2.0..=2.0).contains(&v) {
                values.push(v as f32);
            }
        }
        self.param(values, shape)
    }

    /// A constant vector (BN gamma/beta, biases).
    pub fn constant(&self, len: usize, value: f32) -> Param<Tensor<1>> {
        self.param(vec![value; len], [len])
    }

    /// A conv weight drawn from N(0, std²).
    pub fn conv_normal(&mut self, shape: [usize; 4], std: f64) -> Param<Tensor<4>> {
        let values = self.normal(shape.iter().product(), std);
        self.param(values, shape)
    }

    /// A vector parameter with the given values.
    pub fn values(&self, values: Vec<f32>) -> Param<Tensor<1>> {
        let n = values.len();
        self.param(values, [n])
    }

    fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                (z * std) as f32
            })
            .collect()
    }

    fn uniform(&mut self, n: usize, bound: f64) -> Vec<f32> {
        (0..n)
            .map(|_| self.rng.random_range(-bound..bound) as f32)
            .collect()
    }

    fn param<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }
}
