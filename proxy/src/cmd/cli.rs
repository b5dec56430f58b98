//! The command line, as parsed by clap (raw; validated into [`crate::cmd::config`] types).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sandbox_policy::protocol::{self, ListenAddr};

use crate::cmd::logging::LogFormat;

const EXAMPLES: &str = "\
Examples:
  sandbox-proxy --allowlist examples/allowed_domains.txt
  sandbox-proxy --allowlist allow.txt --listen 0.0.0.0:8888 --listen unix:/run/sandbox/proxy.sock
  sandbox-proxy --allowlist allow.txt --ports 80,443,8443 --log-format json
  sandbox-proxy check --allowlist allow.txt github.com api.github.com:22 evil.example
  sandbox-proxy healthcheck --admin 127.0.0.1:9901
  kill -HUP $(pidof sandbox-proxy)      # reload the allowlist (it is also watched)
  sandbox-proxy explain --allowlist allow.txt api.github.com host.docker.internal:8080

Allowlist format (one entry per line, `#` starts a comment):
  example.com        that host only
  *.example.com      example.com itself AND every subdomain at any depth
  example.com:8443   that host, port 8443 only (entries without a port allow --ports)
  10.0.0.5, [::1]    IP literals, matched exactly
";

/// `sandbox-proxy`: a default-deny allowlist forward proxy.
#[derive(Debug, Parser)]
#[command(
    name = "sandbox-proxy",
    version,
    about = "A default-deny allowlist HTTP forward proxy for sandboxed coding agents",
    after_help = format!("{EXAMPLES}\n{}", crate::cmd::exit::EXIT_CODES_HELP),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A subcommand; without one, the proxy serves.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Options of the proxy server.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate an allowlist and show the decision for each TARGET (host or host:port).
    Check(CheckArgs),
    /// Explain each TARGET's decision: entry and line, port, resolved addresses and
    /// their class (resolves, never connects).
    Explain(ExplainArgs),
    /// Exit 0 when the proxy's /readyz answers 200 (for a Docker HEALTHCHECK).
    Healthcheck(AdminArgs),
    /// Print the destinations the proxy denied, as JSON.
    Denied(AdminArgs),
    /// Print how often each secret was added and the placeholders seen going to other
    /// hosts, as JSON.
    Secrets(AdminArgs),
    /// Run CMD as a minimal init, relaying a loopback port to the proxy's socket.
    Relay(RelayArgs),
    /// Copy stdin to a TCP connection and the connection to stdout (the launcher's
    /// login-callback forwarding, run in the agent container).
    Pipe(PipeArgs),
}

/// Options of `pipe`.
#[derive(Debug, Args)]
pub(crate) struct PipeArgs {
    /// Where to connect, tried in order until one accepts.
    #[arg(required = true, value_name = "ADDR")]
    pub(crate) connect: Vec<SocketAddr>,
}

/// Where the management listener is.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The proxy's management address.
    #[arg(long, value_name = "ADDR", default_value = protocol::ADMIN_ADDRESS)]
    pub(crate) admin: SocketAddr,
    /// How long to wait for an answer.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

/// Options of `relay`.
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// Loopback address the agent's HTTP(S)_PROXY points at.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    pub(crate) listen: SocketAddr,
    /// The proxy: unix:/PATH (or IP:PORT).
    #[arg(long, value_name = "ADDR")]
    pub(crate) connect: ListenAddr,
    /// The command to run, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// The server's `--admin ADDR`, or `off` for no management listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdminAddr(pub Option<SocketAddr>);

impl std::str::FromStr for AdminAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(AdminAddr(None));
        }
        text.parse()
            .map(|address| AdminAddr(Some(address)))
            .map_err(|_| format!("{text:?} is not IP:PORT or off"))
    }
}

/// Options shared by everything that compiles an allowlist.
#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// The allowlist file.
    #[arg(long, value_name = "FILE", required = true)]
    pub(crate) allowlist: Option<PathBuf>,
    /// Ports allowed for entries written without a port.
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "80,443"
    )]
    pub(crate) ports: Vec<u16>,
    /// Let wildcard entries reach private, loopback and link-local addresses too
    /// (exact entries always may).
    #[arg(long)]
    pub(crate) allow_private: bool,
}

