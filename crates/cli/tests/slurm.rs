//! The Slurm executor against a real single-node Slurm (Debian's slurm-wlm and munge,
//! started on localhost by tests/slurm/cluster.sh): a two-stage, 4-run sweep goes through
//! two job arrays, the second after the first (`afterok`), to completion; submitting it
//! again submits nothing; a failed run's dependants are cancelled and the sweep fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, slurm_installed};
use common::{assert_exit, assert_ok, sweep_file, temp};
use netaug_data::fixtures;

#[test]
fn job_arrays_run_a_two_level_sweep_and_cancel_what_a_failure_blocks() {
    if !slurm_installed() {
        // CI installs Slurm (make test); elsewhere the test says why it did not run.
        assert!(
            std::env::var_os("CI").is_none(),
            "Slurm is not installed; `make test` installs slurmctld slurmd slurm-client munge"
        );
        eprintln!(
            "SKIPPED: Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge)"
        );
        return;
    }
    let dir = temp("slurm");
    let cluster = Cluster::start(&dir.join("cluster"));
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 96, 24, false).unwrap();
    let sweep = dir.join("sweep.yaml");
    let base = format!(
        "{{data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}, \
         model: {{name: tinymbv2}}, run: {{epochs: 1, warmup_epochs: 1, base_lr: 0.05}}}}",
        data.display()
    );
    std::fs::write(
        &sweep,
        format!(
            "name: slurm-test
stages:
  - name: pretrain
    base: {base}
    seeds: [0, 1]
  - name: finetune
    base: {base}
    seeds: [0, 1]
    set:
      model.init_from: '@pretrain/exported'
"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let sweep_cmd = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("netaug"));
        c.arg("sweep")
            .arg(&sweep)
            .arg("--out")
            .arg(&out)
            .args(["--executor", "slurm", "--submit"])
            .env("SLURM_CONF", &cluster.conf)
            .current_dir(&dir);
        c
    };

    let mut child = sweep_cmd()
        .arg("--wait")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Slurm sweep did not finish in 900 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = child.wait_with_output().unwrap();
    let logs = || {
        let mut text = String::new();
        for e in std::fs::read_dir(out.join("slurm/logs"))
            .into_iter()
            .flatten()
        {
            let p = e.unwrap().path();
            text += &format!(
                "--- {}\n{}",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            );
        }
        text
    };
    assert!(
        result.status.success(),
        "sweep: {}\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr),
        logs()
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("level 0: job "), "{stdout}");
    assert!(stdout.contains("level 1: job "), "{stdout}");
    assert!(stdout.contains("4 done, 0 failed"), "{stdout}");

    // Level 0 holds the pretrain runs (indices 0, 1), level 1 the finetune runs after them.
    let level0 = std::fs::read_to_string(out.join("slurm/level-0.sbatch")).unwrap();
    let level1 = std::fs::read_to_string(out.join("slurm/level-1.sbatch")).unwrap();
    assert!(level0.contains("#SBATCH --array=0,1\n"), "{level0}");
    assert!(level1.contains("#SBATCH --array=2,3\n"), "{level1}");
    // One Slurm log per array task, each saying its run is done.
    let all = logs();
    assert_eq!(all.matches("--- ").count(), 4, "{all}");
    assert_eq!(all.matches(": done").count(), 4, "{all}");

    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    let finished = |id: &str| {
        let run = out.join("runs").join(id);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["status"], "done", "{id}");
        std::fs::metadata(run.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    for r in runs {
        finished(r["id"].as_str().unwrap());
    }
    // A finetune run started from its pretrain run's exported net, which existed only
    // because the pretrain array had finished.
    for r in &runs[2..] {
        let config = r["config"].as_str().unwrap();
        let dep = runs[r["deps"][0].as_u64().unwrap() as usize]["id"]
            .as_str()
            .unwrap();
        assert!(config.contains(&format!("{dep}/exported")), "{config}");
    }

    // Everything is done: a second submission submits nothing.
    let again = sweep_cmd().output().unwrap();
    assert_ok(&again, "second submission");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("nothing to submit"), "{text}");

    // A run that fails: the job after it can never start; --wait cancels it and fails.
    let failing = dir.join("failing.yaml");
    std::fs::write(
        &failing,
        std::fs::read_to_string(&sweep)
            .unwrap()
            .replace("name: slurm-test", "name: slurm-fail")
            .replace(&data.display().to_string(), "/nonexistent/fashion-mnist")
            .replace("seeds: [0, 1]", "seeds: [0]"),
    )
    .unwrap();
    let o = Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(&failing)
        .arg("--out")
        .arg(dir.join("failing"))
        .args(["--executor", "slurm", "--submit", "--wait"])
        .env("SLURM_CONF", &cluster.conf)
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = assert_exit(&o, 1, "a sweep whose dependency failed");
    assert!(
        err.contains("cancelling jobs whose dependencies failed"),
        "{err}"
    );
    assert!(err.contains("2 runs failed"), "{err}");
    assert!(
        err.contains("its job ended before the run finished"),
        "{err}"
    );
    assert!(err.contains("never started: a dependency failed"), "{err}");
    let queue = Command::new("squeue")
        .args(["-h", "-o", "%i %j"])
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&queue.stdout).contains("slurm-fail"),
        "jobs left in the queue: {}",
        String::from_utf8_lossy(&queue.stdout)
    );
}

