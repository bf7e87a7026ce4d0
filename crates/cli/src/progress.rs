//! What a user sees of a run: a progress bar per phase (drawn only on a terminal) and one
//! line per epoch on stderr, shared by `train`, `eval` and `detect`.

use indicatif::{ProgressBar, ProgressStyle};
use netaug_trainer::metrics::DetEpochMetrics;
use netaug_trainer::{EpochMetrics, Observer, Running};

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

    fn det_epoch(&mut self, m: &DetEpochMetrics, total: usize) {
        if !self.quiet {
            eprintln!(
                "epoch {}/{total}: train loss {:.4} | val mAP50 {:.2}% mAP {:.2}% | lr {:.2e} \
                 | {:.0} img/s | {:.1} s",
                m.epoch, m.train_loss, m.val_map50, m.val_map, m.lr, m.images_per_second, m.seconds
            );
        }
    }

    fn epoch(&mut self, m: &EpochMetrics, total: usize) {
        if !self.quiet {
            eprintln!(
                "epoch {}/{total}: train loss {:.4} top-1 {:.2}% | val loss {:.4} top-1 {:.2}% \
                 top-5 {:.2}% | lr {:.2e} | {:.0} img/s | {:.1} s",
                m.epoch,
                m.train_loss,
                m.train_top1,
                m.val_loss,
                m.val_top1,
                m.val_top5,
                m.lr,
                m.images_per_second,
                m.seconds
            );
        }
    }
}
