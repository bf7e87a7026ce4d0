//! `netaug sweep` on a Fashion-MNIST fixture: a grid of 4 runs, the dry-run table, a
//! results folder holding another sweep's runs refused, and a sweep killed mid-way whose
//! restart redoes nothing finished and ends like an uninterrupted one; every sweep file in
//! experiments/ plans (stage references included).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TempDir, assert_exit, assert_ok, netaug, sweep_file, temp};
use netaug_data::fixtures;

fn setup(name: &str) -> (TempDir, PathBuf) {
    let dir = temp(name);
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 96, 24, false).unwrap();
    let sweep = dir.join("sweep.yaml");
    std::fs::write(
        &sweep,
        format!(
            "name: fm
base:
  data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}
  model: {{name: tinymbv2}}
  run: {{epochs: 1, warmup_epochs: 1, base_lr: 0.05}}
grid:
  netaug: [null, {{aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8], bn_recal_images: 32}}]
seeds: [0, 1]
",
            data.display()
        ),
    )
    .unwrap();
    (dir, sweep)
}

fn summaries(out: &Path) -> Vec<(String, serde_json::Value)> {
    let Ok(dirs) = std::fs::read_dir(out.join("runs")) else {
        return Vec::new();
    };
    let mut v: Vec<(String, serde_json::Value)> = dirs
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .map(|p| {
            let mut s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("summary.json")).unwrap())
                    .unwrap();
            let o = s.as_object_mut().unwrap();
            o.remove("wall_seconds");
            o.remove("images_per_second");
            (p.file_name().unwrap().to_string_lossy().into_owned(), s)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn every_shipped_sweep_file_plans() {
    let dir = temp("sweep-shipped");
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&experiments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let out = dry_run(&dir.join("out"), &file);
        assert_ok(&out, &file.display().to_string());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("sweep "), "{}: {text}", file.display());
    }
}

