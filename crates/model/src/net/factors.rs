//! NetAug's factor lists and the expand ratio they multiply.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::zoo::BlockSpec;

/// NetAug's two factor lists. `[1.0]` and `[1.0]` give the plain network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugFactors {
    /// Multipliers of each inverted block's expand ratio.
    pub aug_expand_list: Vec<f64>,
    /// Multipliers of the widths of the stem, of blocks without identity shortcut and of
    /// the head convs.
    pub aug_width_mult_list: Vec<f64>,
}

impl AugFactors {
    /// No augmentation: the plain network.
    pub fn none() -> Self {
        Self {
            aug_expand_list: vec![1.0],
            aug_width_mult_list: vec![1.0],
        }
    }

    /// Checked factor lists: non-empty, finite, >= 1.0, the first one 1.0.
    pub fn new(expand: Vec<f64>, width: Vec<f64>) -> Result<Self, ModelError> {
        check_factors("aug_expand_list", &expand)?;
        check_factors("aug_width_mult_list", &width)?;
        Ok(Self {
            aug_expand_list: expand,
            aug_width_mult_list: width,
        })
    }

    /// Whether any factor widens the network.
    pub fn is_augmented(&self) -> bool {
        self.aug_expand_list
            .iter()
            .chain(&self.aug_width_mult_list)
            .any(|&f| f > 1.0)
    }

    pub(super) fn max_width(&self) -> f64 {
        self.aug_width_mult_list.iter().copied().fold(1.0, f64::max)
    }
}

fn check_factors(list: &'static str, values: &[f64]) -> Result<(), ModelError> {
    let reason = if values.is_empty() {
        Some("empty")
    } else if values.iter().any(|v| !v.is_finite() || *v < 1.0) {
        Some("every factor must be a finite number >= 1.0")
    } else if values[0] != 1.0 {
        Some("the first factor must be 1.0 (the target net)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ModelError::BadFactors {
            list,
            reason,
            values: values.to_vec(),
        }),
        None => Ok(()),
    }
}

/// A block's base expand ratio, hidden / input channels (official: `+ 1e-10` so that
/// `make_divisible(ratio * in, 1)` gives back the base hidden width).
pub fn expand_ratio(b: &BlockSpec) -> f64 {
    b.mid as f64 / b.in_ch as f64 + 1e-10
}
