//! `netaug train`, `eval` and `export` on real-format fixtures: the run files, resume
//! after a kill -9 (two resumes at once) and after SIGINT/SIGTERM, bad configs, divergence,
//! KD and the regularizers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{assert_exit, assert_ok, export, netaug, setup, temp, train};
use netaug_data::fixtures;
use serde_json::Value;

const NETAUG: &str = "netaug: {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8], stop_aug_w_epoch: 1, bn_recal_images: 32}";

/// Copies folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The records of a run's TensorBoard files: one file, its records' count.
fn event_records(run: &Path) -> usize {
    let files: Vec<PathBuf> = std::fs::read_dir(run.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    netaug_tensorboard::read_records(&files[0]).unwrap().len()
}

/// The lines of a run's JSON-lines `file` without the fields `timing` (times and speeds
/// differ between any two runs).
fn lines_without(run: &Path, file: &str, timing: &[&str]) -> Vec<Value> {
    std::fs::read_to_string(run.join(file))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            for key in timing {
                o.remove(*key);
            }
            v
        })
        .collect()
}

/// metrics.jsonl without its timing fields.
fn metrics(run: &Path) -> Vec<Value> {
    lines_without(run, "metrics.jsonl", &["seconds", "images_per_second"])
}

/// steps.jsonl without its timing fields.
fn steps(run: &Path) -> Vec<Value> {
    lines_without(run, "steps.jsonl", &["wall_time", "images_per_second"])
}

