//! Validated configuration, built from the raw command line.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use sandbox_policy::{DomainName, Host, PolicyOptions, protocol::ListenAddr};

use crate::cmd::cli::{PolicyArgs, ServeArgs, Switch};
use crate::cmd::logging::LogFormat;
use crate::server::Limits;
use crate::server::sni::SniCheck;

/// A command line that parses but does not make sense.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// `--allowlist` is missing.
    #[error("--allowlist FILE is required")]
    MissingAllowlist,
    /// `--ports` contains 0.
    #[error("--ports: port 0 is not a valid port")]
    PortZero,
    /// A `--resolve` value is malformed.
    #[error("--resolve {0:?}: expected NAME=ADDR[,ADDR...] with a host name and IP addresses")]
    BadPin(String),
    /// `--listen` names the same address twice, or nothing.
    #[error("--listen: {0}")]
    BadListen(&'static str),
    /// A port is both served as HTTP and checked for TLS, or is 0.
    #[error("--http-ports: {0}")]
    BadHttpPorts(String),
}

/// Where the allowlist is and how to compile it.
#[derive(Clone, Debug)]
pub(crate) struct PolicyConfig {
    pub(crate) allowlist: PathBuf,
    pub(crate) options: PolicyOptions,
}

impl TryFrom<&PolicyArgs> for PolicyConfig {
    type Error = ConfigError;

    fn try_from(args: &PolicyArgs) -> Result<Self, ConfigError> {
        let allowlist = args
            .allowlist
            .clone()
            .ok_or(ConfigError::MissingAllowlist)?;
        if args.ports.contains(&0) {
            return Err(ConfigError::PortZero);
        }
        let mut default_ports = args.ports.clone();
        default_ports.sort_unstable();
        default_ports.dedup();
        Ok(PolicyConfig {
            allowlist,
            options: PolicyOptions {
                default_ports,
                allow_private: args.allow_private,
            },
        })
    }
}

/// Everything the proxy server needs to start.
#[derive(Clone, Debug)]
pub(crate) struct ServeConfig {
    pub(crate) policy: PolicyConfig,
    pub(crate) listen: Vec<ListenAddr>,
    /// Names answered without DNS.
    pub(crate) pins: HashMap<DomainName, Vec<IpAddr>>,
    pub(crate) log_format: LogFormat,
    /// The management listener's address, if any.
    pub(crate) admin: Option<std::net::SocketAddr>,
    /// Runtime worker threads (1: a single-threaded runtime).
    pub(crate) threads: u16,
    pub(crate) limits: Limits,
    /// Read secrets from stdin before binding.
    pub(crate) secrets_stdin: bool,
    /// Extra CA certificates for upstreams of decrypted tunnels.
    pub(crate) upstream_ca: Option<PathBuf>,
}

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, ConfigError> {
        let policy = PolicyConfig::try_from(&args.policy)?;
        let listen = args.listen;
        let mut seen = HashSet::new();
        if !listen.iter().all(|address| seen.insert(address)) {
            return Err(ConfigError::BadListen("the same address is given twice"));
        }
        if let Some(admin) = args.admin.0
            && admin.port() != 0
            && listen.contains(&ListenAddr::Tcp(admin))
        {
            return Err(ConfigError::BadListen(
                "the management address must differ from the proxy's",
            ));
        }
        let sni_checked =
            |port: &u16| args.sni_check == Switch::On && args.sni_ports.contains(port);
        if let Some(port) = args
            .http_ports
            .iter()
            .find(|port| **port == 0 || sni_checked(port))
        {
            return Err(ConfigError::BadHttpPorts(format!(
                "port {port} cannot be served as HTTP{}",
                if *port == 0 {
                    ""
                } else {
                    " and also carry TLS (--sni-ports)"
                }
            )));
        }
        let pins = args
            .resolve
            .iter()
            .map(|pin| parse_pin(pin))
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(ServeConfig {
            policy,
            listen,
            pins,
            log_format: args.log_format,
            admin: args.admin.0,
            threads: args.threads,
            secrets_stdin: args.secrets_stdin,
            upstream_ca: args.upstream_ca,
            limits: Limits {
                header_read_timeout: args.header_read_timeout,
                max_header_bytes: args.max_header_bytes,
                connect_timeout: args.connect_timeout,
                idle_timeout: args.idle_timeout,
                max_connections: args.max_connections.max(1),
                shutdown_grace: args.shutdown_grace,
                sni: SniCheck {
                    enabled: args.sni_check == Switch::On,
                    ports: args.sni_ports,
                    timeout: args.header_read_timeout,
                },
                http_ports: args.http_ports,
            },
        })
    }
}

