//! What a training loop needs of a dynamic-width network: select a sub-network, reorder
//! channels, re-calibrate BN, cut out the target net, save, load and profile it. A
//! classifier ([`Net`]) and a detector ([`Detector`]) are both supernets, so one loop
//! (and one NetAug step) trains either.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::{Active, Detector, ModelError, Net, Profile};

/// A network whose layers run on leading slices of their widest weights.
pub trait Supernet: Module + Sized {
    /// Selects a sub-network: the target (`Min`), the widest (`Max`), or one drawn.
    fn set_active(&mut self, mode: Active<'_>);
    /// Reorders hidden channels by importance; the function of the full net is unchanged.
    fn sort_channels(&mut self);
    /// Re-estimates the active sub-network's BN statistics; returns the images seen.
    fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize;
    /// The active sub-network as a plain network with its own weights.
    fn export(&self) -> Self;
    /// Writes the network into `dir`.
    fn save(&self, dir: &Path) -> Result<(), ModelError>;
    /// Reads a network written by [`Supernet::save`].
    fn load(dir: &Path, device: &Device) -> Result<Self, ModelError>;
    /// Params and MACs of the active sub-network at `resolution`.
    fn profile(&self, resolution: usize) -> Profile;
}

impl Supernet for Net {
    fn set_active(&mut self, mode: Active<'_>) {
        Net::set_active(self, mode);
    }
    fn sort_channels(&mut self) {
        Net::sort_channels(self);
    }
    fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize {
        Net::calibrate_bn(self, batches)
    }
    fn export(&self) -> Self {
        Net::export(self)
    }
    fn save(&self, dir: &Path) -> Result<(), ModelError> {
        Net::save(self, dir)
    }
    fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Net::load(dir, device)
    }
    fn profile(&self, resolution: usize) -> Profile {
        Net::profile(self, resolution)
    }
}

impl Supernet for Detector {
    fn set_active(&mut self, mode: Active<'_>) {
        Detector::set_active(self, mode);
    }
    fn sort_channels(&mut self) {
        Detector::sort_channels(self);
    }
    fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize {
        Detector::calibrate_bn(self, batches)
    }
    fn export(&self) -> Self {
        Detector::export(self)
    }
    fn save(&self, dir: &Path) -> Result<(), ModelError> {
        Detector::save(self, dir)
    }
    fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Detector::load(dir, device)
    }
    fn profile(&self, resolution: usize) -> Profile {
        Detector::profile(self, resolution)
    }
}