#[test]
fn dry_run_prints_the_run_table() {
    let (dir, sweep) = setup("sweep-dry");
    let out = dry_run(&dir.join("out"), &sweep);
    assert_ok(&out, "dry run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("sweep fm: 4 runs"), "{text}");
    assert!(text.contains("netaug=off run.seed=0"), "{text}");
    assert!(!dir.join("out").exists(), "a dry run wrote files");

    // Into a pipe nobody reads (`| head` that has exited): ends quietly by SIGPIPE, as
    // Unix tools do; it used to panic in println! (exit 101).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .args(["sweep", "--dry-run", "--out"])
        .arg(dir.join("out"))
        .arg(&sweep)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(13), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_folder_with_runs_of_a_changed_sweep_is_refused() {
    let (dir, sweep) = setup("sweep-changed");
    let out = dir.join("out");
    // A run folder left by an earlier version of the sweep (another learning rate).
    let stale = out.join("runs/no-netaug-lr0.2-s0-0123abcd");
    std::fs::create_dir_all(&stale).unwrap();
    let o = run_sweep(&sweep, &out, &[]);
    let err = assert_exit(&o, 2, "a sweep over a changed sweep's runs");
    assert!(
        err.contains("no-netaug-lr0.2-s0-0123abcd") && err.contains("--force"),
        "{err}"
    );
    // Refused before anything was written or trained.
    assert!(!out.join("plan.json").exists());
    assert_eq!(std::fs::read_dir(out.join("runs")).unwrap().count(), 1);
}

#[test]
fn a_killed_sweep_restarts_without_redoing_finished_runs() {
    let (dir, sweep) = setup("sweep-kill");
    let reference = dir.join("reference");
    let out = run_sweep(&sweep, &reference, &[]);
    assert_ok(&out, "uninterrupted sweep");
    let expected = summaries(&reference);
    assert_eq!(expected.len(), 4);
    assert!(expected.iter().all(|(_, s)| s["status"] == "done"));
    assert!(reference.join("plan.json").is_file() && reference.join("sweep.yaml").is_file());
    // The lock is released (its file stays; the kernel lock went with the process).
    drop(netaug_sweep::lock::Lock::acquire(&reference).expect("the lock is released"));

    let killed = dir.join("killed");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while summaries(&killed).is_empty() {
        assert!(Instant::now() < deadline, "no run finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = summaries(&killed);
    assert!(first.len() < 4, "the sweep finished before the kill");
    let stamp = |id: &str| {
        std::fs::metadata(killed.join("runs").join(id).join("summary.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = first.iter().map(|(id, _)| stamp(id)).collect();

    let out = run_sweep(&sweep, &killed, &[]);
    assert_ok(&out, "restarted sweep");
    for ((id, _), t) in first.iter().zip(before) {
        assert_eq!(stamp(id), t, "{id} was redone");
    }
    assert_eq!(summaries(&killed), expected);
}

#[test]
fn slurm_scripts_without_submitting_and_bad_requests_refused() {
    let (dir, sweep) = setup("sweep-slurm-write");
    let out = dir.join("out");
    let run = |args: &[&str]| {
        netaug()
            .arg("sweep")
            .arg(&sweep)
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap()
    };
    // Without --submit: the scripts and submit.sh are written, nothing runs.
    let o = run(&["--executor", "slurm", "--sbatch=--partition=debug"]);
    assert_ok(&o, "writing the scripts");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("level 0: 4 runs"), "{text}");
    assert!(text.contains("submit them with: bash"), "{text}");
    let script = std::fs::read_to_string(out.join("slurm/level-0.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0,1,2,3\n"), "{script}");
    assert!(script.contains("#SBATCH --partition=debug\n"), "{script}");
    assert!(out.join("slurm/submit.sh").is_file());
    assert!(!out.join("runs").exists(), "a run started");

    let refused = |args: &[&str], says: &str| {
        let o = run(args);
        let err = assert_exit(&o, 2, &format!("{args:?}"));
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(
        &["--run-index", "9"],
        "run index 9 is out of range: the sweep has 4 runs",
    );
    refused(&["--submit"], "--submit and --sbatch need --executor slurm");
    // Replicas and jobs share the cores: more than there are is refused before anything
    // is written, unless asked for.
    std::fs::remove_dir_all(&out).unwrap();
    refused(
        &["--jobs", "100000", "--set", "run.replicas=2"],
        "--jobs 100000 x 2 replicas (run ",
    );
    assert!(!out.exists(), "a refused sweep wrote its folder");
    // A sweep file that is not there is bad input, as for train.
    let o = netaug()
        .arg("sweep")
        .arg(dir.join("nope.yaml"))
        .output()
        .unwrap();
    let err = assert_exit(&o, 2, "a missing sweep file");
    assert!(err.contains("nope.yaml: No such file"), "{err}");
    // A sweep file saved with a UTF-8 byte-order mark plans.
    let bom = dir.join("bom.yaml");
    let text = std::fs::read_to_string(&sweep).unwrap();
    std::fs::write(&bom, format!("\u{feff}{text}")).unwrap();
    let o = netaug()
        .arg("sweep")
        .arg(&bom)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_ok(&o, "a sweep file with a byte-order mark");
    refused(
        &["--set", "teacher:run.epochs=2", "--dry-run"],
        "no stage named \"teacher\"",
    );
}

/// `netaug sweep --dry-run` of `sweep` into `out`.
/// `netaug sweep SWEEP --out OUT ARGS...`, run to its end.
fn run_sweep(sweep: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    netaug()
        .arg("sweep")
        .arg(sweep)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn dry_run(out: &Path, sweep: &Path) -> std::process::Output {
    netaug()
        .args(["sweep", "--dry-run", "--out"])
        .arg(out)
        .arg(sweep)
        .output()
        .unwrap()
}

/// A one-run sweep of `epochs` epochs at `lr`, into `dir`.
fn one_run(dir: &Path, epochs: usize, lr: &str) -> PathBuf {
    let data = dir.join("fm");
    if !data.exists() {
        fixtures::fashion_mnist(&data, 192, 24, false).unwrap();
    }
    sweep_file(dir, &data, &format!("one-{lr}"), (epochs, lr), "[0]")
}

/// The pid in the run's lock file once a `netaug train` other than `not` holds it.
fn train_pid(out: &Path, not: Option<u32>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no run started in {}",
            out.display()
        );
        let lock = std::fs::read_dir(out.join("runs"))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path().join(".run.lock"))
            .find(|p| p.is_file());
        if let Some(pid) = lock
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|pid| Some(*pid) != not && Path::new(&format!("/proc/{pid}")).exists())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `netaug sweep SWEEP --out OUT ARGS`, SIGKILLs the run's process `kills` times
/// (each a new attempt), and returns the sweep's output.
fn sweep_killing(sweep: &Path, out: &Path, args: &[&str], kills: usize) -> std::process::Output {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(sweep)
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last = None;
    for _ in 0..kills {
        let pid = train_pid(out, last);
        // SAFETY: kill(2) of a pid read from the run's lock file, checked alive above.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
        last = Some(pid);
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_run_killed_from_outside_is_retried_up_to_n_times_and_a_diverged_one_never() {
    let dir = temp("sweep-retries");
    let sweep = one_run(&dir, 3, "0.05");
    let out = dir.join("out");
    // Killed twice with one retry: the retry is used up, the run fails.
    let twice = sweep_killing(&sweep, &out, &["--retries", "1"], 2);
    let stdout = String::from_utf8_lossy(&twice.stdout);
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert_eq!(twice.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("0 done, 1 failed, 1 retried"), "{stdout}");
    assert!(stderr.contains("retry 1/1"), "{stderr}");
    // Started again (it resumes from its checkpoint) and killed once: retried, done.
    let once = sweep_killing(&sweep, &out, &["--retries", "1"], 1);
    let stdout = String::from_utf8_lossy(&once.stdout);
    assert_ok(&once, "a sweep whose run was killed once, with one retry");
    assert!(stdout.contains("1 done, 0 failed, 1 retried"), "{stdout}");
    let s = summaries(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].1["status"], "done");
    assert_eq!(s[0].1["epochs"], 4, "3 epochs after 1 of warm-up");

    // Diverged: the loss goes to NaN; three retries are not spent on it.
    let sweep = one_run(&dir, 2, "1.0e12");
    let out = dir.join("diverged");
    let o = netaug()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&out)
        .args(["--retries", "3"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("0 done, 1 failed;"), "{stdout}");
    assert!(
        stderr.contains("diverged") && !stderr.contains("retry"),
        "{stderr}"
    );
}

/// A halving sweep over three rates and two seeds (1 + 2 epochs, paused after the
/// warm-up epoch, the best third of the rates kept) on the fixture in `dir`.
fn halving_sweep(dir: &Path, mode: &str) -> PathBuf {
    let data = dir.join("fm");
    if !data.exists() {
        fixtures::fashion_mnist(&data, 96, 24, false).unwrap();
    }
    let path = dir.join(format!("halving-{mode}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: halving
base:
  data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}
  model: {{name: tinymbv2}}
  run: {{epochs: 2, warmup_epochs: 1, base_lr: 0.05}}
grid:
  run.base_lr: [0.01, 0.05, 0.2]
seeds: [0, 1]
halving: {{rungs: [1], keep: 1/3, mode: {mode}, floor: 0}}
",
            data.display()
        ),
    )
    .unwrap();
    path
}

/// `netaug sweep SWEEP --out OUT`, to its end.
fn sweep_to_end(sweep: &Path, out: &Path) -> String {
    let o = run_sweep(sweep, out, &[]);
    assert_ok(&o, "halving sweep");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// How often each epoch was trained, from a run's train.log (one line per epoch ended).
fn epochs_trained(run: &Path) -> Vec<usize> {
    let log = std::fs::read_to_string(run.join("train.log")).unwrap_or_default();
    let mut counts = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("epoch ")
            && let Some((k, _)) = rest.split_once('/')
            && let Ok(k) = k.parse::<usize>()
        {
            counts.resize(counts.len().max(k), 0);
            counts[k - 1] += 1;
        }
    }
    counts
}

#[test]
fn halving_promotes_the_best_rate_the_same_way_twice_and_a_killed_sweep_continues() {
    let dir = temp("sweep-halving");
    let sweep = halving_sweep(&dir, "sync");
    let reference = dir.join("reference");
    let stdout = sweep_to_end(&sweep, &reference);
    assert!(
        stdout.contains("2 done, 0 failed, 4 stopped by halving"),
        "{stdout}"
    );
    let expected = summaries(&reference);
    let status = |s: &[(String, serde_json::Value)], st: &str| {
        s.iter().filter(|(_, v)| v["status"] == st).count()
    };
    assert_eq!(
        (status(&expected, "done"), status(&expected, "stopped")),
        (2, 4)
    );
    // Both seeds of one rate go on; the stopped ones end at the rung, with their reason.
    let done: Vec<&serde_json::Value> = expected
        .iter()
        .filter(|(_, v)| v["status"] == "done")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(done[0]["base_lr"], done[1]["base_lr"]);
    for (id, v) in &expected {
        let lines = epochs_trained(&reference.join("runs").join(id));
        let want = if v["status"] == "done" {
            vec![1, 1, 1]
        } else {
            vec![1]
        };
        assert_eq!(lines, want, "{id}");
        if v["status"] == "stopped" {
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("not promoted at epoch 1"),
                "{v}"
            );
        }
    }
    let ledger = |out: &Path| std::fs::read_to_string(out.join("halving.json")).unwrap();
    // Synchronous promotions follow from the results alone: the same twice.
    let again = dir.join("again");
    sweep_to_end(&sweep, &again);
    assert_eq!(ledger(&again), ledger(&reference));
    assert_eq!(summaries(&again), expected);
    // Run again on a finished folder: nothing trains.
    sweep_to_end(&sweep, &again);
    assert_eq!(summaries(&again), expected);

    // Killed once a trial is paused at its rung (others mid-rung), then run again: it
    // ends as the unbroken sweep, no epoch trained twice, no rung retrained.
    let killed = dir.join("killed");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !summaries(&killed)
        .iter()
        .any(|(_, v)| v["status"] == "paused")
    {
        assert!(Instant::now() < deadline, "no trial paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    sweep_to_end(&sweep, &killed);
    assert_eq!(summaries(&killed), expected);
    assert_eq!(ledger(&killed), ledger(&reference));
    for (id, _) in &expected {
        let lines = epochs_trained(&killed.join("runs").join(id));
        assert!(
            lines.iter().all(|&n| n <= 1),
            "{id} trained an epoch twice: {lines:?}"
        );
    }

    // Asynchronous promotion: one rate goes on too (here the same, the seeds decide
    // alike), and nothing is left paused.
    let asynchronous = halving_sweep(&dir, "async");
    let stdout = sweep_to_end(&asynchronous, &dir.join("async"));
    assert!(stdout.contains("0 failed"), "{stdout}");
    let s = summaries(&dir.join("async"));
    assert_eq!(status(&s, "paused"), 0);
    assert!(status(&s, "done") >= 2, "{s:?}");
}

#[test]
fn a_bad_halving_section_is_refused_naming_its_key() {
    let dir = temp("sweep-halving-bad");
    let sweep = halving_sweep(&dir, "sync");
    let text = std::fs::read_to_string(&sweep).unwrap();
    for (from, to, expected) in [
        (
            "keep: 1/3",
            "keep: 2",
            "halving.keep: 2: expected a fraction",
        ),
        (
            "rungs: [1]",
            "rungs: [3]",
            "rung 3 is not below the 3 epochs",
        ),
        ("rungs: [1]", "rungs: [2, 1]", "halving.rungs: [2, 1]"),
        ("mode: sync", "mode: fast", "halving.mode"),
        (
            "floor: 0",
            "floor: 0, within: [model.name]",
            "\"model.name\" is not a key the stage's grid varies",
        ),
    ] {
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, text.replace(from, to)).unwrap();
        let err = assert_exit(&dry_run(&dir.join("out"), &bad), 2, to);
        assert!(err.contains(expected), "{to}: {err}");
    }
}

#[test]
fn bad_requests_are_refused_with_exit_2_naming_what_is_wrong() {
    let (dir, sweep) = setup("sweep-bad-requests");
    // --grace below Slurm's 30 s look at time limits.
    for grace in ["0", "29"] {
        let o = run_sweep(
            &sweep,
            &dir.join("g"),
            &["--executor", "slurm", "--grace", grace],
        );
        let err = assert_exit(&o, 2, "--grace below 30");
        assert!(err.contains("--grace"), "{err}");
    }
    assert!(!dir.join("g").exists(), "a refused sweep wrote its folder");
    // --out a file: a clear line, exit 2 (was exit 1, "afile/.sweep.lock: File exists").
    let file = dir.join("afile");
    std::fs::write(&file, "notes").unwrap();
    let err = assert_exit(&run_sweep(&sweep, &file, &[]), 2, "--out a file");
    assert!(err.contains("is a file"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "notes");
    // --run-index on a folder no sweep has prepared.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = assert_exit(
        &run_sweep(&sweep, &empty, &["--run-index", "0"]),
        2,
        "no plan.json",
    );
    assert!(err.contains("plan.json"), "{err}");
    // A base file with a UTF-8 byte-order mark reads as without.
    let base = dir.join("base.yaml");
    let text = std::fs::read_to_string(&sweep).unwrap();
    let start = text.find("  data:").unwrap();
    let end = text.find("grid:").unwrap();
    let section: String = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&base, format!("\u{feff}{section}\n")).unwrap();
    let with_bom = dir.join("bom.yaml");
    let sweep_text = format!(
        "{}base: base.yaml\n{}",
        &text[..text.find("base:").unwrap()],
        &text[end..]
    );
    std::fs::write(&with_bom, sweep_text).unwrap();
    assert_ok(
        &dry_run(&dir.join("bom-out"), &with_bom),
        "a base file with a BOM",
    );
    // A device this binary was built without: refused before anything is written, locally
    // and for Slurm (every run used to start and fail; Slurm scripts asked for GPUs).
    let cuda = dir.join("cuda.yaml");
    std::fs::write(&cuda, text.replace("grid:", "  device: cuda\ngrid:")).unwrap();
    for args in [&[][..], &["--executor", "slurm"]] {
        let out = dir.join("cuda-out");
        let o = run_sweep(&cuda, &out, args);
        let err = assert_exit(&o, 2, "a device not compiled in");
        assert!(
            err.contains("device") && err.contains("not compiled"),
            "{err}"
        );
        assert!(!out.exists(), "a refused sweep wrote its folder");
    }
    // Names that would break a Slurm script or leave results/: refused naming the key
    // (they used to add shell lines to job scripts, or write outside results/).
    for name in ["\"a b\"", "../../escaped", "\"x\\nsrun rm\""] {
        let named = dir.join("named.yaml");
        std::fs::write(
            &named,
            text.replacen("name: fm", &format!("name: {name}"), 1),
        )
        .unwrap();
        let o = netaug()
            .current_dir(&dir)
            .args(["sweep", "named.yaml", "--dry-run"])
            .output()
            .unwrap();
        let err = assert_exit(&o, 2, &format!("sweep name {name}"));
        assert!(err.contains("name"), "{err}");
    }
    assert!(!dir.join("results").exists() && !dir.parent().unwrap().join("escaped").exists());
    let o = run_sweep(
        &sweep,
        &dir.join("s"),
        &[
            "--executor",
            "slurm",
            "--sbatch",
            "--partition=x\nsrun rm -rf ~",
        ],
    );
    let err = assert_exit(&o, 2, "--sbatch with a line break");
    assert!(err.contains("--sbatch"), "{err}");
    assert!(!dir.join("s").exists());
}
