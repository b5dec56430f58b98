//! What the user asked for: command-line flags ([`cli`], raw), the settings file
//! ([`settings`]), and the two merged into [`Options`] (each flag given wins over the
//! file); agent profiles ([`profile`]), resource limits ([`limits`]) and paths below a
//! directory ([`subpath`]) as values.
//! Nothing here looks at the host or the engine: that is `sandbox::config`'s job.

pub(crate) mod cli;
pub(crate) mod image_ref;
pub(crate) mod keypath;
pub(crate) mod limits;
pub(crate) mod profile;
pub(crate) mod settings;
pub(crate) mod subpath;

use std::path::PathBuf;

use limits::{CpuLimit, Limit, MemoryLimit, PidsLimit};
use subpath::SubPath;

/// The sandbox options in effect: flags over the settings file over defaults. Values are
/// typed (an unknown `--lang`, a bad `--memory` never get this far); what depends on the
/// host (the allowlist file, the working directory) is checked in `sandbox::config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// Proxy mode: egress only through the allowlist sidecar.
    pub(crate) proxy: bool,
    pub(crate) allowed_domains: Option<PathBuf>,
    pub(crate) lang: Option<Lang>,
    /// Rebuild the images even when they are up to date (`--build`).
    pub(crate) rebuild: bool,
    pub(crate) image: Option<String>,
    pub(crate) base_image: Option<String>,
    pub(crate) proxy_image: Option<String>,
    /// The source checkout to build the sidecar image from (settings only; empty: none).
    pub(crate) source_checkout: Option<PathBuf>,
    pub(crate) egress_network: Option<String>,
    pub(crate) isolation: Isolation,
    /// The network without the proxy.
    pub(crate) network: Network,
    /// `None`: the launcher's default.
    pub(crate) memory: Option<Limit<MemoryLimit>>,
    /// `None`: the launcher's default.
    pub(crate) cpus: Option<Limit<CpuLimit>>,
    /// `None`: the launcher's default.
    pub(crate) pids: Option<Limit<PidsLimit>>,
    pub(crate) read_only: bool,
    /// Allow a broad working directory (the home directory, one of its ancestors, a
    /// system directory).
    pub(crate) force: bool,
    /// Leave the code parts of the agent's config writable for this run.
    pub(crate) writable_config: bool,
    /// Paths of the working directory protected besides the default ones.
    pub(crate) protect: Vec<SubPath>,
    /// Paths of the working directory not protected although the default protects them.
    pub(crate) unprotect: Vec<SubPath>,
    /// `--label KEY=VALUE` arguments, as given.
    pub(crate) labels: Vec<String>,
}

/// How the agent container is cut off from the network in proxy mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Isolation {
    /// No network at all; the proxy is reached through a Unix socket and a relay.
    #[default]
    NoNetwork,
    /// A per-run internal Docker network shared with the sidecar. Weaker: the network's
    /// gateway is the host, so host services listening on all addresses are reachable.
    InternalNetwork,
}

/// The agent container's network without `--proxy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Network {
    /// A per-run bridge network: unrestricted egress, but not the host's own loopback
    /// services or abstract Unix sockets.
    #[default]
    Bridge,
    /// The host's network namespace: every service on the host's 127.0.0.1 and every
    /// abstract Unix socket (an X server's, for one) is reachable.
    Host,
}

/// A variant of the agent image: the language toolchain it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Deserialize)]
pub(crate) enum Lang {
    /// Node.js and the agent only.
    #[value(name = "base")]
    #[serde(rename = "base")]
    Base,
    /// Adds Go.
    #[value(name = "go")]
    #[serde(rename = "go")]
    Go,
    /// Adds PHP 8.4.
    #[value(name = "php8.4")]
    #[serde(rename = "php8.4")]
    Php84,
    /// Adds PHP 8.5 with the dom, mbstring, xml, curl and intl extensions.
    #[value(name = "php8.5")]
    #[serde(rename = "php8.5")]
    Php85,
}

impl Lang {
    /// Every variant, for `build --all`.
    pub(crate) const ALL: [Lang; 4] = [Lang::Base, Lang::Go, Lang::Php84, Lang::Php85];

    /// The variant's name: the Dockerfile target and the image tag.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Base => "base",
            Lang::Go => "go",
            Lang::Php84 => "php8.4",
            Lang::Php85 => "php8.5",
        }
    }
}
