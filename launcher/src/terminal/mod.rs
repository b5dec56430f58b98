//! The user's side of a run: the terminal, the standard streams, the browser.

pub mod browser;
pub mod stdio;
mod tty;

pub use tty::*;
