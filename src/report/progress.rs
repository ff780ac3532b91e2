//! A diagnosis's progress on the terminal (stderr): a line per phase and per finding, a
//! bar over the ramp.

use std::sync::Mutex;

use crate::diagnose::Progress;

/// Progress on stderr.
#[derive(Default)]
pub struct TerminalProgress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress for TerminalProgress {
    fn phase(&self, name: &str) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
        eprintln!("== {name}");
    }

    fn note(&self, line: &str) {
        eprintln!("   {line}");
    }

    fn ramp(&self, done: u64, total: u64, message: &str) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("   ramp [{bar:30}] {pos}/{len} s  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        bar.set_position(done);
        bar.set_message(message.to_string());
    }
}
