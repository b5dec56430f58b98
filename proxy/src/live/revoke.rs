//! Revocation: long-lived connections re-check themselves whenever the policy changes.

use std::net::SocketAddr;
use std::sync::Arc;

use sandbox_policy::{Host, Policy};
use tokio::sync::watch;

/// Completes with the first new policy that no longer allows `host:port` at `address`;
/// never completes while every new policy still allows it.
pub(crate) async fn revoked(
    mut changes: watch::Receiver<Arc<Policy>>,
    host: &Host,
    port: u16,
    address: SocketAddr,
) -> Arc<Policy> {
    // Only replacements after the connection was allowed count.
    changes.mark_unchanged();
    loop {
        if changes.changed().await.is_err() {
            // The store is gone (shutdown): nothing can revoke any more.
            std::future::pending::<()>().await;
        }
        let policy = changes.borrow_and_update().clone();
        if !policy.still_allows(host, port, address.ip()) {
            log_revocation(&policy, host, port, address, "tunnel");
            return policy;
        }
    }
}

/// Logs that a connection is being closed because `policy` revoked its access.
pub(crate) fn log_revocation(
    policy: &Policy,
    host: &Host,
    port: u16,
    address: SocketAddr,
    kind: &str,
) {
    tracing::warn!(
        host = %host,
        port,
        address = %address,
        connection = kind,
        policy_generation = policy.generation(),
        policy_sha256 = policy.sha256(),
        "access revoked by a policy reload: closing the connection"
    );
}
