//! Running the proxy server from a validated configuration.

use std::io::Write;
use std::sync::Arc;

use sandbox_policy::{
    LoadError, Policy,
    protocol::{self, ListenAddr},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cmd::config::ServeConfig;
use crate::cmd::exit::Exit;
use crate::live::PolicyStore;
use crate::live::reload::{ReloadStatus, Reloader};
use crate::net::dial::{Dialer, OwnAddresses};
use crate::net::listen::Listener;
use crate::net::resolve::{ResolveError, Resolver};
use crate::ops::admin::{self, AdminState};
use crate::ops::telemetry::Telemetry;
use crate::secrets::{Secrets, SecretsError};
use crate::server::Server;
use crate::server::intercept::{InterceptError, Interceptor};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The allowlist could not be loaded; the proxy never starts without a valid one.
    #[error(transparent)]
    Allowlist(#[from] LoadError),
    /// A listening address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        address: ListenAddr,
        #[source]
        source: std::io::Error,
    },
    /// The system resolver could not be set up.
    #[error(transparent)]
    Resolver(#[from] ResolveError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// The secrets on stdin are invalid.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// Decryption of the secrets' hosts could not be set up.
    #[error(transparent)]
    Interception(#[from] InterceptError),
    /// The management address could not be bound.
    #[error("cannot listen on the management address {address}")]
    Admin {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl ServeError {
    /// The exit code for this failure.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ServeError::Allowlist(_) => Exit::InvalidAllowlist,
            ServeError::Listen { .. } | ServeError::Admin { .. } => Exit::Listen,
            ServeError::Resolver(_) => Exit::Resolver,
            ServeError::Secrets(_) | ServeError::Interception(_) => Exit::InvalidSecrets,
            ServeError::Signals(_) => Exit::Internal,
        }
    }
}

/// Reads the secrets (stdin, to its end), loads the policy, binds every listener,
/// announces readiness on stdout (after the run's CA certificate, when there are
/// secrets), and serves until SIGTERM or SIGINT, reloading the policy on SIGHUP and
/// file changes.
pub(crate) async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let secrets = Arc::new(if config.secrets_stdin {
        Secrets::read(std::io::stdin().lock())?
    } else {
        Secrets::default()
    });
    let interceptor = Interceptor::new(secrets.clone(), config.upstream_ca.as_deref())?;
    let policy = Policy::load(&config.policy.allowlist, &config.policy.options, 1)?;
    tracing::info!(
        allowlist = %config.policy.allowlist.display(),
        entries = policy.allowlist().len(),
        policy_generation = policy.generation(),
        policy_sha256 = policy.sha256(),
        "policy loaded"
    );
    crate::ops::lint::log_findings(&config.policy.allowlist, policy.allowlist());
    for port in config.raw_default_ports() {
        tracing::warn!(
            port,
            "--ports allows this port for every entry, but it is in neither --http-ports nor \
             --sni-ports: tunnels to it are raw, unchecked byte streams"
        );
    }
    let telemetry = Arc::new(Telemetry::default());
    telemetry.policy(policy.generation(), policy.allowlist().len());
    let resolver = Resolver::system(config.pins)?;
    let mut listeners = Vec::with_capacity(config.listen.len());
    for address in &config.listen {
        let listener = Listener::bind(address)
            .await
            .map_err(|source| ServeError::Listen {
                address: address.clone(),
                source,
            })?;
        match listener.local_tcp_addr() {
            Some(bound) => tracing::info!(address = %bound, "listening"),
            None => tracing::info!(%address, "listening"),
        }
        listeners.push(listener);
    }
    let store = PolicyStore::new(policy);
    let reloads = Arc::new(ReloadStatus::default());
    let background = CancellationToken::new();
    let _stop_background = background.clone().drop_guard();
    let mut own = OwnAddresses::new(
        listeners
            .iter()
            .filter_map(Listener::local_tcp_addr)
            .collect(),
    );
    if let Some(address) = config.admin {
        let admin = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Admin { address, source })?;
        let bound = admin.local_addr().unwrap_or(address);
        // The management endpoints are as much the proxy's own as its listeners.
        own.add(bound);
        tracing::info!(address = %bound, "management listening");
        let state = Arc::new(AdminState {
            secrets: secrets.clone(),
            policy: store.clone(),
            telemetry: telemetry.clone(),
            reloads: reloads.clone(),
            source: config.policy.allowlist.clone(),
        });
        tokio::spawn(admin::serve(admin, state, background.clone()));
    }
    let reloader = Reloader::new(
        config.policy.allowlist.clone(),
        config.policy.options.clone(),
        store.clone(),
        telemetry.clone(),
        reloads,
    );
    reloader.spawn(background.clone());
    let dialer = Dialer::new(resolver, config.limits.connect_timeout, own);
    if let Some(interceptor) = &interceptor {
        let names: Vec<&str> = secrets.names().collect();
        tracing::info!(
            secrets = names.join(","),
            hosts = secrets
                .hosts()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            "secrets received; tunnels to their hosts are decrypted with the run's CA"
        );
        print_ca(&interceptor.ca_pem());
    }
    let server = Server::with_secrets(
        store,
        dialer,
        config.limits,
        telemetry,
        secrets,
        interceptor,
    );
    // Handlers are installed before readiness is announced, so a supervisor may stop
    // the proxy as soon as it is ready.
    let shutdown = shutdown_signal()?;
    announce_ready();
    server.run(listeners, shutdown).await;
    Ok(())
}

/// Prints the run's CA certificate on stdout, where the launcher reads it
/// (`protocol::ca_from_output`).
fn print_ca(pem: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{}", pem.trim_end());
    let _ = writeln!(stdout);
}

/// Tells a supervisor (the launcher follows our stdout) that the proxy accepts requests.
fn announce_ready() {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", protocol::READY_LINE);
    let _ = stdout.flush();
}

/// A future completing on SIGTERM or SIGINT (handlers installed now).
fn shutdown_signal() -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
