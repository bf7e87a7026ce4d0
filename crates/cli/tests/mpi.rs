//! One run over two processes under `mpirun -np 2` (Open MPI, this machine): it trains the
//! bits of one process with two replicas, twice alike; paused, it resumes on two ranks and
//! on one process; a bad split is refused on every rank; a rank killed with SIGKILL ends
//! the run with nothing torn, and `--resume` finishes it; a 2-task Slurm job (`srun
//! --mpi=pmix`) trains the run mpirun trains; `netaug sweep --ranks 2` trains its runs
//! that way, locally and as Slurm job arrays.
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, slurm_installed};
use common::{assert_exit, assert_ok, run_config, sweep_file, temp};
use netaug_data::fixtures;
use serde_json::Value;

const NETAUG: &str = "netaug: {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8], stop_aug_w_epoch: 2, bn_recal_images: 32}";

fn mpirun_installed() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the test can run; under CI it must.
fn ready() -> bool {
    if mpirun_installed() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "mpirun is not installed; `make test` installs openmpi-bin"
    );
    eprintln!("SKIPPED: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)");
    false
}

/// `mpirun -np <np> netaug train CONFIG --out OUT EXTRA...`, one thread per rank.
fn mpirun(np: usize, config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    // Root in a container: Open MPI refuses root without these; more ranks than cores
    // is fine for a test; shared memory without the ptrace-based single copy.
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
    .args(["-np", &np.to_string()])
    .arg(env!("CARGO_BIN_EXE_netaug"))
    .arg("train")
    .arg(config)
    .arg("--out")
    .arg(out)
    .args(extra)
    .env("RAYON_NUM_THREADS", "1");
    c
}

/// One process: `netaug train CONFIG --out OUT EXTRA...` with `threads` threads.
fn alone(threads: usize, config: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netaug"))
        .arg("train")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .unwrap()
}

/// A JSON-lines file's lines without their timing fields.
fn lines(run: &Path, file: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join(file))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            for key in ["seconds", "images_per_second", "wall_time"] {
                o.remove(key);
            }
            v
        })
        .collect()
}

fn status(run: &Path) -> String {
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    s["status"].as_str().unwrap().to_string()
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn two_ranks_train_the_bits_of_one_process_with_two_replicas_and_resume_on_either() {
    if !ready() {
        return;
    }
    let dir = temp("mpi-bits");
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 64, 24, false).unwrap();
    let config = run_config(
        &dir,
        &data,
        "epochs: 3, warmup_epochs: 1, base_lr: 0.05, seed: 3, log_every: 1",
        NETAUG,
    );

    let ranks = dir.join("ranks");
    let out = mpirun(2, &config, &ranks, &[]).output().unwrap();
    assert_ok(&out, "mpirun -np 2");
    assert_eq!(status(&ranks), "done");
    // Rank 0 alone printed the result line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let replicas = dir.join("replicas");
    let out = alone(2, &config, &replicas, &["--set", "run.replicas=2"]);
    assert_ok(&out, "one process, 2 replicas");
    assert_eq!(
        lines(&ranks, "metrics.jsonl"),
        lines(&replicas, "metrics.jsonl")
    );
    assert_eq!(
        lines(&ranks, "steps.jsonl"),
        lines(&replicas, "steps.jsonl")
    );
    assert_eq!(lines(&ranks, "metrics.jsonl").len(), 4);
    // The same files as one process's run: the other rank wrote nothing there.
    assert_eq!(names(&ranks), names(&replicas));
    assert_eq!(
        names(&ranks.join("checkpoints")),
        names(&replicas.join("checkpoints"))
    );

    let again = dir.join("again");
    assert_ok(&mpirun(2, &config, &again, &[]).output().unwrap(), "again");
    assert_eq!(
        lines(&ranks, "metrics.jsonl"),
        lines(&again, "metrics.jsonl")
    );

    // Paused after epoch 2 (NetAug still on), resumed on 2 ranks and on one process.
    for (name, on_ranks) in [("resumed-ranks", true), ("resumed-alone", false)] {
        let cut = dir.join(name);
        let out = mpirun(2, &config, &cut, &["--pause-at", "2"])
            .output()
            .unwrap();
        assert_ok(&out, "paused");
        assert_eq!(status(&cut), "paused");
        let out = if on_ranks {
            mpirun(2, &config, &cut, &["--resume"]).output().unwrap()
        } else {
            alone(2, &config, &cut, &["--resume", "--set", "run.replicas=2"])
        };
        assert_ok(&out, name);
        assert_eq!(status(&cut), "done", "{name}");
        assert_eq!(
            lines(&ranks, "metrics.jsonl"),
            lines(&cut, "metrics.jsonl"),
            "{name}"
        );
    }
}

