//! `sandbox-proxy`: a default-deny allowlist forward proxy for sandboxed coding agents.
//! The policy itself (host names, the allowlist, the address guard) is the
//! `sandbox-policy` crate.
//!
//! - [`server`]: the HTTP/1.1 proxy. A request is validated, decided by the policy in
//!   force, dialed through [`net`], and answered or tunnelled; tunnels to TLS ports
//!   pass the TLS name check first.
//! - [`net`]: listening sockets, name resolution, dialing a checked address, and the
//!   tunnel's byte relay.
//! - [`live`]: the policy in force, its reload (SIGHUP, file changes) and the revocation
//!   of open connections the new policy no longer allows.
//! - `secrets`: the secrets granted on stdin, their substitution in requests to their
//!   hosts, and the record of their use (decrypted tunnels: `server::intercept`).
//! - [`ops`]: the management listener and its client, metrics, the record of denied
//!   destinations, lint findings.
//! - [`cmd`]: the command line and the subcommands (serve, check, explain, healthcheck,
//!   denied, relay).
//! - [`agent`]: the relay and init that run as PID 1 in the agent container (same
//!   binary, no policy).

pub mod agent;
pub mod cmd;
pub mod live;
pub mod net;
pub mod ops;
mod secrets;
pub mod server;

pub use live::PolicyStore;
pub use server::{Limits, Server};
