//! Rendering an error with its chain of causes, for the one line a binary prints before
//! exiting (the proxy's and the launcher's).

use std::error::Error;

/// `error: cause: cause`, each cause once.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
