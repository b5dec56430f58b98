//! `agent-sandbox`: runs coding agents (first `pi`) in hardened Docker containers whose
//! network egress goes through the `sandbox-proxy` allowlist sidecar. The binary is thin:
//! [`cli::parse`], then [`launch::main`], then the [`exit::ExitStatus`].

pub mod browser;
pub mod cli;
pub mod config;
pub mod context;
pub mod denied;
pub mod docker;
pub mod doctor;
pub mod exit;
pub mod images;
pub mod labels;
pub mod launch;
pub mod limits;
pub mod liveness;
pub mod profile;
pub mod report;
pub mod sandbox;
pub mod settings;
pub mod stdio;
pub mod teardown;
pub mod terminal;
