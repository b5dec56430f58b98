//! Running the proxy server from a validated configuration.

use std::io::Write;

use crate::allowlist::LoadError;
use crate::config::ServeConfig;
use crate::dial::{Dialer, OwnAddresses};
use crate::exit::Exit;
use crate::listen::{ListenAddr, Listener};
use crate::policy::Policy;
use crate::resolve::{ResolveError, Resolver};
use crate::server::Server;
use crate::store::PolicyStore;

/// The line written to stdout once every listener is bound and the policy is loaded.
pub const READY_LINE: &str = "sandbox-proxy ready";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The allowlist could not be loaded; the proxy never starts without a valid one.
    #[error(transparent)]
    Allowlist(#[from] LoadError),
    /// A listening address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: ListenAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The system resolver could not be set up.
    #[error(transparent)]
    Resolver(#[from] ResolveError),
}

impl ServeError {
    /// The exit code for this failure.
    pub fn exit(&self) -> Exit {
        match self {
            ServeError::Allowlist(_) => Exit::InvalidAllowlist,
            ServeError::Listen { .. } => Exit::Listen,
            ServeError::Resolver(_) => Exit::Resolver,
        }
    }
}

/// Loads the policy, binds every listener, announces readiness on stdout, and serves
/// until SIGTERM or SIGINT.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let policy = Policy::load(&config.policy.allowlist, &config.policy.options, 1)?;
    tracing::info!(
        allowlist = %config.policy.allowlist.display(),
        entries = policy.allowlist().len(),
        policy_generation = policy.generation(),
        policy_sha256 = policy.sha256(),
        "policy loaded"
    );
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
    let own = OwnAddresses::new(
        listeners
            .iter()
            .filter_map(Listener::local_tcp_addr)
            .collect(),
    );
    let dialer = Dialer::new(resolver, config.limits.connect_timeout, own);
    let server = Server::new(PolicyStore::new(policy), dialer, config.limits);
    announce_ready();
    server.run(listeners, shutdown_signal()).await;
    Ok(())
}

/// Tells a supervisor (the launcher follows our stdout) that the proxy accepts requests.
fn announce_ready() {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{READY_LINE}");
    let _ = stdout.flush();
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop the proxy with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
