//! What the launcher and the `sandbox-proxy` sidecar must agree on: where things are in
//! the two containers, the command lines the launcher starts the proxy and the relay
//! with, the line the proxy prints once it is ready, the header that says why a request
//! was refused, the record of refused requests the management listener serves, and the
//! secrets: the grants the launcher writes to the sidecar's stdin, the placeholders the
//! agent sees instead, the run's CA certificate and the report of their use.
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

/// Where the user's extra upstream CA certificates (`--upstream-ca`) are mounted
/// (read-only) in the sidecar: outside [`ALLOWLIST_DIR`], a read-only mount of the
/// launcher's copy, in which the engine could not create the mount point.
pub const UPSTREAM_CA_PATH: &str = "/etc/sandbox-upstream-ca.pem";

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

/// What the sidecar is started with besides its listeners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SidecarOptions {
    /// The proxy reads a JSON array of [`SecretGrant`]s from stdin to its end before it
    /// binds (`--secrets-stdin`); the launcher writes it to the attached stdin.
    pub secrets_stdin: bool,
    /// Upstream certificates are also verified against the CA certificates mounted at
    /// [`UPSTREAM_CA_PATH`] (`--upstream-ca`).
    pub upstream_ca: bool,
}

/// The sidecar's arguments (its entrypoint is [`PROXY_BINARY`]): the allowlist at
/// [`ALLOWLIST_PATH`], the management listener on [`ADMIN_ADDRESS`], a `--listen` for
/// each of `listen`, and the flags `options` asks for.
pub fn sidecar_args(listen: &[ListenAddr], options: SidecarOptions) -> Vec<String> {
    let mut args = vec!["--allowlist".to_owned(), ALLOWLIST_PATH.to_owned()];
    for address in listen {
        args.extend(["--listen".to_owned(), address.to_string()]);
    }
    args.extend(["--admin".to_owned(), ADMIN_ADDRESS.to_owned()]);
    if options.secrets_stdin {
        args.push("--secrets-stdin".to_owned());
    }
    if options.upstream_ca {
        args.extend(["--upstream-ca".to_owned(), UPSTREAM_CA_PATH.to_owned()]);
    }
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

/// The command, run in the sidecar, that prints the [`SecretsReport`] as JSON.
pub fn secrets_command() -> Vec<String> {
    [PROXY_BINARY, "secrets", "--admin", ADMIN_ADDRESS]
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

/// A secret handed to the sidecar: the value it puts in place of `placeholder` in
/// requests to `hosts`. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretGrant {
    /// The environment variable's name (`ANTHROPIC_API_KEY`).
    pub name: String,
    /// What the agent holds instead of the value ([`placeholder`]).
    pub placeholder: String,
    /// The real value.
    pub value: String,
    /// The host names that may receive the value, as written in the allowlist (exact
    /// names, no wildcards).
    pub hosts: Vec<String>,
}

impl fmt::Debug for SecretGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretGrant")
            .field("name", &self.name)
            .field("placeholder", &self.placeholder)
            .field("value", &"<redacted>")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// The prefix of every placeholder: what makes one recognisable in a request or a file.
pub const PLACEHOLDER_PREFIX: &str = "agent-sandbox-secret-";

/// The placeholder the agent sees for the secret `name`:
/// `agent-sandbox-secret-<NAME>-<random_hex>`. `random_hex` is fresh randomness for each
/// run (32 lower-case hex digits), never derived from the value.
pub fn placeholder(name: &str, random_hex: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{name}-{random_hex}")
}

/// The run's CA certificate (one PEM block, with a final newline) from the sidecar's
/// stdout: the last certificate printed before [`READY_LINE`]. `None` until the ready
/// line is there, or when the proxy printed no certificate (it has no secrets).
pub fn ca_from_output(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let before_ready = &text[..line_start(text, READY_LINE)?];
    let begin = before_ready.rfind(BEGIN)?;
    let end = before_ready[begin..].find(END)? + begin + END.len();
    Some(format!("{}\n", &before_ready[begin..end]))
}

/// Where the first line that is exactly `line` starts in `text`.
fn line_start(text: &str, line: &str) -> Option<usize> {
    let mut start = 0;
    for candidate in text.split_inclusive('\n') {
        if candidate.trim_end_matches(['\r', '\n']) == line {
            return Some(start);
        }
        start += candidate.len();
    }
    None
}

/// What `GET /secrets` answers and `sandbox-proxy secrets` prints, as JSON: how often
/// each secret was added, and placeholders seen going to hosts not bound to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsReport {
    /// One record per granted secret, in the order of the grants.
    pub secrets: Vec<SecretUse>,
    /// Placeholders sent towards other hosts (a sign of an exfiltration attempt), most
    /// frequent first.
    pub strays: Vec<StrayPlaceholder>,
}

