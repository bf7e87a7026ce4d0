//! NetAug supernets for the paper's tiny (and two large) networks.
//!
//! Every layer holds its widest weight and runs on the leading slice of it that the
//! active widths select, so the target (tiny) network is the narrowest sub-network of
//! a wider "augmented" one and shares its weights ([`Net`], [`Active`]). Build a zoo net
//! with [`zoo::spec`] and [`Net::new`]; [`Net::profile`] counts params and MACs of the
//! active sub-network; [`Net::export`] cuts out the plain target network.
//!
//! The crate knows nothing of datasets, configs or files beyond its own weights.

// burn slices take one range per dimension: `[0..c]` on a vector is a slice, not a Vec.
#![allow(clippy::single_range_in_vec_init)]

pub mod blocks;
pub mod divisible;
pub mod error;
pub mod init;
pub mod layers;
pub mod net;
mod ops;
pub mod profile;
pub mod zoo;

pub use error::ModelError;
pub use init::InitKind;
pub use layers::Mode;
pub use net::{Active, ActiveArch, AugFactors, Net};
pub use profile::Profile;
pub use zoo::NetSpec;
