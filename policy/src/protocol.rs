//! What the launcher and the `sandbox-proxy` sidecar must agree on: where things are in
//! the two containers, the command lines the launcher starts the proxy and the relay
//! with, the line the proxy prints once it is ready, the header that says why a request
//! was refused, and the record of refused requests the management listener serves.
//!
//! The proxy's own command line is tested against the commands built here, so the two
//! cannot drift apart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The line the proxy writes to stdout once every listener is bound and the policy is
/// loaded.
pub const READY_LINE: &str = "sandbox-proxy ready";

/// The proxy's management listener (`/healthz`, `/readyz`, `/metrics`, `/denied`), on
/// the sidecar's loopback, where the agent cannot reach it; also the default of
/// `--admin` for the server and its `healthcheck` and `denied` clients.
pub const ADMIN_ADDRESS: &str = "127.0.0.1:9901";

/// The TCP port agents reach the proxy on: the relay's loopback port in the agent
/// container, or the sidecar's port on an internal network.
pub const PROXY_PORT: u16 = 8888;

/// The directory of the proxy binary in the sidecar image; a volume populated from it is
/// mounted read-only at the same place in the agent container.
pub const BIN_DIR: &str = "/opt/sandbox/bin";

/// The proxy binary, in [`BIN_DIR`]: the sidecar's entrypoint, and the relay in the
/// agent container.
pub const PROXY_BINARY: &str = "/opt/sandbox/bin/sandbox-proxy";

/// The directory of the proxy's Unix socket: a volume shared by both containers.
pub const RUN_DIR: &str = "/run/sandbox";

/// The proxy's Unix socket, in [`RUN_DIR`].
pub const SOCKET: &str = "/run/sandbox/proxy.sock";

/// Where the launcher's per-run copy of the allowlist is mounted in the sidecar: a
/// read-only directory, so that the proxy's watch of it sees the launcher replace the
/// file (by rename) during the run.
pub const ALLOWLIST_DIR: &str = "/etc/sandbox-proxy";

/// The allowlist's file name in [`ALLOWLIST_DIR`] (and in the launcher's copy).
pub const ALLOWLIST_FILE: &str = "allowed_domains.txt";

/// The allowlist in the sidecar: [`ALLOWLIST_FILE`] in [`ALLOWLIST_DIR`].
pub const ALLOWLIST_PATH: &str = "/etc/sandbox-proxy/allowed_domains.txt";

/// The response header carrying the reason code of a request the policy refused
/// (`not-allowlisted`, `port`, `private-address`, `self`).
pub const DENY_HEADER: &str = "x-sandbox-proxy-deny";

/// Where the proxy listens or the relay connects: `IP:PORT`, `[IPv6]:PORT` or
/// `unix:/ABSOLUTE/PATH`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path (written `unix:/PATH`).
    Unix(PathBuf),
}

