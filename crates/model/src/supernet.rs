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

/// `Supernet` for a type whose inherent methods of the same names do the work.
macro_rules! delegate_supernet {
    ($t:ident) => {
        impl Supernet for $t {
            fn set_active(&mut self, mode: Active<'_>) {
                $t::set_active(self, mode);
            }
            fn sort_channels(&mut self) {
                $t::sort_channels(self);
            }
            fn calibrate_bn(&self, batches: impl IntoIterator<Item = Tensor<4>>) -> usize {
                $t::calibrate_bn(self, batches)
            }
            fn export(&self) -> Self {
                $t::export(self)
            }
            fn save(&self, dir: &Path) -> Result<(), ModelError> {
                $t::save(self, dir)
            }
            fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
                $t::load(dir, device)
            }
            fn profile(&self, resolution: usize) -> Profile {
                $t::profile(self, resolution)
            }
        }
    };
}

delegate_supernet!(Net);
delegate_supernet!(Detector);
