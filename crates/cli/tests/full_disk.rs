//! A full disk, for real: a 512 KiB tmpfs mounted for the test (root only; where it cannot
//! be mounted the test says SKIPPED loudly). `train` into it and `report` on it are
//! failures (exit 1) that name what could not be written, never bad input (exit 2).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_exit, netaug, run_config, setup, temp, train};
use netaug_data::fixtures;

/// A mounted tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the rest of the file system that holds `dir`.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
}

#[test]
fn a_full_disk_is_a_failure_that_names_the_file() {
    let dir = temp("full-disk");
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "512k") else {
        eprintln!(
            "SKIPPED a_full_disk_is_a_failure_that_names_the_file: cannot mount a tmpfs here \
             (it needs root)"
        );
        return;
    };
    let data = dir.join("fm");
    fixtures::fashion_mnist(&data, 32, 16, false).unwrap();
    let config = run_config(
        &dir,
        &data,
        "epochs: 1, warmup_epochs: 0, base_lr: 0.05",
        "",
    );

    // A checkpoint (2.4 MB of weights and momentum) does not fit in 512 KiB.
    let run = disk.0.join("run");
    let o = train(&config, &run, &["--quiet"]);
    let err = assert_exit(&o, 1, "train on a full disk");
    assert!(
        err.contains("writing failed") && err.contains("No space left"),
        "{err}"
    );
    std::fs::remove_dir_all(&run).unwrap();

    // A report whose summary.csv cannot be written.
    let results = disk.0.join("results");
    let one = results.join("runs/a");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::write(
        one.join("summary.json"),
        r#"{"run_id":"a","dataset":"d","model":"tinymbv2","resolution":32,"method":"baseline","epochs":1,"seed":0,"device":"cpu","params":1,"macs":1,"best_val_top1":50.0,"best_epoch":1,"final_val_top1":50.0,"final_val_top5":90.0,"wall_seconds":1.0,"images_per_second":1.0,"status":"done","error":null}"#,
    )
    .unwrap();
    fill(&disk.0);
    let o = netaug().arg("report").arg(&results).output().unwrap();
    let err = assert_exit(&o, 1, "report on a full disk");
    assert!(
        err.contains("summary.csv") && err.contains("writing failed"),
        "{err}"
    );
}

/// `netaug ARGS` with its stdout on `/dev/full`.
fn with_full_stdout(args: &[&str]) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .args(args)
        .stdout(dev_full())
        .output()
        .unwrap()
}

/// `/dev/full` for a child's stdout or stderr: every write fails with ENOSPC.
fn dev_full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

#[test]
fn a_full_stdout_is_exit_1_and_a_full_stderr_never_stops_a_run() {
    // Commands that print: exit 1 naming stdout, never a panic (exit 101).
    let (dir, config) = setup("dev-full", 32, "");
    for args in [
        vec!["completions", "bash"],
        vec!["profile", "--model", "tinymbv2"],
        vec!["train", "--help"],
    ] {
        let out = with_full_stdout(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        if args[1] == "--help" {
            // clap prints help itself; it must not panic either.
            assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("writing to stdout: No space left"),
            "{args:?}: {err}"
        );
    }
    // A run whose stderr (epoch lines, warnings) and stdout go nowhere trains to its end.
    let run = dir.join("run");
    let out = Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("train")
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"done\""), "{summary}");
    // The commands that print about a run: exit 1 naming stdout; export writes its file.
    let onnx = dir.join("tiny.onnx");
    let (run_s, onnx_s) = (run.display().to_string(), onnx.display().to_string());
    let fm = dir.join("fm").display().to_string();
    for args in [
        vec!["eval", "--json", "--checkpoint", &run_s],
        vec!["report", &run_s],
        vec![
            "export",
            "--format",
            "onnx",
            "--out",
            &onnx_s,
            "--checkpoint",
            &run_s,
        ],
        vec!["data", "info", "--dataset", "fashion-mnist", "--root", &fm],
    ] {
        let out = with_full_stdout(&args);
        let err = assert_exit(&out, 1, &format!("{args:?}"));
        assert!(err.contains("writing to stdout"), "{args:?}: {err}");
    }
    assert!(onnx.is_file(), "export wrote no file");
    // The same run again with both streams full: its files are there; the failed
    // summary line on stdout is exit 1, not a panic.
    let again = dir.join("again");
    let out = Command::new(assert_cmd::cargo::cargo_bin("netaug"))
        .arg("train")
        .arg(&config)
        .arg("--out")
        .arg(&again)
        .stdout(dev_full())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(101), "{out:?}");
    assert!(again.join("summary.json").is_file());
}
