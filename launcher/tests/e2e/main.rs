//! The launcher end to end, through the real binary (`CARGO_BIN_EXE_agent-sandbox`) and
//! the real Docker engine, one test binary: sandboxed runs ([`sandbox`]), the browser
//! hand-off and login callbacks ([`browser`]), what runs on the host protected from the
//! agent ([`protect`]), the allowlist the launcher owns ([`allowlist`]), the network
//! without the proxy
//! ([`network`]), limits, logs and volumes ([`limits`]), the interactive terminal
//! ([`terminal`]), image builds ([`images`]) and the first run without a sidecar image
//! ([`first_run`]). Shared helpers are in [`support`] and [`pty`]; Docker helpers come
//! from the `agent-sandbox-e2e` crate.
//!
//! Everything a run creates carries its scope's labels (`--label`), so the scope removes
//! it even when a test fails.

// Helpers outside `#[test]` functions fail the calling test by panicking.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod allowlist;
mod browser;
mod first_run;
mod images;
mod limits;
#[cfg(target_os = "linux")]
mod network;
mod protect;
mod pty;
mod sandbox;
mod support;
mod terminal;