/// How many requests one secret was added to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretUse {
    /// The secret's name.
    pub name: String,
    /// Requests to its hosts in which the proxy replaced its placeholder.
    pub added: u64,
}

/// A secret's placeholder seen in requests to a host the secret is not bound to: sent
/// on unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayPlaceholder {
    /// The secret's name.
    pub name: String,
    /// The host the request went to.
    pub host: String,
    /// How many requests carried it.
    pub count: u64,
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

    #[test]
    fn sidecar_args_carry_the_secret_flags_only_when_asked() {
        let plain = sidecar_args(&[ListenAddr::socket()], SidecarOptions::default());
        assert!(
            !plain
                .iter()
                .any(|a| a == "--secrets-stdin" || a == "--upstream-ca")
        );
        let both = sidecar_args(
            &[ListenAddr::socket()],
            SidecarOptions {
                secrets_stdin: true,
                upstream_ca: true,
            },
        );
        assert!(both.contains(&"--secrets-stdin".to_owned()));
        let ca = both.iter().position(|a| a == "--upstream-ca").unwrap();
        assert_eq!(both[ca + 1], UPSTREAM_CA_PATH);
        assert!(!Path::new(UPSTREAM_CA_PATH).starts_with(ALLOWLIST_DIR));
    }

    #[test]
    fn secret_grants_never_show_their_value_in_debug() {
        let grant = SecretGrant {
            name: "ANTHROPIC_API_KEY".into(),
            placeholder: placeholder("ANTHROPIC_API_KEY", &"0".repeat(32)),
            value: "sk-ant-very-secret".into(),
            hosts: vec!["api.anthropic.com".into()],
        };
        let debug = format!("{grant:?} {grant:#?}");
        assert!(!debug.contains("sk-ant-very-secret"), "{debug}");
        assert!(debug.contains("ANTHROPIC_API_KEY") && debug.contains("<redacted>"));
        let json = serde_json::to_string(&[&grant]).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<SecretGrant>>(&json).unwrap(),
            [grant]
        );
        let unknown = r#"[{"name":"A","placeholder":"p","value":"v","hosts":[],"extra":1}]"#;
        assert!(serde_json::from_str::<Vec<SecretGrant>>(unknown).is_err());
    }

    #[test]
    fn placeholders_are_recognisable_and_carry_the_name() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            placeholder("OPENAI_API_KEY", hex),
            format!("agent-sandbox-secret-OPENAI_API_KEY-{hex}")
        );
        assert!(placeholder("X", hex).starts_with(PLACEHOLDER_PREFIX));
    }

    #[test]
    fn the_ca_is_the_last_certificate_before_the_ready_line() {
        let pem = |body: &str| {
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
        };
        let output = format!("{}{}{READY_LINE}\n{}", pem("old"), pem("run"), pem("later"));
        assert_eq!(ca_from_output(&output), Some(pem("run")));
        let crlf = format!("{}{READY_LINE}\r\n", pem("run"));
        assert_eq!(ca_from_output(&crlf), Some(pem("run")));
        // Not ready yet, no certificate, a truncated one, a line that only starts like it.
        assert_eq!(ca_from_output(&pem("run")), None);
        assert_eq!(ca_from_output(&format!("{READY_LINE}\n")), None);
        let truncated = format!("-----BEGIN CERTIFICATE-----\nrun\n{READY_LINE}\n");
        assert_eq!(ca_from_output(&truncated), None);
        let lookalike = format!("{}{READY_LINE} soon\n", pem("run"));
        assert_eq!(ca_from_output(&lookalike), None);
    }

    #[test]
    fn secrets_report_round_trips_through_json() {
        let report = SecretsReport {
            secrets: vec![SecretUse {
                name: "A".into(),
                added: 3,
            }],
            strays: vec![StrayPlaceholder {
                name: "A".into(),
                host: "gist.github.com".into(),
                count: 1,
            }],
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains(r#""host":"gist.github.com","count":1"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<SecretsReport>(&json).unwrap(),
            report
        );
    }
}