/// Options of the proxy server.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Address to listen on: IP:PORT, [IPv6]:PORT or unix:/PATH (repeatable).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    pub(crate) listen: Vec<ListenAddr>,
    /// Answer NAME with ADDR instead of asking DNS, like curl's --resolve (repeatable).
    /// The address guard still applies.
    #[arg(long = "resolve", value_name = "NAME=ADDR[,ADDR...]")]
    pub(crate) resolve: Vec<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Management listener (/healthz, /readyz, /metrics, /denied), or `off`.
    #[arg(id = "serve_admin", long = "admin", value_name = "ADDR", default_value = protocol::ADMIN_ADDRESS)]
    pub(crate) admin: AdminAddr,
    /// Time allowed for a client to send a request head.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) header_read_timeout: Duration,
    /// Largest request head accepted, in bytes (431 beyond; at least 8192).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub(crate) max_header_bytes: usize,
    /// Time allowed to resolve and connect to an upstream (504 beyond).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// Close a tunnel after this long without traffic either way.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// Maximum concurrent client connections (503 beyond).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) max_connections: usize,
    /// How long shutdown waits for open connections before closing them.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) shutdown_grace: Duration,
    /// Worker threads; 1 (the default) runs everything on one thread, which costs the
    /// least CPU per request for a sidecar serving one sandbox.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: u16,
    /// Require the TLS server name of tunnels to --sni-ports to be the CONNECT host.
    /// The ClientHello is read, never decrypted, within --header-read-timeout; a refused
    /// tunnel is closed before a single byte reaches the (already connected) upstream.
    /// A hello offering Encrypted Client Hello (GREASE included) is refused: its real
    /// server name is hidden.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    pub(crate) sni_check: Switch,
    /// Tunnel ports that must carry TLS with a matching server name.
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "443"
    )]
    pub(crate) sni_ports: Vec<u16>,
    /// Tunnel ports served as HTTP: each request inside a CONNECT tunnel to these ports
    /// is checked and forwarded like a proxy request, to the CONNECT host only (another
    /// Host is refused with 403 host-mismatch). Allowed ports in neither --http-ports
    /// nor --sni-ports are raw byte tunnels.
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "80"
    )]
    pub(crate) http_ports: Vec<u16>,
    /// Read secrets from stdin before binding: a JSON array of
    /// `{"name", "placeholder", "value", "hosts"}`. CONNECTs to those hosts on
    /// --sni-ports are decrypted with a per-run CA (its certificate is printed before
    /// the ready line) and the placeholder is replaced by the value in request headers
    /// and query, towards those hosts only. Every other host is never decrypted.
    #[arg(long)]
    pub(crate) secrets_stdin: bool,
    /// PEM CA certificates trusted for upstreams of decrypted tunnels, besides the
    /// public roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) upstream_ca: Option<PathBuf>,
}

/// Options of `explain`.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Answer NAME with ADDR instead of asking DNS, as the server's --resolve does
    /// (repeatable).
    #[arg(long = "resolve", value_name = "NAME=ADDR[,ADDR...]")]
    pub(crate) resolve: Vec<String>,
    /// Targets to explain: host or host:port (port 443 when omitted).
    #[arg(value_name = "TARGET", required = true)]
    pub(crate) targets: Vec<String>,
}

