//! The user's side of a run: the terminal, the standard streams, the browser, and the
//! progress of pulls and builds.

pub(crate) mod browser;
pub(crate) mod progress;
pub(crate) mod stdio;
mod tty;

pub(crate) use tty::*;
