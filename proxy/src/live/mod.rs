//! The policy in force: one [`PolicyStore`] shared by every connection, [`reload`]ed on
//! SIGHUP and file changes, and [`revoke`], which lets open connections re-check
//! themselves against each new policy.

pub mod reload;
pub(crate) mod revoke;
mod store;

pub use store::PolicyStore;