#[test]
fn a_batch_the_ranks_cannot_share_evenly_is_refused_on_every_rank() {
    if !ready() {
        return;
    }
    let dir = temp("mpi-split");
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 64, 24, false).unwrap();
    let config = run_config(&dir, &data, "epochs: 1, warmup_epochs: 0", "");
    let run = dir.join("run");
    let out = mpirun(3, &config, &run, &[]).output().unwrap();
    let err = assert_exit(&out, 2, "16 images over 3 ranks");
    assert!(err.contains("data.batch_size"), "{err}");
    assert!(err.contains("3 ranks"), "{err}");
    assert!(!run.exists(), "a refused run leaves no folder");
}

/// The process ids of the ranks of the run writing `out`, found through their command
/// lines and Open MPI's rank variable: (rank, pid).
fn ranks_of(out: &Path) -> Vec<(usize, u32)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.starts_with(env!("CARGO_BIN_EXE_netaug"))
            || !cmdline.contains(&*out.to_string_lossy())
        {
            continue;
        }
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let rank = environ
            .split(|&b| b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("OMPI_COMM_WORLD_RANK="))
            .and_then(|r| r.parse().ok());
        if let Some(rank) = rank {
            found.push((rank, pid));
        }
    }
    found.sort();
    found
}

#[test]
fn a_rank_killed_ends_the_run_with_nothing_torn_and_resume_finishes_it() {
    if !ready() {
        return;
    }
    let dir = temp("mpi-kill");
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 64, 24, false).unwrap();
    let config = run_config(
        &dir,
        &data,
        "epochs: 30, warmup_epochs: 1, base_lr: 0.05, seed: 3",
        "",
    );
    let run = dir.join("run");
    let child = mpirun(2, &config, &run, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join("checkpoints/latest").exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranks = ranks_of(&run);
    let (_, pid) = *ranks
        .iter()
        .find(|(r, _)| *r == 1)
        .unwrap_or_else(|| panic!("rank 1 among {ranks:?}"));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run goes down with its rank");
    assert!(
        err.contains("rank 1") || err.contains("[[") && err.contains(",1]"),
        "names the rank: {err}"
    );
    assert!(ranks_of(&run).is_empty(), "no rank is left running");
    // Nothing torn: the metrics parse and the run resumes from its last checkpoint.
    let done_before = lines(&run, "metrics.jsonl").len();
    assert!(done_before >= 1);
    let out = mpirun(2, &config, &run, &["--resume"]).output().unwrap();
    assert_ok(&out, "resume");
    assert_eq!(status(&run), "done");
    assert_eq!(lines(&run, "metrics.jsonl").len(), 31);
}