/// Every task log of a Slurm sweep in `out`, one after the other.
fn task_logs(out: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(out.join("slurm/logs"))
        .into_iter()
        .flatten()
    {
        let p = e.unwrap().path();
        let log = std::fs::read_to_string(&p).unwrap_or_default();
        text += &format!("--- {}\n{log}", p.display());
    }
    text
}

/// A run's metrics lines without their timings.
fn metrics_without_timings(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("images_per_second");
            v
        })
        .collect()
}

/// The one run folder of a one-run sweep in `out`.
fn only_run(out: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// How many epochs of the test sweep's run take about `seconds` on this machine, timed
/// on a 40-epoch run (the first epoch, which loads the data, left out).
fn epochs_lasting(dir: &Path, data: &Path, seconds: f64) -> usize {
    let sweep = sweep_file(dir, data, "timing", (40, "0.05"), "[0]");
    let out = dir.join("timing");
    let o = Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o, "the timing run");
    let per_epoch: Vec<f64> = std::fs::read_to_string(only_run(&out).join("metrics.jsonl"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seconds"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let mean = per_epoch.iter().sum::<f64>() / per_epoch.len() as f64;
    let epochs = ((seconds / mean).ceil() as usize).clamp(100, 5000);
    eprintln!("{epochs} epochs of {mean:.3} s for a {seconds} s run");
    epochs
}

#[test]
fn time_limits_requeue_killed_tasks_retry_and_max_running_caps_an_array() {
    if !slurm_installed() {
        assert!(std::env::var_os("CI").is_none(), "Slurm is not installed");
        eprintln!("SKIPPED: Slurm is not installed");
        return;
    }
    let dir = temp("slurm-requeue");
    let cluster = Cluster::start(&dir.join("cluster"));
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 96, 24, false).unwrap();
    let slurm = |sweep: &Path, out: &Path, extra: &[&str]| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("netaug"));
        c.arg("sweep")
            .arg(sweep)
            .arg("--out")
            .arg(out)
            .args(["--executor", "slurm", "--submit", "--wait"])
            .args(extra)
            .env("SLURM_CONF", &cluster.conf)
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let finish = |child: std::process::Child, out: &Path| {
        let o = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "{stdout}\n{stderr}\n{}", task_logs(out));
        stdout
    };

    // --max-running 1: `%1` on the array; Slurm never runs two of its tasks at once.
    let sweep = sweep_file(&dir, &data, "capped", (2, "0.05"), "[0, 1, 2]");
    let out = dir.join("capped");
    let child = slurm(&sweep, &out, &["--max-running", "1"])
        .spawn()
        .unwrap();
    let mut most = 0;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        let q = Command::new("squeue")
            .args(["-h", "-t", "RUNNING", "-o", "%i"])
            .env("SLURM_CONF", &cluster.conf)
            .output()
            .unwrap();
        most = most.max(String::from_utf8_lossy(&q.stdout).lines().count());
        std::thread::sleep(Duration::from_millis(100));
    }
    let stdout = finish(child, &out);
    assert!(stdout.contains("3 done, 0 failed"), "{stdout}");
    assert_eq!(most, 1, "tasks running at once");
    let script = std::fs::read_to_string(out.join("slurm/level-0.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0,1,2%1\n"), "{script}");

    // The run's process SIGKILLed once (a node's out-of-memory killer, say): the task
    // starts it again (--retries 1) and it finishes.
    let sweep = sweep_file(&dir, &data, "killed", (6, "0.05"), "[0]");
    let out = dir.join("killed");
    let child = slurm(&sweep, &out, &["--retries", "1"]).spawn().unwrap();
    let lock = |out: &Path| {
        std::fs::read_dir(out.join("runs"))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path().join(".run.lock"))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let pid = loop {
        assert!(Instant::now() < deadline, "the run never started");
        if let Some(pid) = lock(&out) {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) of the pid in the run's lock file, alive above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let stdout = finish(child, &out);
    assert!(stdout.contains("1 done, 0 failed"), "{stdout}");
    assert!(task_logs(&out).contains("retry 1/1"), "{}", task_logs(&out));

    // A job whose time limit (2 minutes) is shorter than its run: Slurm signals it 35 s
    // early, the run stops after its step, the task requeues itself and resumes, until
    // the run is done; its metrics equal an unbroken run's, timings aside. (slurmctld
    // looks at time limits every 30 s and signals a job once its end is within the grace
    // plus those 30 s: here 55-85 s after it starts. A 1-minute limit would signal it at
    // the first look, 0-30 s after it starts: on a busy machine most attempts would then
    // end before their first epoch.) The run must outlast 85 s on any machine, so its
    // length comes from this machine's speed: a short run is timed first and the long one
    // is sized to take about 150 s.
    let epochs = epochs_lasting(&dir, &data, 150.0);
    let sweep = sweep_file(&dir, &data, "limited", (epochs, "0.05"), "[0]");
    let unbroken = dir.join("unbroken");
    let o = Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&unbroken)
        .output()
        .unwrap();
    assert_ok(&o, "the unbroken run");
    let out = dir.join("limited");
    let args = [
        "--sbatch=--time=2",
        "--grace",
        "35",
        "--requeue-limit",
        "20",
    ];
    let child = slurm(&sweep, &out, &args).spawn().unwrap();
    let stdout = finish(child, &out);
    assert!(stdout.contains("1 done, 0 failed"), "{stdout}");
    let logs = task_logs(&out);
    assert!(logs.contains("requeueing"), "never requeued: {logs}");
    assert_eq!(
        metrics_without_timings(&only_run(&out)),
        metrics_without_timings(&only_run(&unbroken))
    );
    drop(cluster);
}

