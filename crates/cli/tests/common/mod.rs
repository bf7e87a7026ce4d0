//! Helpers shared by the CLI tests.

use std::path::PathBuf;

use assert_cmd::Command;

/// The `netaug` binary of this build.
#[allow(dead_code)] // not every test file runs it through assert_cmd
pub fn netaug() -> Command {
    Command::cargo_bin("netaug").unwrap()
}

/// A fresh temporary folder named after the test and the process.
#[allow(dead_code)] // not every test file makes folders
pub fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("netaug-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
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