impl ServeConfig {
    /// Ports every entry without a port allows (`--ports`) whose tunnels are neither
    /// served as HTTP nor checked for TLS: raw byte tunnels to any allowed host.
    pub(crate) fn raw_default_ports(&self) -> Vec<u16> {
        let sni = &self.limits.sni;
        self.policy
            .options
            .default_ports
            .iter()
            .copied()
            .filter(|port| !self.limits.http_ports.contains(port) && !sni.applies_to(*port))
            .collect()
    }
}

/// Parses `NAME=ADDR[,ADDR...]` (`--resolve`).
pub(crate) fn parse_pin(text: &str) -> Result<(DomainName, Vec<IpAddr>), ConfigError> {
    let bad = || ConfigError::BadPin(text.to_owned());
    let (name, addresses) = text.split_once('=').ok_or_else(bad)?;
    let Ok(Host::Name(name)) = Host::parse(name) else {
        return Err(bad());
    };
    let addresses = addresses
        .split(',')
        .map(|address| address.trim().parse::<IpAddr>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, addresses))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cmd::cli::Cli;

    fn serve(args: &[&str]) -> Result<ServeConfig, String> {
        let cli = Cli::try_parse_from(args).map_err(|err| err.to_string())?;
        ServeConfig::try_from(cli.serve).map_err(|err| err.to_string())
    }

    #[test]
    fn defaults_are_safe() {
        let config = serve(&["sandbox-proxy", "--allowlist", "a.txt"]).unwrap();
        assert_eq!(
            config.listen,
            ["127.0.0.1:8888".parse::<ListenAddr>().unwrap()]
        );
        assert_eq!(config.policy.options.default_ports, [80, 443]);
        assert!(!config.policy.options.allow_private);
        assert!(config.limits.idle_timeout.as_secs() >= 600);
        assert_eq!(config.limits.header_read_timeout.as_secs(), 10);
        assert_eq!(config.limits.max_header_bytes, 65536);
        assert!(config.limits.sni.enabled);
        assert_eq!(config.limits.sni.ports, [443]);
        assert_eq!(config.limits.http_ports, [80]);
        assert!(config.raw_default_ports().is_empty());
        let wide = serve(&[
            "sandbox-proxy",
            "--allowlist",
            "a",
            "--ports",
            "80,443,8080",
        ]);
        assert_eq!(wide.unwrap().raw_default_ports(), [8080]);
    }

    #[test]
    fn command_lines_are_validated() {
        let table: &[(&[&str], bool)] = &[
            (&["sandbox-proxy"], false),
            (
                &["sandbox-proxy", "--allowlist", "a", "--ports", "0"],
                false,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--ports", "70000"],
                false,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--ports", "80,8080"],
                true,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--listen",
                    "localhost:1",
                ],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--listen",
                    "unix:/tmp/p.sock",
                    "--listen",
                    "[::1]:0",
                ],
                true,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--listen",
                    "unix:/tmp/p.sock",
                    "--listen",
                    "[::1]:0",
                    "--listen",
                    "unix:/tmp/p.sock",
                ],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--listen",
                    "127.0.0.1:1",
                    "--listen",
                    "127.0.0.1:1",
                ],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--resolve",
                    "up.test=127.0.0.1,::1",
                ],
                true,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--resolve", "up.test"],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--resolve",
                    "1.2.3.4=127.0.0.1",
                ],
                false,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--idle-timeout", "20m"],
                true,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--idle-timeout",
                    "soon",
                ],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--sni-check",
                    "off",
                    "--sni-ports",
                    "443,8443",
                ],
                true,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--sni-check", "maybe"],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--http-ports",
                    "80,8080",
                ],
                true,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--http-ports", "443"],
                false,
            ),
            (
                &["sandbox-proxy", "--allowlist", "a", "--http-ports", "0"],
                false,
            ),
            (
                &[
                    "sandbox-proxy",
                    "--allowlist",
                    "a",
                    "--sni-check",
                    "off",
                    "--http-ports",
                    "443",
                ],
                true,
            ),
        ];
        for (args, ok) in table {
            assert_eq!(
                serve(args).is_ok(),
                *ok,
                "{args:?}: {:?}",
                serve(args).err()
            );
        }
    }
}