#[test]
fn successive_halving_runs_in_rounds_each_decided_by_a_driver_job() {
    if !slurm_installed() {
        assert!(std::env::var_os("CI").is_none(), "Slurm is not installed");
        eprintln!("SKIPPED: Slurm is not installed");
        return;
    }
    let dir = temp("slurm-halving");
    let cluster = Cluster::start(&dir.join("cluster"));
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 96, 24, false).unwrap();
    let sweep = dir.join("halving.yaml");
    std::fs::write(
        &sweep,
        format!(
            "name: slurm-halving
base:
  data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}
  model: {{name: tinymbv2}}
  run: {{epochs: 2, warmup_epochs: 1, base_lr: 0.05}}
grid:
  run.base_lr: [0.01, 0.05, 0.2]
seeds: [0, 1]
halving: {{rungs: [1], keep: 1/3, floor: 0}}
",
            data.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let sweep_cmd = |extra: &[&str]| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("netaug"));
        c.arg("sweep")
            .arg(&sweep)
            .arg("--out")
            .arg(&out)
            .args(["--executor", "slurm", "--submit", "--sbatch=--time=10"])
            .args(extra)
            .env("SLURM_CONF", &cluster.conf)
            .current_dir(&dir);
        c
    };
    // Cancelled mid-rung (a trial paused, others training), then submitted again: it
    // continues from the folders and the ledger.
    assert_ok(&sweep_cmd(&[]).output().unwrap(), "first submission");
    let paused = || {
        std::fs::read_dir(out.join("runs"))
            .into_iter()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.unwrap().path().join("summary.json"))
                    .is_ok_and(|t| t.contains("\"paused\""))
            })
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while !paused() {
        assert!(
            Instant::now() < deadline,
            "no trial paused: {}",
            task_logs(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancel = Command::new("scancel")
        .args(["--name", "netaug-slurm-halving-halving"])
        .env("SLURM_CONF", &cluster.conf)
        .status()
        .unwrap();
    assert!(cancel.success());
    // Gone from the queue (and their processes with them) before the next submission.
    let queued = || {
        let q = Command::new("squeue")
            .args(["-h", "--name", "netaug-slurm-halving-halving"])
            .env("SLURM_CONF", &cluster.conf)
            .output()
            .unwrap();
        !String::from_utf8_lossy(&q.stdout).trim().is_empty()
    };
    while queued() {
        assert!(
            Instant::now() < deadline,
            "cancelled jobs stay in the queue"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = sweep_cmd(&["--wait"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        task_logs(&out)
    );
    assert!(
        stdout.contains("2 done, 0 failed, 4 stopped by halving"),
        "{stdout}"
    );
    // Round 0 trained all six towards the rung; after the cancel, the next rounds trained
    // what was missing, and a promoted rate (both seeds) to the end.
    let round0 = std::fs::read_to_string(out.join("slurm/round-0.sbatch")).unwrap();
    assert_eq!(round0.matches("\n#   ").count(), 6, "{round0}");
    let mut statuses = Vec::new();
    for e in std::fs::read_dir(out.join("runs")).unwrap() {
        let run = e.unwrap().path();
        let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
        let status: serde_json::Value = serde_json::from_str(&summary).unwrap();
        statuses.push(status["status"].as_str().unwrap().to_string());
        // No epoch trained twice: one line per epoch ended in the run's log.
        let log = std::fs::read_to_string(run.join("train.log")).unwrap();
        for k in 1..=3 {
            let n = log.matches(&format!("epoch {k}/3:")).count();
            assert!(
                n <= 1,
                "{}: epoch {k} trained {n} times\n{log}",
                run.display()
            );
        }
    }
    statuses.sort();
    let want = ["done", "done", "stopped", "stopped", "stopped", "stopped"];
    assert_eq!(statuses, want);
    let driver = std::fs::read_to_string(out.join("slurm/halving-0.sbatch")).unwrap();
    assert!(driver.contains("--halving-round"), "{driver}");
    assert!(driver.contains("'--sbatch=--time=10'"), "{driver}");
    let logs = task_logs(&out);
    assert!(logs.contains("no run is left to train"), "{logs}");
    // The same sweep again: every decision stands, nothing is submitted.
    let again = sweep_cmd(&[]).output().unwrap();
    assert_ok(&again, "the finished halving sweep again");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("no run is left to train (2 done, 4 stopped"),
        "{text}"
    );
    drop(cluster);
}
