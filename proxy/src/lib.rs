//! `sandbox-proxy`: a default-deny allowlist forward proxy for sandboxed coding agents.
//!
//! The pieces, in the order a request meets them: [`listen`] accepts it, [`server`]
//! validates and routes it, [`policy`] decides on the host and port using the compiled
//! [`allowlist`], [`dial`] resolves the name ([`resolve`]), classifies every address
//! ([`guard`]) and connects, [`sni`] checks the TLS server name on tunnels to TLS ports,
//! and [`tunnel`] relays the bytes.

pub mod admin;
pub mod admin_client;
pub mod check;
pub mod cli;
pub mod config;
pub mod denied;
pub mod dial;
pub mod exit;
pub mod explain;
pub mod init;
pub mod lint;
pub mod listen;
pub mod logging;
pub mod relay;
pub mod reload;
pub mod resolve;
pub mod revoke;
pub mod serve;
pub mod server;
pub mod sni;
pub mod store;
pub mod telemetry;
pub mod tunnel;

pub use server::{Limits, Server};
pub use store::PolicyStore;
