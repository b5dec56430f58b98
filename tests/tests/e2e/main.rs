//! The workspace's end-to-end tests against the real Docker engine, one test binary:
//! the test infrastructure itself ([`infra`]), the sidecar image ([`sidecar`]), pi, the
//! real agent, through the real launcher ([`pi`]), and its API key kept out of the
//! sandbox ([`secrets`]). Their support module is this
//! crate's library, `agent_sandbox_e2e`, shared with the launcher's tests and benches.

// Helpers outside `#[test]` functions fail the calling test by panicking.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod bounded;
mod infra;
mod pi;
mod secrets;
mod sidecar;