/// An on/off flag value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Targets to decide: host or host:port (port 443 when omitted).
    #[arg(value_name = "TARGET", required = true)]
    pub(crate) targets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommands_parse_with_their_own_options() {
        let cli = Cli::try_parse_from(["sandbox-proxy", "healthcheck", "--admin", "127.0.0.1:1"])
            .unwrap();
        assert!(matches!(cli.command, Some(Command::Healthcheck(args)) if args.admin.port() == 1));
        let cli = Cli::try_parse_from([
            "sandbox-proxy",
            "relay",
            "--connect",
            "unix:/run/s.sock",
            "--",
            "pi",
            "--help",
        ])
        .unwrap();
        let Some(Command::Relay(relay)) = cli.command else {
            panic!("not relay")
        };
        assert_eq!(relay.command, ["pi", "--help"]);
        assert_eq!(relay.listen.port(), 8888);
        assert!(Cli::try_parse_from(["sandbox-proxy", "relay", "--connect", "unix:/s"]).is_err());
    }

    /// Parses a command built by [`protocol`], whose first word is the proxy binary.
    fn parse_protocol(command: &[String]) -> Cli {
        assert_eq!(command[0], protocol::PROXY_BINARY);
        Cli::try_parse_from(command).unwrap()
    }

    #[test]
    fn the_commands_the_launcher_builds_parse_as_it_means_them() {
        let tcp = ListenAddr::Tcp(([0, 0, 0, 0], protocol::PROXY_PORT).into());
        let sidecar: Vec<String> = std::iter::once(protocol::PROXY_BINARY.to_owned())
            .chain(protocol::sidecar_args(
                &[ListenAddr::socket(), tcp.clone()],
                protocol::SidecarOptions::default(),
            ))
            .collect();
        let cli = parse_protocol(&sidecar);
        assert!(cli.command.is_none());
        assert!(!cli.serve.secrets_stdin && cli.serve.upstream_ca.is_none());
        assert_eq!(
            cli.serve.policy.allowlist.as_deref(),
            Some(std::path::Path::new(protocol::ALLOWLIST_PATH))
        );
        assert_eq!(cli.serve.listen, [ListenAddr::socket(), tcp]);
        let admin: SocketAddr = protocol::ADMIN_ADDRESS.parse().unwrap();
        assert_eq!(cli.serve.admin, AdminAddr(Some(admin)));

        let agent = ["pi".to_owned(), "--help".to_owned()];
        let Some(Command::Relay(relay)) =
            parse_protocol(&protocol::relay_entrypoint(&agent)).command
        else {
            panic!("not relay")
        };
        assert_eq!(
            relay.listen,
            SocketAddr::from(([127, 0, 0, 1], protocol::PROXY_PORT))
        );
        assert_eq!(relay.connect, ListenAddr::socket());
        assert_eq!(relay.command, ["pi", "--help"]);

        let Some(Command::Denied(denied)) = parse_protocol(&protocol::denied_command()).command
        else {
            panic!("not denied")
        };
        assert_eq!(denied.admin, admin);
        let Some(Command::Secrets(secrets)) = parse_protocol(&protocol::secrets_command()).command
        else {
            panic!("not secrets")
        };
        assert_eq!(secrets.admin, admin);
        let Some(Command::Healthcheck(health)) =
            parse_protocol(&protocol::healthcheck_command()).command
        else {
            panic!("not healthcheck")
        };
        assert_eq!(health.admin, admin);

        let Some(Command::Pipe(pipe)) = parse_protocol(&protocol::pipe_command(1455)).command
        else {
            panic!("not pipe")
        };
        let loopbacks: Vec<SocketAddr> = vec![
            "127.0.0.1:1455".parse().unwrap(),
            "[::1]:1455".parse().unwrap(),
        ];
        assert_eq!(pipe.connect, loopbacks);
    }

    #[test]
    fn the_secret_flags_the_launcher_adds_parse_as_it_means_them() {
        let options = protocol::SidecarOptions {
            secrets_stdin: true,
            upstream_ca: true,
        };
        let sidecar: Vec<String> = std::iter::once(protocol::PROXY_BINARY.to_owned())
            .chain(protocol::sidecar_args(&[ListenAddr::socket()], options))
            .collect();
        let cli = parse_protocol(&sidecar);
        assert!(cli.serve.secrets_stdin);
        assert_eq!(
            cli.serve.upstream_ca.as_deref(),
            Some(std::path::Path::new(protocol::UPSTREAM_CA_PATH))
        );
    }
}
