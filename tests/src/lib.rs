//! Helpers shared by the end-to-end tests: the real Docker engine of this machine, test
//! images built from local material (nothing can be pulled), and scopes that remove
//! every Docker object a test created, also when the test fails.
//!
//! This crate is test support code: a helper that cannot do its job panics with a
//! message naming what failed, which fails the calling test with that message. That is
//! why the panic and print lints are allowed here and nowhere else.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr
)]

mod cache;
mod cli;
mod debian;
mod engine;
mod launcher_bin;
mod model_server;
mod node;
mod pi_agent;
mod pi_image;
mod pi_run;
mod proxy_image;
mod registry;
mod scope;
mod test_ca;
mod upstream;
mod user;
mod wait;

pub use cache::{CacheLock, cache_dir, workspace_root};
pub use cli::{Outcome, docker, docker_ok};
pub use debian::debian_image;
pub use engine::{docker_available, docker_scope};
pub use launcher_bin::{launcher_binary, proxy_binary};
pub use model_server::{LocalModelServer, Log, ModelServer};
pub use pi_agent::pi_testdata_available;
pub use pi_image::pi_image;
pub use pi_run::{HostPi, MODEL_HOST, SandboxedPi};
pub use proxy_image::proxy_image;
pub use registry::Registry;
pub use scope::{Container, ContainerBuilder, Scope, TEST_ID_LABEL, TEST_LABEL};
pub use test_ca::{Leaf, TestCa, test_ca};
pub use upstream::Upstream;
pub use user::as_user;
pub use wait::{eventually, wait_healthy, wait_log, wait_tcp};
