//! NetAug supernets for the paper's tiny (and two large) networks.
//!
//! Every layer holds its widest weight and runs on the leading slice of it that the
//! active widths select, so the target (tiny) network is the narrowest sub-network of
//! a wider "augmented" one and shares its weights ([`Net`], [`Active`]). Build a zoo net
//! with [`zoo::spec`] and [`Net::new`]; [`Net::profile`] counts params and MACs of the
//! active sub-network; [`Net::export`] cuts out the plain target network.
//!
//! The crate knows nothing of datasets, configs or files beyond its own weights.
//!
//! ```no_run
//! use burn::tensor::{Device, Distribution, Tensor};
//! use netaug_model::{Active, AugFactors, InitKind, Mode, Net, zoo};
//! use rand::SeedableRng;
//!
//! # fn main() -> Result<(), netaug_model::ModelError> {
//! let device = Device::flex();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let spec = zoo::spec("tinymbv2", 10, 1)?;
//! let factors = AugFactors::new(vec![1.0, 1.6, 2.2, 2.8], vec![1.0, 1.8, 2.6])?;
//! let mut net = Net::new(&spec, &factors, InitKind::KaimingUniform, 0, &device);
//! let images = Tensor::<4>::random([8, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
//!
//! net.set_active(Active::Random(&mut rng)); // one augmented net
//! let _logits = net.forward(images.clone(), Mode::Train);
//! net.sort_channels();
//! net.set_active(Active::Min); // the target net
//! net.calibrate_bn([images]);
//! let tiny = net.export();
//! tiny.save(std::path::Path::new("tiny"))?;
//! println!("{:?}", tiny.profile(32));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
// burn slices take one range per dimension: `[0..c]` on a vector is a slice, not a Vec.
#![allow(clippy::single_range_in_vec_init)]

pub mod blocks;
pub mod detector;
pub mod divisible;
mod error;
mod init;
pub mod layers;
pub mod net;
mod ops;
mod profile;
mod regularize;
mod supernet;
pub mod zoo;

pub use detector::Detector;
pub use error::ModelError;
pub use init::InitKind;
pub use layers::Mode;
pub use net::{Active, ActiveArch, AugFactors, Net};
pub use profile::Profile;
pub use regularize::{DropBlock, Stochastic};
pub use supernet::Supernet;
pub use zoo::NetSpec;
