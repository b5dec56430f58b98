//! What the user asked for: command-line flags, the settings file, agent profiles and
//! resource limits.

pub mod cli;
pub mod limits;
pub mod profile;
pub mod settings;
