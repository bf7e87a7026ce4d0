//! Stopping a run cleanly on SIGINT or SIGTERM. The binary routes the signals to
//! [`flag`]; the training loops look at it after every step and stop with
//! [`TrainError::Interrupted`](crate::TrainError::Interrupted), so the run's summary says
//! `interrupted` and `--resume` continues from the last epoch's checkpoint (redoing the
//! epoch that was cut, as after a kill).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of the signal that asked the run to stop; 0 while none has.
pub fn flag() -> Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicUsize::new(0))).clone()
}

/// The signal that asked the run to stop, if one has.
pub fn requested() -> Option<i32> {
    match flag().load(Ordering::Relaxed) {
        0 => None,
        s => Some(s as i32),
    }
}

/// The name of a stop signal, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}
