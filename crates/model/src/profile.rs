//! Size and cost of a (sub-)network.

use serde::Serialize;

/// Parameters and multiply-accumulates of one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Trainable parameters (conv, BN gamma/beta, linear; running statistics excluded).
    pub params: u64,
    /// Multiply-adds of the convs (SE convs included) and the linear layer, for one image.
    pub macs: u64,
}
