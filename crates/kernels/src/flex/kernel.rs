//! The contract of a convolution that brings its own gradients.

use burn::backend::flex::FlexTensor;

/// A convolution with its own gradients, so that autodiff records it as one op
/// ([`Direct`](super::direct::Direct), [`Pointwise`](super::pointwise::Pointwise)).
pub(super) trait ConvKernel: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The output for input `x` and weight `w`.
    fn forward(&self, x: &FlexTensor, w: &FlexTensor) -> FlexTensor;
    /// The input's gradient for output gradient `grad`.
    fn input_grad(&self, w: &FlexTensor, grad: &FlexTensor) -> FlexTensor;
    /// The weight's gradient for output gradient `grad`.
    fn weight_grad(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor;
}
