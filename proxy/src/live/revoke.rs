//! Revocation: long-lived connections re-check themselves whenever the policy changes.
//!
//! A connection subscribes to changes before the policy decides on it (the receiver
//! then holds the deciding policy as seen), so a replacement that lands while it is
//! being dialed counts as well as any later one.

use std::net::SocketAddr;
use std::sync::Arc;

use sandbox_policy::{Denial, Host, Policy};
use tokio::sync::watch;

/// Re-decides `host:port` at `address` under the newest policy, if one replaced the
/// policy `changes` last saw; the denial when the newest policy refuses it.
pub(crate) fn recheck(
    changes: &mut watch::Receiver<Arc<Policy>>,
    host: &Host,
    port: u16,
    address: SocketAddr,
) -> Result<(), Denial> {
    if !changes.has_changed().unwrap_or(false) {
        return Ok(());
    }
    let policy = changes.borrow_and_update().clone();
    policy
        .check_target(host, port)
        .and_then(|permit| policy.check_address(&permit, host, port, address.ip()))
        .map(drop)
}

/// Completes with the first policy, after the one `changes` last saw, that no longer
/// allows `host:port` at `address`; never completes while every new policy allows it.
pub(crate) async fn revoked(
    mut changes: watch::Receiver<Arc<Policy>>,
    host: &Host,
    port: u16,
    address: SocketAddr,
) -> Arc<Policy> {
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
