//! A real single-node Slurm (Debian's slurm-wlm and munge) on localhost, started by
//! tests/slurm/cluster.sh, for the tests that submit jobs.
#![allow(dead_code)] // not every test file submits jobs

use std::path::{Path, PathBuf};
use std::process::Command;

use super::assert_ok;

/// The cluster of one test; stopped on drop, also when the test fails.
pub struct Cluster {
    dir: PathBuf,
    /// The cluster's slurm.conf, for `SLURM_CONF`.
    pub conf: String,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/cluster.sh")
    }

    /// Starts a cluster whose files live in `dir`.
    pub fn start(dir: &Path) -> Self {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert_ok(&out, "starting the Slurm cluster");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .expect("cluster.sh prints SLURM_CONF")
            .to_string();
        Self {
            dir: dir.to_path_buf(),
            conf,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// Whether Slurm's daemons and clients are installed.
pub fn slurm_installed() -> bool {
    ["slurmctld", "slurmd", "munged", "sbatch"].iter().all(|b| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
