//! The allowlist: file format, errors and the compiled matcher.
//!
//! Text is parsed into [`Entry`] values (all errors of a file collected at once), then
//! compiled by an `AllowlistBuilder` into an immutable [`Allowlist`]; its doc comment
//! states the matching rules.

mod entry;
mod error;
mod matcher;
mod parse;

pub use entry::{Entry, Pattern};
pub use error::{LoadError, ParseError, ParseErrors};
pub use matcher::{Allowlist, Decision, ListDenial, Lookup};
