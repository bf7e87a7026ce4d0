//! netaug-sweep: YAML grid expansion, stable run ids, stages linked by `@stage`
//! references, the local parallel executor and
//! the Slurm job-array executor, resume and locking.
#![warn(missing_docs)]

mod error;
pub mod halving;
pub mod local;
pub mod lock;
pub mod plan;
pub mod promote;
pub mod slurm;
mod spec;
pub mod workdir;

pub use error::SweepError;
pub use plan::{Plan, RunPlan, plan};
pub use spec::SweepSpec;
