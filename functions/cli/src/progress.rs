//! An indicatif progress bar behind the library's `Progress` hooks; hidden when stderr is
//! not a terminal, so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rrstitch::service::Progress;

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        self.0.set_prefix(name);
        if total == 0 {
            // A walk whose length is unknown until it ends (a re-stitch of the index): a
            // count and a rate, no bar.
            self.0.set_style(
                ProgressStyle::with_template("{prefix:>20} {spinner} {pos} ({per_sec})")
                    .expect("a valid template"),
            );
        } else {
            self.0.set_length(total);
        }
        self.0.set_position(0);
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }

    fn done(&self) {
        self.0.finish_and_clear();
    }
}
