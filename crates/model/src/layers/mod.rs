//! Dynamic-width layers: each holds its widest weight and runs on the leading slice of it
//! that the active widths select (`weight[:out, :in]`), so narrower sub-networks share
//! the weights of wider ones.

pub mod act;
pub mod bn;
pub mod conv;
pub mod linear;
pub mod se;
mod weights;

pub use act::Act;
pub use bn::DynBatchNorm2d;
pub use conv::{ConvCfg, ConvLayer, DynConv2d};
pub use linear::DynLinear;
pub use se::DynSe;
pub(crate) use weights::WeightList;
pub use weights::{ActiveWeight, Mode, ParamRef};
