//! What a user sees of a run: a progress bar per phase (drawn only on a terminal) and one
//! line per epoch on stderr, shared by `train`, `eval` and `detect`.

use indicatif::{ProgressBar, ProgressStyle};
use netaug_trainer::metrics::EpochReport;
use netaug_trainer::{Observer, Running};

/// Progress bars on a terminal, one line per epoch on stderr.
pub(crate) struct Bars {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Bars {
    pub(crate) fn new(quiet: bool) -> Self {
        Self { quiet, bar: None }
    }
}

impl Observer for Bars {
    fn phase(&mut self, name: &str, total: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: usize, running: Option<Running>) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            if let Some(r) = running {
                let top1 = r
                    .top1
                    .map(|t| format!(" top-1 {t:.1}%"))
                    .unwrap_or_default();
                bar.set_message(format!(
                    "loss {:.3}{top1} {:.0} img/s",
                    r.loss, r.images_per_second
                ));
            }
        }
    }

    fn finish_phase(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn epoch(&mut self, line: &dyn EpochReport, total: usize) {
        if !self.quiet {
            errln!("epoch {}/{total}: {}", line.epoch(), line.describe());
        }
    }
}
