//! What the launcher tells the user, on standard error: one-line notices, warnings, and
//! error chains. Standard output belongs to the agent.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal is in raw mode, where it does not turn "\n" into "\r\n" itself.
static RAW_TERMINAL: AtomicBool = AtomicBool::new(false);

/// Tells [`notice`] whether the terminal is in raw mode now.
pub(crate) fn set_raw_terminal(raw: bool) {
    RAW_TERMINAL.store(raw, Ordering::SeqCst);
}

/// Writes `message` as a line on standard error, prefixed with the launcher's name.
/// A closed standard error is ignored: there is nowhere else to report to.
pub(crate) fn notice(message: &str) {
    let end = if RAW_TERMINAL.load(Ordering::SeqCst) {
        "\r\n"
    } else {
        "\n"
    };
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "agent-sandbox: {message}{end}");
}

/// An error and its causes, joined with `: ` (shared with the proxy's reports).
pub use sandbox_policy::report::chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start container x")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_join_every_cause_once() {
        let error = Outer(std::io::Error::other("permission denied"));
        assert_eq!(chain(&error), "cannot start container x: permission denied");
    }
}
