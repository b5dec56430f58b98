//! Benchmarks and peer comparisons for sandbox-proxy.
//!
//! The `loadgen` binary measures sandbox-proxy, tinyproxy, Squid and the direct path
//! with the same load (see `benches/README.md`); `benches/compare.sh` drives it.

mod allowlist;
pub mod cli;
mod error;
mod pattern;
mod procfs;
mod record;
mod report;
mod runner;
mod scenario;
mod stats;
mod upstream;
mod wire;

pub use error::Error;
pub use pattern::Pattern;
pub use procfs::{Process, Rss};
pub use record::{Record, TestName, read_records};
pub use runner::Window;
pub use stats::{Latencies, Summary};
pub use wire::{Route, Target};
