//! `agent-sandbox`: runs coding agents (first `pi`) in hardened Docker containers whose
//! network egress goes through the `sandbox-proxy` allowlist sidecar. The binary is thin:
//! [`cli::parse`], then [`launch::main`], then the [`exit::ExitStatus`].

pub mod cmd;
pub mod engine;
pub mod exit;
pub mod options;
pub mod report;
pub mod sandbox;
pub mod terminal;
