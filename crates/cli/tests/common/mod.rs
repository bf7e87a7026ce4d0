//! Helpers shared by the CLI tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub mod cluster;

/// The `netaug` binary of this build.
#[allow(dead_code)] // not every test file runs it through assert_cmd
pub fn netaug() -> Command {
    Command::cargo_bin("netaug").unwrap()
}

/// A fresh temporary folder named after the test and the process, removed when dropped
/// unless the test is failing (then it stays for a look).
#[allow(dead_code)] // not every test file makes folders
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Test runs write checkpoints (tens of MB each): left behind, a full suite fills a
        // small disk.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh [`TempDir`] for test `name`.
#[allow(dead_code)] // not every test file makes folders
pub fn temp(name: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!("netaug-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

/// Asserts that a command succeeded, showing its stderr otherwise.
#[allow(dead_code)]
pub fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that a command exited with `code`, showing `what` and its stderr otherwise;
/// returns its stderr.
#[allow(dead_code)]
pub fn assert_exit(out: &std::process::Output, code: i32, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    err
}

/// `netaug export <flags> --checkpoint <from> --out <out>`.
#[allow(dead_code)]
pub fn export(flags: &[&str], from: &Path, out: &Path) -> std::process::Output {
    netaug()
        .arg("export")
        .args(flags)
        .arg("--checkpoint")
        .arg(from)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// A Fashion-MNIST fixture (IDX files, 28x28) and a run config over it.
#[allow(dead_code)] // not every test file trains
pub fn setup(name: &str, n_train: usize, extra: &str) -> (TempDir, PathBuf) {
    let dir = temp(name);
    let data = dir.join("fm");
    netaug_data::fixtures::fashion_mnist(&data, n_train, 24, false).unwrap();
    let run = "epochs: 2, warmup_epochs: 1, base_lr: 0.05, seed: 3, log_every: 2";
    let config = run_config(&dir, &data, run, extra);
    (dir, config)
}

/// `<dir>/run.yaml`: tinymbv2 on the Fashion-MNIST fixture in `data`, with the `run`
/// section's keys `run` (a YAML flow mapping's inside) and the sections `extra`.
#[allow(dead_code)] // not every test file trains
pub fn run_config(dir: &Path, data: &Path, run: &str, extra: &str) -> PathBuf {
    let config = dir.join("run.yaml");
    std::fs::write(
        &config,
        format!(
            "data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}
model: {{name: tinymbv2}}
run: {{{run}}}
{extra}",
            data.display()
        ),
    )
    .unwrap();
    config
}

/// `netaug train CONFIG --out OUT EXTRA...`, run to its end.
#[allow(dead_code)] // not every test file trains
pub fn train(config: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    netaug()
        .arg("train")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// A sweep file `<dir>/<name>.yaml`: tinymbv2 on the Fashion-MNIST fixture in `data`, at
/// learning rate `lr` for `epochs` epochs (after one of warm-up), over `seeds` (a YAML list).
#[allow(dead_code)] // not every test file sweeps
pub fn sweep_file(
    dir: &Path,
    data: &Path,
    name: &str,
    (epochs, lr): (usize, &str),
    seeds: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}
base:
  data: {{dataset: fashion-mnist, root: {}, image_size: 32, batch_size: 16, workers: 1}}
  model: {{name: tinymbv2}}
  run: {{epochs: {epochs}, warmup_epochs: 1, base_lr: {lr}}}
seeds: {seeds}
",
            data.display()
        ),
    )
    .unwrap();
    path
}
