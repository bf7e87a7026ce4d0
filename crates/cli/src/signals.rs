//! SIGINT and SIGTERM for the commands that train: the first asks the run to stop after
//! its current step (it records `"status": "interrupted"` and exits 128 + the signal), a
//! second one exits at once with that code.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};

/// Routes SIGINT and SIGTERM to the trainer's stop flag.
pub fn stop_runs_on_signals() -> Result<()> {
    let flag = netaug_trainer::interrupt::flag();
    let stopping = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Handlers run in the order registered: the exit only fires once `stopping` was
        // set by an earlier signal.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, stopping.clone())
            .and_then(|_| signal_hook::flag::register(signal, stopping.clone()))
            .and_then(|_| signal_hook::flag::register_usize(signal, flag.clone(), signal as usize))
            .context("installing the signal handlers")?;
    }
    Ok(())
}

/// Writing to a closed pipe (`netaug ... | head`) ends the process quietly by SIGPIPE, as
/// other Unix tools do, instead of a panic in `println!` (Rust starts with SIGPIPE ignored).
pub fn default_sigpipe() {
    // SAFETY: sets a signal's disposition to its default at startup, before any thread
    // or handler exists; no Rust state depends on it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The exit code of a run stopped by `signal`: the shell's 128 + its number.
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}