#[test]
fn a_run_writes_every_file_and_eval_and_export_agree_with_it() {
    let (dir, config) = setup("files", 64, NETAUG);
    let run = dir.join("run");
    let out = train(&config, &run, &[]);
    assert_ok(&out, "netaug");
    for f in [
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/latest/weights.bpk",
        "checkpoints/latest/optimizer.bpk",
        "checkpoints/latest/state.json",
        "checkpoints/best/weights.bpk",
        "exported/model.json",
        "exported/weights.bpk",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let m = metrics(&run);
    assert_eq!(m.len(), 3, "warm-up + 2 epochs");
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "epoch",
        "train_loss",
        "train_top1",
        "val_loss",
        "val_top1",
        "val_top5",
        "lr",
        "seconds",
        "images_per_second",
    ] {
        assert!(keys.contains(&k), "metrics.jsonl lacks {k}: {keys:?}");
    }
    let s = json(&run.join("summary.json"));
    assert_eq!(s["status"], "done");
    assert_eq!(s["method"], "netaug");
    assert_eq!(s["model"], "tinymbv2");
    assert_eq!(
        s["params"], 305_482,
        "the target net, 10 classes, 1 channel"
    );
    assert!(s["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(s["images_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(s["final_val_top1"], m[2]["val_top1"]);

    // The exported tiny net is the best epoch's (as the official export), and gives the
    // run's best accuracy.
    let out = netaug()
        .args(["eval", "--json", "--checkpoint"])
        .arg(run.join("exported"))
        .output()
        .unwrap();
    assert_ok(&out, "netaug");
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["images"], 24);
    let (a, b) = (
        e["top1"].as_f64().unwrap(),
        s["best_val_top1"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "eval {a} vs the run's best {b}");

    // `export` of the latest checkpoint is a plain net with the target's size.
    let tiny = dir.join("tiny");
    let latest = run.join("checkpoints/latest");
    let out = export(&[], &latest, &tiny);
    assert_ok(&out, "netaug");
    assert!(String::from_utf8_lossy(&out.stdout).contains("305482 params"));
    let model = json(&tiny.join("model.json"));
    assert_eq!(
        model["factors"]["aug_width_mult_list"],
        serde_json::json!([1.0])
    );

    // An export onto an existing folder (an earlier export, a checkpoint) is refused before
    // anything is written: it used to write over the folder in place.
    for existing in [tiny.clone(), run.join("checkpoints/best")] {
        let before = std::fs::read(existing.join("weights.bpk")).unwrap();
        let out = export(&[], &latest, &existing);
        let err = assert_exit(&out, 2, &existing.display().to_string());
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(existing.join("weights.bpk")).unwrap(), before);
    }
    // With --force an earlier export is replaced whole.
    let out = export(&["--force"], &latest, &tiny);
    assert_ok(&out, "export --force");
    assert!(tiny.join("weights.bpk").is_file() && tiny.join("model.json").is_file());
    // --force replaces nothing but an earlier export: a folder holding a user's file, the
    // run itself and a checkpoint (its optimizer state) are refused whole. They used to
    // be replaced by the export, everything else in them gone.
    let user = dir.join("mine");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("notes.txt"), "mine").unwrap();
    std::fs::copy(tiny.join("model.json"), user.join("model.json")).unwrap();
    let listing = |d: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    for existing in [user.clone(), run.clone(), latest.clone()] {
        let before = listing(&existing);
        let out = export(&["--force"], &latest, &existing);
        let err = assert_exit(&out, 2, &format!("export --force {}", existing.display()));
        assert!(err.contains("not an earlier export"), "{err}");
        assert_eq!(listing(&existing), before, "{}", existing.display());
    }
    assert_eq!(
        std::fs::read_to_string(user.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(latest.join("optimizer.bpk").is_file());
    // `--format onnx`: one file whose input is the run's; refused when it exists (unless
    // --force), for an unknown format, a missing checkpoint, or an --out that cannot be
    // written, with no partial file left behind.
    let onnx = dir.join("tiny.onnx");
    let export_onnx = |from: &Path, out: &Path, extra: &[&str]| {
        export(&[&["--format", "onnx"], extra].concat(), from, out)
    };
    let out = export_onnx(&run, &onnx, &[]);
    assert_ok(&out, "export --format onnx");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("input [N, 1, 32, 32]"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bytes = std::fs::read(&onnx).unwrap();
    assert!(bytes.len() > 4 * 300_000, "{} bytes", bytes.len());
    assert_eq!(export_onnx(&run, &onnx, &[]).status.code(), Some(2));
    assert_ok(&export_onnx(&run, &onnx, &["--force"]), "--force");
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        bytes,
        "the same net, the same bytes"
    );
    assert_eq!(
        export_onnx(&dir.join("no-such-run"), &dir.join("x.onnx"), &[])
            .status
            .code(),
        Some(2)
    );
    let out = export(&["--format", "tflite"], &run, &dir.join("x.tflite"));
    assert_eq!(out.status.code(), Some(2));
    let out = export_onnx(&run, Path::new("/proc/netaug-test.onnx"), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("x.onnx").exists() && !dir.join("x.tflite").exists());
    // An --out that is not named *.onnx is refused, nothing written.
    let out = export_onnx(&run, &dir.join("tiny.bin"), &[]);
    let err = assert_exit(&out, 2, "export to tiny.bin");
    assert!(err.contains("an ONNX file's name ends in .onnx"), "{err}");
    assert!(!dir.join("tiny.bin").exists());

    let siblings: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(siblings.is_empty(), "{siblings:?}");

    // A second `train` into the same folder is refused; nothing is lost.
    let err = assert_exit(&train(&config, &run, &[]), 2, "a second train");
    assert!(err.contains("pass --resume"), "{err}");
    assert_eq!(json(&run.join("summary.json")), s);
}

#[test]
fn a_run_killed_in_epoch_two_resumes_to_the_same_metrics() {
    let (dir, config) = setup("kill", 160, NETAUG);
    let reference = dir.join("reference");
    let out = train(&config, &reference, &["--quiet"]);
    assert_ok(&out, "netaug");

    let run = dir.join("killed");
    let mut child = spawn_train(&config, &run, &[]);
    // Epoch 1 is written: the child is now in epoch 2.
    wait_for_epoch_one(&run);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !run.join("summary.json").exists(),
        "the run finished before the kill; the test needs a longer epoch"
    );
    let lines = metrics(&run).len();
    assert!(lines < 3, "killed after {lines} epochs");

    // A copy of the killed run whose metrics.jsonl lost its lines: resuming it is refused
    // (exit 2, naming the file) instead of ending "done" with epochs missing.
    let damaged = dir.join("damaged");
    copy_dir(&run, &damaged);
    std::fs::write(damaged.join("metrics.jsonl"), "").unwrap();
    let done = json(&damaged.join("checkpoints/latest/state.json"))["epochs_done"].as_u64();
    // (The kill lands after epoch 1's checkpoint unless the disk is very slow.)
    if done.is_some_and(|d| d >= 1) {
        let out = train(&config, &damaged, &["--resume", "--quiet"]);
        let err = assert_exit(&out, 2, "resume a damaged run");
        assert!(
            err.contains("metrics.jsonl") && err.contains("damaged"),
            "{err}"
        );
        assert!(!damaged.join("summary.json").exists());
    }
    // A copy whose last lines were cut short (power loss, full disk): they are dropped,
    // said so, and the run resumes to the unbroken run's metrics and steps.
    let torn = dir.join("torn");
    copy_dir(&run, &torn);
    for file in ["metrics.jsonl", "steps.jsonl"] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(torn.join(file))
            .unwrap();
        f.write_all(b"{\"epoch\": 2, \"train_lo").unwrap();
    }
    let out = train(&config, &torn, &["--resume", "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ok(&out, "resume past torn lines");
    assert!(err.contains("dropped its last line, cut short"), "{err}");
    assert_eq!(metrics(&torn), metrics(&reference));
    assert_eq!(steps(&torn), steps(&reference));

    // Two `--resume` at once: one continues the run, the other is refused at once (exit 1,
    // naming the lock) or, if it starts after the first finished, finds the run done.
    // Unlocked, the loser wrote `"status": "failed"` over the finished run.
    let resume = || spawn_train(&config, &run, &["--resume"]);
    let (a, b) = (resume(), resume());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert!(codes.contains(&Some(0)), "{codes:?}");
    for o in &outs {
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => {}
            Some(1) => assert!(err.contains("in use by another netaug process"), "{err}"),
            c => panic!("exit {c:?}: {err}"),
        }
    }
    assert_eq!(json(&run.join("summary.json"))["status"], "done");
    assert_eq!(metrics(&run), metrics(&reference));
    // The curves follow the checkpoint: each step once (the killed epoch's lines dropped,
    // then written again), equal to the uninterrupted run's, in one event file.
    assert_eq!(steps(&run), steps(&reference));
    assert_eq!(event_records(&run), event_records(&reference));
    let (a, b) = (
        json(&run.join("summary.json")),
        json(&reference.join("summary.json")),
    );
    for k in [
        "final_val_top1",
        "final_val_top5",
        "best_val_top1",
        "best_epoch",
        "params",
        "macs",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    // Resuming a finished run changes nothing.
    let out = train(&config, &run, &["--resume", "--quiet"]);
    assert!(out.status.success());
    assert_eq!(json(&run.join("summary.json")), a);
}

#[test]
fn a_run_paused_at_an_epoch_and_resumed_equals_the_unbroken_run_to_the_bit() {
    // Epochs 1 + 2 of NetAug: paused after the warm-up epoch and after epoch 2, resumed.
    let (dir, config) = setup("pause", 64, NETAUG);
    let reference = dir.join("reference");
    assert_ok(&train(&config, &reference, &["--quiet"]), "unbroken");
    let run = dir.join("paused");
    for (epoch, args) in [
        (1, vec!["--pause-at", "1"]),
        (2, vec!["--resume", "--pause-at", "2"]),
    ] {
        let out = train(&config, &run, &[&args[..], &["--quiet"]].concat());
        assert_ok(&out, "paused run");
        let summary = json(&run.join("summary.json"));
        assert_eq!(summary["status"], "paused", "{summary}");
        assert_eq!(metrics(&run).len(), epoch);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("paused after epoch {epoch}"))
        );
        assert!(
            !run.join("exported").exists(),
            "a paused run exports nothing"
        );
    }
    // Asked to pause where it already stands: nothing is trained. Its log line, in a
    // file or pipe as in a Slurm task's log, has no colour codes.
    let out = netaug()
        .args(["train", "--resume", "--pause-at", "2", "--quiet", "--out"])
        .arg(&run)
        .arg(&config)
        .env("NETAUG_LOG", "info")
        .output()
        .unwrap();
    assert_ok(&out, "paused again");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("paused after epoch 2"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a log: {err:?}");
    assert_eq!(metrics(&run).len(), 2);
    // Past its epochs, --pause-at trains to the end.
    assert_ok(
        &train(&config, &run, &["--resume", "--pause-at", "9", "--quiet"]),
        "resumed",
    );
    assert_eq!(json(&run.join("summary.json"))["status"], "done");
    assert_eq!(metrics(&run), metrics(&reference));
    assert_eq!(steps(&run), steps(&reference));
    for k in [
        "final_val_top1",
        "best_val_top1",
        "best_epoch",
        "final_test_top1",
    ] {
        assert_eq!(
            json(&run.join("summary.json"))[k],
            json(&reference.join("summary.json"))[k],
            "{k}"
        );
    }
    let out = train(&config, &dir.join("zero"), &["--pause-at", "0"]);
    assert_exit(&out, 2, "--pause-at 0");
}

#[test]
fn bad_configs_exit_2_with_one_line_naming_the_key() {
    let (dir, config) = setup("bad", 32, "");
    let text = std::fs::read_to_string(&config).unwrap();
    // Edits of the file: (text replaced, replacement, expected message).
    let edits = [
        ("seed: 3", "sed: 3", "run.sed: unknown field `sed`"),
        ("epochs: 2", "epochs: two", "run.epochs:"),
        ("tinymbv2", "tinymbv9", "model.name: unknown model"),
    ];
    // Overrides of a good file: (--set, expected message). An error a --set caused names
    // the --set, not the file.
    let overrides = [
        (
            "data.root=/no/such/dir",
            "data.root: /no/such/dir: no such folder",
        ),
        ("device=tpu", "device: unknown device `tpu`"),
        ("run.base_lr=-1", "run.base_lr:"),
        (
            "kd.teacher=/no/teacher",
            "kd.teacher: /no/teacher: no such file",
        ),
        (
            "run.epochs=",
            "--set run.epochs=: run: missing field `epochs`",
        ),
        (
            "run.warmup_epochs=18446744073709551615",
            "run.warmup_epochs: 18446744073709551615 is more than 1000000 epochs",
        ),
        // Were "0 images cannot be sharded over 1 ranks", naming no key.
        (
            "data.train_subset=0",
            "data.train_subset: must be at least 1",
        ),
        ("data.eval_subset=0", "data.eval_subset: must be at least 1"),
        // Was "cannot start loader threads" after about 2 minutes.
        (
            "data.workers=100000",
            "data.workers: 100000 is above 256 loader threads",
        ),
        // Was an abort (exit 134) allocating a supernet 100,000 times as wide.
        (
            "netaug={aug_expand_list: [1.0, 100000], aug_width_mult_list: [1.0, 1.8]}",
            "netaug.aug_expand_list: 100000 is above 16",
        ),
        // Was cut to the 32 images there are without a word.
        (
            "data.train_subset=100000",
            "data.train_subset: 100000 is more than the 32 training images",
        ),
        // Were accepted and recorded.
        ("device=cpu:7", "device: `cpu:7`: cpu is a CPU backend"),
        // Was "untagged enum OneOrMany".
        ("device={name: cpu}", "expected a device name (cpu, "),
        // Was "data.root: required for dataset `mnist`".
        (
            "data={dataset: mnist, image_size: 32, batch_size: 16}",
            "data.dataset: unknown dataset `mnist`",
        ),
        // Blamed the file.
        (
            "run.epochs.x=1",
            "--set run.epochs.x=1: run.epochs: invalid type",
        ),
    ];
    let cases = edits
        .into_iter()
        .map(|(from, to, expected)| (text.replace(from, to), None, expected))
        .chain(
            overrides
                .into_iter()
                .map(|(set, expected)| (text.clone(), Some(set), expected)),
        );
    for (i, (yaml, set, expected)) in cases.enumerate() {
        let path = dir.join(format!("bad{i}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out_dir = dir.join(format!("out{i}"));
        let sets: Vec<&str> = set.map(|s| vec!["--set", s]).unwrap_or_default();
        let out = train(&path, &out_dir, &sets);
        let err = assert_exit(&out, 2, expected);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(
            !out_dir.join("config.yaml").exists(),
            "a refused run wrote files"
        );
    }
    // A limit that is not a number was ignored, the default left in force.
    for bad in ["abc", "0", "-5"] {
        let out = netaug()
            .env("NETAUG_MAX_PIXELS", bad)
            .args(["train"])
            .arg(&config)
            .arg("--out")
            .arg(dir.join("pixels"))
            .output()
            .unwrap();
        let err = assert_exit(&out, 2, "NETAUG_MAX_PIXELS");
        assert!(
            err.contains(&format!("NETAUG_MAX_PIXELS=\"{bad}\"")),
            "{err}"
        );
        assert!(!dir.join("pixels").exists());
    }
    // A config saved with a UTF-8 byte-order mark trains (here: reaches the data check).
    let bom = dir.join("bom.yaml");
    std::fs::write(&bom, format!("\u{feff}{text}")).unwrap();
    let out = train(&bom, &dir.join("bom"), &["--set", "data.root=/no/such/dir"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data.root: /no/such/dir: no such folder"),
        "{err}"
    );
    // --out naming a file is refused, and the file is left as it was.
    let before = std::fs::read(&bom).unwrap();
    let out = train(&config, &bom, &[]);
    let err = assert_exit(&out, 2, "--out naming a file");
    assert!(err.contains("--out: "), "{err}");
    assert!(
        err.contains("bom.yaml: is a file; --out names a run folder"),
        "{err}"
    );
    assert_eq!(std::fs::read(&bom).unwrap(), before);
    // A folder of other files, or a run whose config.yaml was removed, is not written
    // over: refused, every file as it was.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(foreign.join("checkpoints/latest")).unwrap();
    std::fs::write(foreign.join("checkpoints/latest/weights.bpk"), b"theirs").unwrap();
    for resume in [false, true] {
        let extra: &[&str] = if resume { &["--resume"] } else { &[] };
        let out = train(&config, &foreign, extra);
        let err = assert_exit(&out, 2, "a foreign folder");
        assert!(
            err.contains("holds `checkpoints` but no config.yaml"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(foreign.join("checkpoints/latest/weights.bpk")).unwrap(),
            b"theirs"
        );
        assert!(!foreign.join("config.yaml").exists());
        assert!(!foreign.join(".run.lock").exists());
    }
}

/// `netaug train <config> --out <out> --quiet <extra>` started in the background, its
/// stderr piped.
fn spawn_train(config: &Path, out: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("train")
        .arg(config)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (300 s at most) until the run in `out` has written its first epoch.
fn wait_for_epoch_one(out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !std::fs::read_to_string(out.join("metrics.jsonl")).is_ok_and(|t| t.lines().count() >= 1)
    {
        assert!(Instant::now() < deadline, "epoch 1 never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `netaug train` on `config` into `out`, waits until its first epoch is written,
/// sends it `signal` (by name, through kill(1)) and returns its exit code and stderr.
fn signal_after_epoch_one(config: &Path, out: &Path, signal: &str) -> (Option<i32>, String) {
    let child = spawn_train(config, out, &[]);
    wait_for_epoch_one(out);
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn sigint_and_sigterm_stop_the_run_recorded_as_interrupted_and_resume_finishes_it() {
    let (dir, config) = setup("signal", 160, NETAUG);
    let reference = dir.join("reference");
    assert_ok(&train(&config, &reference, &["--quiet"]), "reference");
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let run = dir.join(signal);
        let (got, err) = signal_after_epoch_one(&config, &run, signal);
        if run.join("summary.json").is_file() && json(&run.join("summary.json"))["status"] == "done"
        {
            // The run finished before the signal arrived; nothing to check.
            continue;
        }
        assert_eq!(got, Some(code), "SIG{signal}: {err}");
        let s = json(&run.join("summary.json"));
        assert_eq!(s["status"], "interrupted", "SIG{signal}");
        assert_eq!(s["error"], format!("interrupted by SIG{signal}"));
        // It continues from the last epoch's checkpoint to the metrics of an unbroken run.
        assert_ok(&train(&config, &run, &["--resume", "--quiet"]), "resume");
        assert_eq!(json(&run.join("summary.json"))["status"], "done");
        assert_eq!(metrics(&run), metrics(&reference), "SIG{signal}");
    }
}

#[test]
fn a_diverging_run_stops_with_status_failed_and_the_reason() {
    let (dir, config) = setup("nan", 32, "");
    let run = dir.join("run");
    let out = train(
        &config,
        &run,
        &[
            "--set",
            "run.base_lr=1.0e30",
            "--set",
            "run.warmup_epochs=0",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = json(&run.join("summary.json"));
    assert_eq!(s["status"], "failed");
    let why = s["error"].as_str().unwrap();
    assert!(
        why.starts_with("training diverged: mean training loss is"),
        "{why}"
    );

    // When summary.json cannot be written either (here a folder is in its way, as a full
    // disk would refuse it), the first error is reported, with exit 1: the write error
    // used to replace it.
    // (The run diverges once, then resumes with its summary.json blocked.)
    let blocked = dir.join("blocked");
    let diverging = [
        "--set",
        "run.base_lr=1.0e30",
        "--set",
        "run.warmup_epochs=0",
    ];
    let _ = train(&config, &blocked, &diverging);
    std::fs::remove_file(blocked.join("summary.json")).unwrap();
    std::fs::create_dir_all(blocked.join("summary.json/in-the-way")).unwrap();
    let out = train(&config, &blocked, &[&diverging[..], &["--resume"]].concat());
    let err = assert_exit(&out, 1, "summary.json blocked");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("training diverged"), "{err}");
}

#[test]
fn weights_that_turn_nan_on_an_epochs_last_step_end_the_run_as_diverged() {
    // 16 images in batches of 16: the epoch's one step has a finite loss, and its update
    // (a rate past f32's range) makes every weight NaN.
    let (dir, config) = setup("nan-last", 16, "");
    let run = dir.join("run");
    let sets = [
        "--set",
        "run.base_lr=1.0e300",
        "--set",
        "run.warmup_epochs=0",
        "--set",
        "run.epochs=1",
    ];
    let out = train(&config, &run, &sets);
    // It used to save the NaN weights as the best checkpoint, then exit 2 calling the
    // file damaged.
    let err = assert_exit(&out, 1, "NaN weights");
    assert!(err.contains("training diverged"), "{err}");
    let s = json(&run.join("summary.json"));
    assert_eq!(s["status"], "failed");
    let why = s["error"].as_str().unwrap();
    assert!(
        why.starts_with("training diverged: ") && why.contains("not finite after epoch 1"),
        "{why}"
    );
    assert!(!run.join("checkpoints/best").exists() && !run.join("exported").exists());
}

#[test]
fn kd_and_the_regularizers_run_and_name_their_method() {
    let (dir, config) = setup("kd", 32, "");
    let teacher = dir.join("teacher");
    let out = train(
        &config,
        &teacher,
        &["--quiet", "--set", "model.name=mcunet"],
    );
    assert_ok(&out, "netaug");
    let teacher_set = format!(
        "kd={{teacher: {}, temperature: 2.0, weight: 0.7}}",
        teacher.display()
    );
    // KD on 2 replicas (the teacher runs on each replica's share): the same run twice.
    let on_two = |run: &Path| {
        let sets = ["run.epochs=1", &teacher_set, "run.replicas=2"];
        let mut args = vec!["--quiet"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let out = train(&config, run, &args);
        assert_ok(&out, "kd on 2 replicas");
        assert_eq!(json(&run.join("summary.json"))["method"], "kd");
        metrics(run)
    };
    assert_eq!(on_two(&dir.join("kd2-a")), on_two(&dir.join("kd2-b")));
    let runs: Vec<(Vec<String>, &str)> = vec![
        (vec![teacher_set.clone()], "kd"),
        (vec![teacher_set, format!("netaug={}", &NETAUG["netaug: ".len()..])], "kd+netaug"),
        (
            vec![
                "regularization={mixup: 0.2, autoaugment: true, dropout: 0.2, dropblock: {prob: 0.1, size: 3}}".into(),
            ],
            "dropout+mixup+autoaugment+dropblock",
        ),
        (vec!["regularization={randaugment: {ops: 2, magnitude: 9}}".into()], "randaugment"),
    ];
    for (i, (sets, method)) in runs.into_iter().enumerate() {
        let run = dir.join(format!("run{i}"));
        let mut args = vec!["--quiet".to_string(), "--set".into(), "run.epochs=1".into()];
        for s in sets {
            args.extend(["--set".into(), s]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = train(&config, &run, &args);
        assert_ok(&out, method);
        let s = json(&run.join("summary.json"));
        assert_eq!(s["method"], method);
        assert_eq!(s["status"], "done");
    }
}

#[test]
fn an_official_checkpoint_exports_to_a_folder_that_eval_reads() {
    let dir = temp("from-pth");
    let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trainer/tests/fixtures/tinymbv2.pth");
    let classes: Vec<String> = (0..10).map(|c| format!("c{c}")).collect();
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    fixtures::folder(&dir.join("data"), &names, 1, 2).unwrap();
    let tiny = dir.join("tiny");
    let export = |extra: &[&str], out: &Path| {
        netaug()
            .args(["export", "--from-pth"])
            .arg(&pth)
            .args(["--model", "tinymbv2", "--resolution", "32", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = export(&["--classes", "10", "--in-channels", "3"], &tiny);
    assert_ok(&out, "export --from-pth");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tinymbv2, 10 classes"));
    let model = json(&tiny.join("model.json"));
    assert_eq!(model["spec"]["classes"], 10);

    let out = netaug()
        .args([
            "eval",
            "--json",
            "--dataset",
            "folder",
            "--image-size",
            "32",
            "--checkpoint",
        ])
        .arg(&tiny)
        .arg("--root")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert_ok(&out, "eval of the exported official net");
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["images"], 20);

    // The 3-channel net on 1-channel Fashion-MNIST: refused naming both channel counts
    // (it used to report a top-1 of grey images read as something else).
    fixtures::fashion_mnist(&dir.join("fm"), 16, 16, false).unwrap();
    let out = netaug()
        .args(["eval", "--dataset", "fashion-mnist", "--image-size", "32"])
        .arg("--checkpoint")
        .arg(&tiny)
        .arg("--root")
        .arg(dir.join("fm"))
        .output()
        .unwrap();
    let err = assert_exit(&out, 2, "a 3-channel net on 1-channel images");
    assert!(
        err.contains("takes 3-channel images, fashion-mnist has 1-channel images"),
        "{err}"
    );

    // An input side that no net takes, or that would not fit in memory: one line, exit 2
    // (0 panicked inside burn, 100000 aborted on a 40 GB allocation).
    for (size, needle) in [("0", "below 8 pixels"), ("100000", "above 2048 pixels")] {
        let out = netaug()
            .args([
                "eval",
                "--dataset",
                "folder",
                "--image-size",
                size,
                "--checkpoint",
            ])
            .arg(&tiny)
            .arg("--root")
            .arg(dir.join("data"))
            .output()
            .unwrap();
        let err = assert_exit(&out, 2, &format!("--image-size {size}"));
        assert!(err.contains(needle), "{err}");
    }

    // A class count, a net or a file that does not fit: one line, exit 2, nothing written.
    for (extra, model, file, needle) in [
        (
            vec!["--classes", "12"],
            "tinymbv2",
            pth.clone(),
            "--classes 12",
        ),
        (vec![], "mcunet", pth.clone(), "mcunet's"),
        (vec![], "tinymbv2", dir.join("missing.pth"), "missing.pth"),
    ] {
        let bad = dir.join("bad");
        let out = netaug()
            .args(["export", "--from-pth"])
            .arg(&file)
            .args(["--model", model, "--out"])
            .arg(&bad)
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{needle}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
        assert!(!bad.exists(), "{needle}: a folder was written");
    }
}

#[test]
fn a_validation_split_is_held_out_of_training_and_the_test_set_reported_beside_it() {
    let (dir, config) = setup("heldout", 64, "");
    let run = dir.join("run");
    let set = [
        "--set",
        "data.val_split=16",
        "--set",
        "data.train_eval_images=8",
    ];
    let out = train(&config, &run, &set);
    assert_ok(&out, "netaug train with data.val_split");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("test top-1"), "{printed}");
    let s = json(&run.join("summary.json"));
    assert_eq!(
        s["train_images"], 48,
        "64 training images less the 16 held out"
    );
    let m = metrics(&run);
    for line in &m {
        for k in [
            "val_top1",
            "test_top1",
            "test_top5",
            "test_loss",
            "train_eval_top1",
        ] {
            assert!(line[k].is_f64(), "metrics.jsonl lacks {k}: {line}");
        }
    }
    assert_eq!(s["final_test_top1"], m[2]["test_top1"]);
    assert_eq!(s["final_val_top1"], m[2]["val_top1"]);

    // A split as large as the training set is bad input: exit 2, one line naming the key.
    let out = train(&config, &dir.join("bad"), &["--set", "data.val_split=64"]);
    let err = assert_exit(&out, 2, "data.val_split=64");
    assert!(err.contains("data.val_split"), "{err}");
}

#[test]
fn two_replicas_train_the_same_run_twice_and_resume_to_its_unbroken_metrics() {
    let (dir, config) = setup("replicas", 160, NETAUG);
    let text = std::fs::read_to_string(&config).unwrap();
    let two = dir.join("two.yaml");
    std::fs::write(
        &two,
        text.replace("log_every: 2}", "log_every: 2, replicas: 2}"),
    )
    .unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    for run in [&a, &b] {
        assert_ok(&train(&two, run, &["--quiet"]), "2 replicas");
    }
    assert_eq!(metrics(&a), metrics(&b), "two runs of 2 replicas differ");
    assert_eq!(steps(&a), steps(&b));
    assert_eq!(json(&a.join("summary.json"))["status"], "done");
    assert!(
        std::fs::read_to_string(a.join("config.yaml"))
            .unwrap()
            .contains("replicas: 2")
    );
    // One replica trains another run: batch norm sees 8 images per replica instead of 16.
    let one = dir.join("one");
    assert_ok(&train(&config, &one, &["--quiet"]), "1 replica");
    assert_ne!(metrics(&one), metrics(&a));

    // Stopped after epoch 1 and resumed on 2 replicas: the unbroken run's metrics.
    let stopped = dir.join("stopped");
    let (code, err) = signal_after_epoch_one(&two, &stopped, "TERM");
    if json(&stopped.join("summary.json"))["status"] != "done" {
        assert_eq!(code, Some(143), "{err}");
        assert_ok(&train(&two, &stopped, &["--resume", "--quiet"]), "resume");
        assert_eq!(metrics(&stopped), metrics(&a));
    }
    // Another replica count may resume it (the global batch is the same); the run ends.
    let other = dir.join("other");
    let (_, err) = signal_after_epoch_one(&two, &other, "TERM");
    let out = train(&config, &other, &["--resume", "--quiet"]);
    assert_ok(&out, "resume on 1 replica");
    assert_eq!(json(&other.join("summary.json"))["status"], "done", "{err}");

    // A batch that the replicas cannot split evenly is refused, naming the key.
    let out = train(&config, &dir.join("odd"), &["--set", "run.replicas=3"]);
    let err = assert_exit(&out, 2, "3 replicas");
    assert!(
        err.contains("run.replicas: 3 replicas cannot split data.batch_size 16 evenly"),
        "{err}"
    );

    // A device list puts one replica on each device: two CPU devices train run `a`.
    let listed = dir.join("listed");
    let out = train(&config, &listed, &["--quiet", "--set", "device=[cpu, cpu]"]);
    assert_ok(&out, "device list");
    assert_eq!(metrics(&listed), metrics(&a));
    // Lists that cannot run are refused with exit 2 and one line naming the device.
    for (set, says) in [
        ("device=[cuda:0, cuda:1]", "cuda:0"),
        (
            "device=[cpu, tch-cpu]",
            "the devices of a run are of one backend",
        ),
        (
            "device=[tch-cuda:1, tch-cuda:1]",
            "`tch-cuda:1` is listed twice",
        ),
    ] {
        let out = train(&config, &dir.join("refused"), &["--set", set]);
        let err = assert_exit(&out, 2, set);
        assert_eq!(err.trim().lines().count(), 1, "{set}: {err}");
        assert!(err.contains(says), "{set}: {err}");
        assert!(!dir.join("refused").join("config.yaml").exists());
    }
    let out = train(
        &config,
        &dir.join("refused"),
        &["--set", "device=[cpu, cpu]", "--set", "run.replicas=4"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run.replicas: 4 replicas, but device lists 2 devices"),
        "{err}"
    );
}
