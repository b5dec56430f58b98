//! The workspace's end-to-end tests against the real Docker engine, one test binary:
//! the test infrastructure itself ([`infra`]), the sidecar image ([`sidecar`]), and pi,
//! the real agent, through the real launcher ([`pi`]). Their support module is this
//! crate's library, `agent_sandbox_e2e`, shared with the launcher's tests and benches.

// Helpers outside `#[test]` functions fail the calling test by panicking.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod infra;
mod pi;
mod sidecar;
