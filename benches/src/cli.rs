//! Command-line interface of `loadgen`: flags parsed into the contexts the tests run in.

use std::{io::Write, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::info;

use crate::{
    Error, Process, Route, Target, TestName, Window, allowlist, read_records, report,
    scenario::{self, Context},
    upstream,
};

/// Load generator comparing sandbox-proxy with tinyproxy, Squid and the direct path.
/// Loopback only; every test is bounded in time and connections.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the loopback upstreams (TCP echo and HTTP) until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Run tests against one system and print one JSON record per measurement.
    Run(RunArgs),
    /// Write an allowlist in sandbox-proxy, tinyproxy and Squid formats.
    Allowlist(AllowlistArgs),
    /// Print the comparison table of JSON-lines result files.
    Report(ReportArgs),
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the TCP echo server (loopback).
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub echo: SocketAddr,
    /// Address of the HTTP server (loopback).
    #[arg(long, default_value = "127.0.0.1:9002")]
    pub http: SocketAddr,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Label of the system in the results.
    #[arg(long)]
    pub system: String,
    /// Address of the proxy (loopback); without it, the direct path is measured.
    #[arg(long)]
    pub proxy: Option<SocketAddr>,
    /// PID of the proxy process, for its CPU time and RSS.
    #[arg(long, requires = "proxy")]
    pub pid: Option<u32>,
    /// Tests to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,tunnel,setup,http-keepalive,http-close,deny"
    )]
    pub tests: Vec<TestName>,
    /// Port of the echo upstream on 127.0.0.1.
    #[arg(long, default_value_t = 9001)]
    pub echo_port: u16,
    /// Port of the HTTP upstream on 127.0.0.1.
    #[arg(long, default_value_t = 9002)]
    pub http_port: u16,
    /// Name under which the proxy reaches the echo upstream.
    #[arg(long, default_value = "echo.bench.test")]
    pub echo_host: String,
    /// Name under which the proxy reaches the HTTP upstream.
    #[arg(long, default_value = "http.bench.test")]
    pub http_host: String,
    /// A name outside the allowlist.
    #[arg(long, default_value = "denied.bench.test")]
    pub denied_host: String,
    /// Measured window of each test.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Bound on one operation; slower ones count as errors.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub op_timeout: Duration,
    /// Allowlist size the proxy runs with (label of the filter test).
    #[arg(long, default_value_t = 1)]
    pub entries: u32,
    /// Idle tunnels at which the memory test reads the RSS.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub idle_tunnels: Vec<u32>,
}

/// Flags of `allowlist`.
#[derive(Debug, Args)]
pub struct AllowlistArgs {
    /// Number of entries; filler entries come first, the hits last.
    #[arg(long)]
    pub entries: usize,
    /// Entries that the tests hit (sandbox-proxy syntax), repeatable.
    #[arg(long = "hit", required = true)]
    pub hits: Vec<String>,
    /// Directory for allowlist.txt, tinyproxy.filter and squid.domains.
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// Flags of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON-lines files written by `run`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Refuses any address that is not on loopback.
fn loopback(addr: SocketAddr) -> Result<SocketAddr, Error> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(Error::NotLoopback { addr })
    }
}

impl TryFrom<&RunArgs> for Context {
    type Error = Error;

    fn try_from(args: &RunArgs) -> Result<Self, Error> {
        let target = |host: &String, port| Target {
            host: host.clone(),
            port,
        };
        Ok(Context {
            system: args.system.clone(),
            route: args
                .proxy
                .map(loopback)
                .transpose()?
                .map_or(Route::Direct, Route::Proxy),
            process: args.pid.map(Process::new),
            echo: target(&args.echo_host, args.echo_port),
            http: target(&args.http_host, args.http_port),
            denied: target(&args.denied_host, args.echo_port),
            window: Window {
                duration: args.window,
                op_timeout: args.op_timeout,
            },
            entries: args.entries,
            idle_tunnels: args.idle_tunnels.clone(),
        })
    }
}

/// Runs the command, writing results to `out`.
pub async fn execute(command: Command, out: &mut impl Write) -> Result<(), Error> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Run(args) => {
            let ctx = Context::try_from(&args)?;
            for test in args.tests {
                info!(system = %ctx.system, ?test, "running");
                for record in scenario::run(&ctx, test).await? {
                    serde_json::to_writer(&mut *out, &record)
                        .map_err(std::io::Error::from)
                        .map_err(Error::io("write record"))?;
                    writeln!(out).map_err(Error::io("write record"))?;
                    out.flush().map_err(Error::io("write record"))?;
                }
            }
            Ok(())
        }
        Command::Allowlist(args) => {
            let hits: Vec<_> = args
                .hits
                .iter()
                .map(|h| allowlist::Entry::parse(h))
                .collect();
            allowlist::write_all(&args.out_dir, &allowlist::build(args.entries, &hits))
        }
        Command::Report(args) => {
            let mut records = Vec::new();
            for file in &args.files {
                records.extend(read_records(file)?);
            }
            out.write_all(report::render(&records).as_bytes())
                .map_err(Error::io("write table"))
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Error> {
    let echo = TcpListener::bind(loopback(args.echo)?)
        .await
        .map_err(Error::io("bind echo"))?;
    let http = TcpListener::bind(loopback(args.http)?)
        .await
        .map_err(Error::io("bind http"))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::io("install SIGTERM handler"))?;
    info!(echo = %args.echo, http = %args.http, "serving upstreams");
    tokio::select! {
        r = upstream::serve_echo(echo) => r,
        r = upstream::serve_http(http) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_defaults_measure_the_direct_path_with_every_main_test() {
        let cli = Cli::try_parse_from(["loadgen", "run", "--system", "direct"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let ctx = Context::try_from(&args).unwrap();
        assert_eq!(ctx.route, Route::Direct);
        assert_eq!(ctx.echo.authority(), "echo.bench.test:9001");
        assert_eq!(args.tests.len(), 6);
        assert_eq!(ctx.window.duration, Duration::from_secs(3));
    }

    #[test]
    fn run_flags_are_parsed_into_the_context() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "--system",
            "squid",
            "--proxy",
            "127.0.0.1:3128",
            "--pid",
            "42",
            "--tests",
            "filter",
            "--entries",
            "1000",
            "--window",
            "500ms",
            "--idle-tunnels",
            "10,20",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let ctx = Context::try_from(&args).unwrap();
        assert_eq!(ctx.route, Route::Proxy("127.0.0.1:3128".parse().unwrap()));
        assert_eq!(args.tests, [TestName::Filter]);
        assert_eq!((ctx.entries, ctx.idle_tunnels), (1000, vec![10, 20]));
        assert_eq!(ctx.window.duration, Duration::from_millis(500));
    }

    #[test]
    fn a_proxy_off_loopback_is_refused() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "--system",
            "x",
            "--proxy",
            "10.0.0.1:3128",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let err = Context::try_from(&args).unwrap_err();
        assert!(matches!(err, Error::NotLoopback { .. }), "{err}");
    }

    #[test]
    fn a_pid_without_a_proxy_or_an_unknown_test_is_refused() {
        assert!(Cli::try_parse_from(["loadgen", "run", "--system", "x", "--pid", "1"]).is_err());
        assert!(
            Cli::try_parse_from(["loadgen", "run", "--system", "x", "--tests", "nope"]).is_err()
        );
    }
}
