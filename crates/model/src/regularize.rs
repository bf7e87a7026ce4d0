//! Training-time regularizers that live inside the network: dropout before the classifier
//! and DropBlock on the feature maps of the last two stages (the paper's Fig. 2
//! comparisons). Both act only in [`Mode::Train`](crate::Mode::Train); their masks come
//! from the device's random generator, so a seeded device gives the same masks.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::ops;

/// Stochastic regularizers of a network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stochastic {
    /// Dropout probability before the classifier (0 = off).
    #[serde(default)]
    pub dropout: f64,
    /// DropBlock on stride-16 and stride-32 feature maps.
    #[serde(default)]
    pub dropblock: Option<DropBlock>,
}

/// DropBlock (Ghiasi et al. 2018): drops square regions of a feature map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropBlock {
    /// Fraction of activations dropped.
    pub prob: f64,
    /// Side of a dropped block (odd; clipped to the feature map).
    #[serde(default = "default_block")]
    pub size: usize,
}

fn default_block() -> usize {
    7
}

impl Stochastic {
    /// Refuses probabilities outside `[0, 1)` and even or zero block sizes.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        if let Some(d) = self.dropblock {
            if !(0.0..1.0).contains(&d.prob) {
                return Err(format!("dropblock probability {} is not in [0, 1)", d.prob));
            }
            if d.size == 0 || d.size % 2 == 0 {
                return Err(format!("dropblock size {} must be odd", d.size));
            }
        }
        Ok(())
    }
}

/// Inverted dropout: zeroes each entry with probability `p`, scales the rest by `1/(1-p)`.
pub fn dropout<const D: usize>(x: Tensor<D>, p: f64) -> Tensor<D> {
    if p <= 0.0 {
        return x;
    }
    let keep = Tensor::<D>::random(x.shape(), Distribution::Bernoulli(1.0 - p), &x.device());
    x * keep.mul_scalar(1.0 / (1.0 - p))
}

/// DropBlock: block centres drawn with the rate that drops `prob` of the map in expectation,
/// each grown to a `size x size` square; the kept activations are rescaled so the mean is
/// preserved.
pub fn dropblock(x: Tensor<4>, block: DropBlock) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if block.prob <= 0.0 || n * c * h * w == 0 {
        return x;
    }
    // Largest odd size that fits, so the pooled mask keeps the map's size.
    let mut size = block.size.min(h).min(w);
    if size % 2 == 0 {
        size -= 1;
    }
    let (vh, vw) = (h - size + 1, w - size + 1);
    let gamma = (block.prob / (size * size) as f64 * (h * w) as f64 / (vh * vw) as f64).min(1.0);
    // Centres only where a whole block fits, as the paper; placed in a zero map.
    let device = x.device();
    let inside = Tensor::<4>::random([n, c, vh, vw], Distribution::Bernoulli(gamma), &device);
    let r = size / 2;
    let centres = Tensor::<4>::zeros([n, c, h, w], &device)
        .slice_assign([0..n, 0..c, r..r + vh, r..r + vw], inside);
    let dropped = ops::max_pool_same(centres, size);
    let keep = dropped.neg().add_scalar(1.0);
    let kept = keep.clone().sum().into_scalar::<f32>().max(1.0);
    let scale = (n * c * h * w) as f32 / kept;
    x * keep.mul_scalar(scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn dropout_keeps_the_mean_and_zeroes_about_p() {
        let device = Device::flex();
        device.seed(1);
        let x = Tensor::<2>::ones([100, 100], &device);
        let y = dropout(x, 0.3);
        let zeros = y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>();
        assert!((2700..3300).contains(&zeros), "{zeros}");
        let mean = y.mean().into_scalar::<f32>();
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
    }

    #[test]
    fn dropblock_drops_square_blocks_at_about_the_rate() {
        let device = Device::flex();
        device.seed(2);
        let x = Tensor::<4>::ones([8, 16, 14, 14], &device);
        let y = dropblock(x, DropBlock { prob: 0.1, size: 3 });
        let v = y
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let zeros = v.iter().filter(|&&a| a == 0.0).count() as f64 / v.len() as f64;
        // Overlapping blocks make the dropped fraction a little below the target.
        assert!((0.075..0.105).contains(&zeros), "{zeros}");
        // Every dropped pixel is inside some fully dropped 3x3 square (blocks, not pixels).
        let at = |m: usize, r: isize, col: isize| -> bool {
            (0..14).contains(&r)
                && (0..14).contains(&col)
                && v[m * 196 + r as usize * 14 + col as usize] == 0.0
        };
        for m in 0..8 * 16 {
            for r in 0..14isize {
                for col in 0..14isize {
                    if at(m, r, col) {
                        let in_block = (-2..=0).any(|dr| {
                            (-2..=0).any(|dc| {
                                (0..3).all(|i| {
                                    (0..3).all(|j| {
                                        let (rr, cc) = (r + dr + i, col + dc + j);
                                        !(0..14).contains(&rr)
                                            || !(0..14).contains(&cc)
                                            || at(m, rr, cc)
                                    })
                                })
                            })
                        });
                        assert!(in_block, "isolated dropped pixel at {m} {r} {col}");
                    }
                }
            }
        }
        let mean = y.mean().into_scalar::<f32>();
        assert!((mean - 1.0).abs() < 1e-3, "{mean}");
        assert!(
            Stochastic {
                dropout: 0.0,
                dropblock: Some(DropBlock { prob: 0.1, size: 4 })
            }
            .validate()
            .is_err()
        );
    }
}
