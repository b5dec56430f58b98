//! The command line, as parsed by clap (raw; validated into [`crate::config`] types).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::listen::ListenAddr;
use crate::logging::LogFormat;

const EXAMPLES: &str = "\
Examples:
  sandbox-proxy --allowlist examples/allowed_domains.txt
  sandbox-proxy --allowlist allow.txt --listen 0.0.0.0:8888 --listen unix:/run/sandbox/proxy.sock
  sandbox-proxy --allowlist allow.txt --ports 80,443,8443 --log-format json
  sandbox-proxy check --allowlist allow.txt github.com api.github.com:22 evil.example
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
    after_help = format!("{EXAMPLES}\n{}", crate::exit::EXIT_CODES_HELP),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A subcommand; without one, the proxy serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the proxy server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an allowlist and show the decision for each TARGET (host or host:port).
    Check(CheckArgs),
    /// Explain each TARGET's decision: entry and line, port, resolved addresses and
    /// their class (resolves, never connects).
    Explain(ExplainArgs),
}

/// Options shared by everything that compiles an allowlist.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The allowlist file.
    #[arg(long, value_name = "FILE", required = true)]
    pub allowlist: Option<PathBuf>,
    /// Ports allowed for entries written without a port.
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "80,443"
    )]
    pub ports: Vec<u16>,
    /// Let wildcard entries reach private, loopback and link-local addresses too
    /// (exact entries always may).
    #[arg(long)]
    pub allow_private: bool,
}

/// Options of the proxy server.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Address to listen on: IP:PORT, [IPv6]:PORT or unix:/PATH (repeatable).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    pub listen: Vec<ListenAddr>,
    /// Answer NAME with ADDR instead of asking DNS, like curl's --resolve (repeatable).
    /// The address guard still applies.
    #[arg(long = "resolve", value_name = "NAME=ADDR[,ADDR...]")]
    pub resolve: Vec<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Time allowed for a client to send a request head.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Largest request head accepted, in bytes (431 beyond; at least 8192).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Time allowed to resolve and connect to an upstream (504 beyond).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Close a tunnel after this long without traffic either way.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Maximum concurrent client connections (503 beyond).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// How long shutdown waits for open connections before closing them.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Require the TLS server name of tunnels to --sni-ports to be the CONNECT host.
    /// The ClientHello is read, never decrypted, within --header-read-timeout; a refused
    /// tunnel is closed before a single byte reaches the (already connected) upstream.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    pub sni_check: Switch,
    /// Tunnel ports that must carry TLS with a matching server name.
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "443"
    )]
    pub sni_ports: Vec<u16>,
}

/// Options of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Answer NAME with ADDR instead of asking DNS, as the server's --resolve does
    /// (repeatable).
    #[arg(long = "resolve", value_name = "NAME=ADDR[,ADDR...]")]
    pub resolve: Vec<String>,
    /// Targets to explain: host or host:port (port 443 when omitted).
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
}

/// An on/off flag value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Allowlist and address policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Targets to decide: host or host:port (port 443 when omitted).
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
}