#[test]
fn a_two_task_slurm_job_trains_the_run_mpirun_trains() {
    if !ready() {
        return;
    }
    if !slurm_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Slurm is not installed; `make test` installs slurmctld slurmd slurm-client munge"
        );
        eprintln!("SKIPPED: Slurm is not installed");
        return;
    }
    let dir = temp("mpi-slurm");
    let cluster = Cluster::start(&dir.join("cluster"));
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 64, 24, false).unwrap();
    let config = run_config(
        &dir,
        &data,
        "epochs: 2, warmup_epochs: 1, base_lr: 0.05, seed: 5",
        NETAUG,
    );
    let reference = dir.join("mpirun");
    assert_ok(
        &mpirun(2, &config, &reference, &[]).output().unwrap(),
        "mpirun",
    );

    // What docs/training.md tells a cluster user to submit.
    let run = dir.join("slurm");
    let log = dir.join("job.out");
    let script = dir.join("job.sbatch");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             #SBATCH --ntasks=2\n\
             #SBATCH --cpus-per-task=1\n\
             #SBATCH --output={log}\n\
             export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK\n\
             srun --mpi=pmix {bin} train {config} --out {run}\n",
            log = log.display(),
            bin = env!("CARGO_BIN_EXE_netaug"),
            config = config.display(),
            run = run.display(),
        ),
    )
    .unwrap();
    let out = Command::new("sbatch")
        .arg("--wait")
        .arg(&script)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_ok(&out, &format!("sbatch --wait; the job's log:\n{text}"));
    assert_eq!(status(&run), "done", "{text}");
    assert_eq!(
        text.matches("final val top-1").count(),
        1,
        "one result line: {text}"
    );
    assert_eq!(
        lines(&run, "metrics.jsonl"),
        lines(&reference, "metrics.jsonl")
    );

    // A sweep whose runs train on 2 ranks: a job of 2 tasks per run, started by srun.
    let file = sweep_file(&dir, &data, "ranks", (1, "0.05"), "[0, 1]");
    let out = sweep(
        &file,
        &dir.join("swept"),
        &["--executor", "slurm", "--submit", "--wait"],
    )
    .env("SLURM_CONF", &cluster.conf)
    .current_dir(&dir)
    .output()
    .unwrap();
    assert_ok(&out, "sweep --executor slurm --ranks 2");
    let script = std::fs::read_to_string(dir.join("swept/slurm/level-0.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --ntasks-per-node=2\n"), "{script}");
    for run in runs_of(&dir.join("swept")) {
        assert_eq!(status(&run), "done");
        assert_eq!(
            lines(&run, "metrics.jsonl"),
            replicas_of(&run, &dir),
            "{}",
            run.display()
        );
    }
}

/// `netaug sweep FILE --out OUT --ranks 2 EXTRA...`.
fn sweep(file: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netaug"));
    c.arg("sweep")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--ranks", "2"])
        .args(extra)
        // What mpirun needs as root (containers); srun ignores it.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c
}

/// The run folders of a sweep's results folder.
fn runs_of(out: &Path) -> Vec<std::path::PathBuf> {
    let mut runs: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    assert!(!runs.is_empty(), "{}", out.display());
    runs
}

/// The metrics of a sweep run's config trained by one process on 2 replicas.
fn replicas_of(run: &Path, dir: &Path) -> Vec<Value> {
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    let reference = dir.join(format!("replicas-{name}"));
    let out = alone(
        2,
        &run.join("config.yaml"),
        &reference,
        &["--set", "run.replicas=2"],
    );
    assert_ok(&out, "one process, 2 replicas");
    lines(&reference, "metrics.jsonl")
}

#[test]
fn a_local_sweep_trains_each_run_over_two_ranks() {
    if !ready() {
        return;
    }
    let dir = temp("mpi-sweep");
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 64, 24, false).unwrap();
    let file = sweep_file(&dir, &data, "ranks", (1, "0.05"), "[0, 1]");
    let out = dir.join("swept");
    let done = sweep(&file, &out, &["--jobs", "1"]).output().unwrap();
    assert_ok(&done, "sweep --ranks 2");
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(text.contains("2 done, 0 failed"), "{text}");
    for run in runs_of(&out) {
        assert_eq!(status(&run), "done");
        assert_eq!(
            lines(&run, "metrics.jsonl"),
            replicas_of(&run, &dir),
            "{}",
            run.display()
        );
    }
    // Two runs at once of 2 ranks each would need 4 cores of this machine's 2.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 4 {
        let refused = sweep(&file, &dir.join("wide"), &["--jobs", "2"])
            .output()
            .unwrap();
        let err = assert_exit(&refused, 2, "--jobs 2 x --ranks 2");
        assert!(err.contains("--ranks 2"), "{err}");
    }
}
