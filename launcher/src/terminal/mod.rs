//! The user's side of a run: the terminal, the standard streams, the browser.

pub(crate) mod browser;
pub(crate) mod stdio;
mod tty;

pub(crate) use tty::*;
