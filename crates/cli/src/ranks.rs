//! The ranks of a `netaug train` that mpirun or srun started several times: MPI when this
//! binary has it (cargo feature `mpi`), else a refusal that says how to get it. A process
//! started once (or by `mpirun -np 1`) never touches MPI.

use anyhow::Result;
use netaug_trainer::World;

/// How a launcher started this process: its rank, the number of processes, the launcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// This process's rank.
    pub rank: usize,
    /// How many processes were started.
    pub size: usize,
    /// Who started them, for messages.
    pub by: &'static str,
}

/// What a launcher's environment says, when it started more than one process. Open MPI's
/// mpirun, MPICH's (Hydra) and Slurm's srun each set their own variables; `sbatch` alone
/// sets no step variables, so a batch script's one process is not taken for several.
pub fn launched(env: impl Fn(&str) -> Option<String>) -> Option<Launch> {
    let number = |key: &str| env(key).and_then(|v| v.trim().parse::<usize>().ok());
    [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "mpirun"),
        ("PMI_RANK", "PMI_SIZE", "mpiexec"),
        ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "srun"),
    ]
    .into_iter()
    .find_map(|(rank, size, by)| {
        Some(Launch {
            rank: number(rank)?,
            size: number(size)?,
            by,
        })
    })
    .filter(|l| l.size > 1)
}

/// The ranks of this process: MPI joined when a launcher started several, one process
/// otherwise. Keep the returned guard until the run ends (dropping it ends MPI).
pub fn join() -> Result<(World, Option<Guard>)> {
    match launched(|k| std::env::var(k).ok()) {
        None => Ok((World::default(), None)),
        Some(launch) => mpi_world(launch),
    }
}

#[cfg(not(feature = "mpi"))]
fn mpi_world(launch: Launch) -> Result<(World, Option<Guard>)> {
    Err(crate::UsageError(
        format!(
            "{} started this as rank {} of {}, but this netaug was built without MPI: \
             build it with `cargo build --release -p netaug-cli --features mpi` \
             (see docs/training.md, one run on several machines)",
            launch.by, launch.rank, launch.size
        )
        .into(),
    )
    .into())
}

#[cfg(feature = "mpi")]
pub use mpi_ranks::Guard;

#[cfg(feature = "mpi")]
fn mpi_world(launch: Launch) -> Result<(World, Option<Guard>)> {
    mpi_ranks::join(launch)
}

/// Without MPI there is nothing to keep: no value of this type exists.
#[cfg(not(feature = "mpi"))]
pub enum Guard {}

#[cfg(not(feature = "mpi"))]
impl Guard {
    /// Stops every rank (a build without MPI has none to stop).
    pub fn abort(&self, _code: u8) -> ! {
        match *self {}
    }
}

#[cfg(feature = "mpi")]
mod mpi_ranks {
    use std::sync::{Arc, Mutex};

    use anyhow::{Result, bail};
    use mpi::Threading;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, CommunicatorCollectives, Root};
    use netaug_trainer::{Collective, World};

    use super::Launch;

    /// MPI for as long as it lives; dropping it ends MPI in this process.
    pub struct Guard {
        _universe: mpi::environment::Universe,
        comm: Arc<Mpi>,
    }

    impl Guard {
        /// Stops every rank of the run with exit code `code` (MPI_Abort): what a rank
        /// that fails alone does, so that the others do not wait on it for ever.
        pub fn abort(&self, code: u8) -> ! {
            let comm = self.comm.comm.lock().unwrap_or_else(|p| p.into_inner());
            comm.abort(code.into())
        }
    }

    /// MPI's world communicator. Calls come from one thread at a time (the training
    /// loop's), which the mutex makes certain, as MPI_THREAD_SERIALIZED asks.
    struct Mpi {
        comm: Mutex<SimpleCommunicator>,
        rank: usize,
        size: usize,
    }

    // SAFETY: MPI was initialized with MPI_THREAD_SERIALIZED (or MULTIPLE), under which
    // any thread may call MPI as long as no two do at once; every call goes through the
    // mutex.
    unsafe impl Send for Mpi {}
    // SAFETY: as above.
    unsafe impl Sync for Mpi {}

    pub fn join(launch: Launch) -> Result<(World, Option<Guard>)> {
        let Some((universe, threading)) = mpi::initialize_with_threading(Threading::Serialized)
        else {
            bail!("MPI was already initialized in this process");
        };
        if !matches!(threading, Threading::Serialized | Threading::Multiple) {
            bail!(
                "this MPI library gives thread support {threading:?}; netaug needs \
                 MPI_THREAD_SERIALIZED"
            );
        }
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        if size != launch.size {
            return Err(crate::UsageError(
                format!(
                    "{} started {} processes, but MPI sees {size}: start them with \
                     `srun --mpi=pmix` (or the launcher of the MPI this netaug was built with)",
                    launch.by, launch.size
                )
                .into(),
            )
            .into());
        }
        let comm = Arc::new(Mpi {
            comm: Mutex::new(comm),
            rank,
            size,
        });
        let world = World::new(comm.clone());
        Ok((
            world,
            Some(Guard {
                _universe: universe,
                comm,
            }),
        ))
    }

    impl Mpi {
        fn with<R>(&self, f: impl FnOnce(&SimpleCommunicator) -> R) -> R {
            f(&self.comm.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.rank
        }

        fn size(&self) -> usize {
            self.size
        }

        fn gather(&self, values: &[f32]) -> Vec<f32> {
            self.with(|c| {
                let root = c.process_at_rank(0);
                if self.rank == 0 {
                    let mut all = vec![0f32; values.len() * self.size];
                    root.gather_into_root(values, &mut all[..]);
                    all
                } else {
                    root.gather_into(values);
                    Vec::new()
                }
            })
        }

        fn broadcast(&self, values: &mut [f32]) {
            self.with(|c| c.process_at_rank(0).broadcast_into(values));
        }

        fn all_gather(&self, value: u64) -> Vec<u64> {
            self.with(|c| {
                let mut all = vec![0u64; self.size];
                c.all_gather_into(&value, &mut all[..]);
                all
            })
        }

        fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
            self.with(|c| {
                let root = c.process_at_rank(0);
                let mut len = bytes.len() as u64;
                root.broadcast_into(&mut len);
                bytes.resize(len as usize, 0);
                root.broadcast_into(&mut bytes[..]);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn each_launchers_variables_say_the_rank_and_size() {
        let open_mpi = [("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")];
        assert_eq!(
            launched(env(&open_mpi)),
            Some(Launch {
                rank: 1,
                size: 2,
                by: "mpirun"
            })
        );
        let srun = [("SLURM_PROCID", "3"), ("SLURM_STEP_NUM_TASKS", "4")];
        assert_eq!(launched(env(&srun)).map(|l| (l.rank, l.size)), Some((3, 4)));
        let hydra = [("PMI_RANK", "0"), ("PMI_SIZE", "8")];
        assert_eq!(launched(env(&hydra)).map(|l| l.by), Some("mpiexec"));
    }

    #[test]
    fn one_process_or_a_batch_script_is_not_a_launch() {
        assert_eq!(launched(env(&[])), None);
        let one = [("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "1")];
        assert_eq!(launched(env(&one)), None);
        // An sbatch script with --ntasks=2 runs once; only srun's steps say their size.
        let batch = [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")];
        assert_eq!(launched(env(&batch)), None);
        let garbage = [("OMPI_COMM_WORLD_RANK", "x"), ("OMPI_COMM_WORLD_SIZE", "2")];
        assert_eq!(launched(env(&garbage)), None);
    }
}
