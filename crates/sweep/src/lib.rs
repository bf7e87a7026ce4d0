//! netaug-sweep: YAML grid expansion, stable run ids, the local parallel executor, Slurm
//! job arrays, resume and locking.
//!
//! Nothing here yet: the sweeps issue builds it.
