//! Progress of the slow steps before a run (pulling and building images) on standard
//! error, when it is a terminal: a spinner, a message and the elapsed time. Elsewhere
//! (pipes, logs, CI) nothing is drawn.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display that draws only on a terminal and is cleared when dropped.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    /// A spinner showing `message` and the elapsed time.
    pub(crate) fn spinner(message: String) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.tick();
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    /// Replaces the message.
    pub(crate) fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
