//! Secrets the proxy adds to requests on their way out, so that the agent only ever
//! holds a placeholder.
//!
//! - [`grants`]: the grants read from stdin at start ([`Secrets::read`]), validated; the
//!   values live in this process's memory only and are never logged.
//! - [`substitute`]: placeholder to value in the header values and the query of a
//!   request to a host the secret is bound to, value to placeholder in response
//!   headers, and the placeholders seen going elsewhere.
//! - [`ledger`]: how often each secret was added, and the strays, for `/secrets`.

pub(crate) mod grants;
mod ledger;
pub(crate) mod substitute;

pub(crate) use grants::{Secrets, SecretsError};