/// A listening address that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid listen address {0:?}: expected IP:PORT, [IPv6]:PORT or unix:/ABSOLUTE/PATH")]
pub struct ListenAddrError(String);

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = Path::new(path);
            if path.is_absolute() {
                return Ok(ListenAddr::Unix(path.to_owned()));
            }
            return Err(ListenAddrError(text.to_owned()));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| ListenAddrError(text.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(address) => write!(f, "{address}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl ListenAddr {
    /// The proxy's socket, [`SOCKET`].
    pub fn socket() -> ListenAddr {
        ListenAddr::Unix(PathBuf::from(SOCKET))
    }
}

/// The sidecar's arguments (its entrypoint is [`PROXY_BINARY`]): the allowlist at
/// [`ALLOWLIST_PATH`], the management listener on [`ADMIN_ADDRESS`], and a `--listen`
/// for each of `listen`.
pub fn sidecar_args(listen: &[ListenAddr]) -> Vec<String> {
    let mut args = vec!["--allowlist".to_owned(), ALLOWLIST_PATH.to_owned()];
    for address in listen {
        args.extend(["--listen".to_owned(), address.to_string()]);
    }
    args.extend(["--admin".to_owned(), ADMIN_ADDRESS.to_owned()]);
    args
}

/// The agent container's entrypoint without a network: the relay as PID 1, listening on
/// `127.0.0.1:`[`PROXY_PORT`], connected to [`SOCKET`], running `command`.
pub fn relay_entrypoint(command: &[String]) -> Vec<String> {
    let mut entrypoint = [
        PROXY_BINARY,
        "relay",
        "--listen",
        &format!("127.0.0.1:{PROXY_PORT}"),
        "--connect",
        &ListenAddr::socket().to_string(),
        "--",
    ]
    .map(str::to_owned)
    .to_vec();
    entrypoint.extend_from_slice(command);
    entrypoint
}

/// The command, run in the sidecar, that prints the [`DeniedReport`] as JSON.
pub fn denied_command() -> Vec<String> {
    [PROXY_BINARY, "denied", "--admin", ADMIN_ADDRESS]
        .map(str::to_owned)
        .to_vec()
}

/// The command, run in the agent container with attached streams, that carries one
/// connection of the launcher's login-callback listener (host loopback `port`) to the
/// same port on the container's own loopback (IPv4 first, then IPv6).
pub fn pipe_command(port: u16) -> Vec<String> {
    vec![
        PROXY_BINARY.to_owned(),
        "pipe".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ]
}

/// The sidecar image's health check: exits 0 once the proxy is ready.
pub fn healthcheck_command() -> Vec<String> {
    [PROXY_BINARY, "healthcheck"].map(str::to_owned).to_vec()
}

/// What `GET /denied` answers and `sandbox-proxy denied` prints, as JSON: the
/// destinations the proxy refused, most refused first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedReport {
    /// One record per refused `host:port`.
    pub destinations: Vec<DeniedDestination>,
    /// Refused requests to further destinations, counted but not listed: the proxy keeps
    /// a bounded number of destinations.
    pub overflow: u64,
}

/// The refused requests to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedDestination {
    /// The requested host, normalised.
    pub host: String,
    /// The requested port.
    pub port: u16,
    /// The reason code of the latest refusal: one of [`DENY_HEADER`]'s, or `sni-*` for
    /// a tunnel refused by the TLS name check.
    pub reason: String,
    /// How many requests were refused.
    pub count: u64,
    /// When the latest refusal happened (RFC 3339, UTC).
    pub last_seen: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_as_documented() {
        assert_eq!(Path::new(PROXY_BINARY).parent(), Some(Path::new(BIN_DIR)));
        assert_eq!(Path::new(SOCKET).parent(), Some(Path::new(RUN_DIR)));
        assert_eq!(
            Path::new(ALLOWLIST_PATH),
            Path::new(ALLOWLIST_DIR).join(ALLOWLIST_FILE)
        );
        assert!(
            ADMIN_ADDRESS
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        );
    }

    #[test]
    fn listen_addresses_parse_and_display_back() {
        for text in [
            "127.0.0.1:8888",
            "[::1]:8888",
            "unix:/run/sandbox/proxy.sock",
        ] {
            let address: ListenAddr = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert_eq!(ListenAddr::socket().to_string(), format!("unix:{SOCKET}"));
        for bad in ["localhost:8888", "unix:relative.sock", "8888", ""] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn relay_entrypoint_ends_with_the_command() {
        let command = ["pi".to_owned(), "--help".to_owned()];
        let entrypoint = relay_entrypoint(&command);
        assert_eq!(entrypoint[..2], [PROXY_BINARY, "relay"]);
        assert_eq!(entrypoint[entrypoint.len() - 3..], ["--", "pi", "--help"]);
    }

    #[test]
    fn denied_report_round_trips_through_json() {
        let report = DeniedReport {
            destinations: vec![DeniedDestination {
                host: "denied.test".into(),
                port: 80,
                reason: "not-allowlisted".into(),
                count: 2,
                last_seen: "2026-01-01T00:00:00Z".into(),
            }],
            overflow: 3,
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""host":"denied.test","port":80"#), "{json}");
        assert_eq!(serde_json::from_str::<DeniedReport>(&json).unwrap(), report);
    }
}
