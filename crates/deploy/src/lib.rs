//! netaug-deploy: the tiny net leaves the project.
//!
//! [`Graph::of`] turns the active sub-network of a [`netaug_model::Net`] into a plain
//! inference graph (batch norm folded into the convolution before it, activations as
//! element-wise nodes); [`onnx::write`] writes that graph as an ONNX model (opset 13,
//! float32, no Python involved); [`memory::Memory`] is what a microcontroller needs for it
//! at int8: flash for the weights and the peak SRAM of a layer-by-layer schedule.
#![warn(missing_docs)]

mod graph;
pub mod memory;
pub mod onnx;

pub use graph::{Graph, Node, Op};
pub use memory::Memory;

/// Why a net could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A tensor could not be read back from the device.
    #[error("reading {name}: {message}")]
    Read {
        /// The tensor.
        name: String,
        /// What went wrong.
        message: String,
    },
}
