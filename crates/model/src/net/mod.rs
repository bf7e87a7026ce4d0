//! The network: a zoo net built plain or as a NetAug supernet. `supernet` builds it and
//! walks its layers; the factor lists, the active sub-network and its sampling, the
//! forward pass, the profile, export and weights I/O each have their own file.

mod arch;
mod export;
mod factors;
mod forward;
mod io;
mod profile;
mod sampling;
mod supernet;

pub use arch::{Active, ActiveArch};
pub use factors::{AugFactors, expand_ratio};
pub use forward::FeatureInfo;
pub use io::{MODEL_JSON, WEIGHTS_FILE, non_finite_weights};
pub(crate) use io::{check_saved, load_weights, read_description, save_module};
pub use supernet::Net;
pub(crate) use supernet::calibrate_layers;
