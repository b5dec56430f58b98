//! `agent-sandbox`: runs coding agents (first `pi`) in hardened Docker containers whose
//! network egress goes through the `sandbox-proxy` allowlist sidecar.
//!
//! The modules, in the order a run meets them: `options` (flags and
//! settings merged), `cmd` (the commands), `sandbox` (the validated sandbox, images,
//! session labels, the containers and their teardown), `engine` (the only module that
//! speaks to Docker), `terminal` (raw mode, the standard streams, the browser
//! hand-off), then the exit status.

mod cmd;
mod engine;
mod exit;
mod options;
mod report;
mod sandbox;
mod terminal;

pub use cmd::run;
pub use engine::{Engine, EngineError, OperationError};
pub use exit::ExitStatus;
pub use report::chain;
pub use sandbox::images;
