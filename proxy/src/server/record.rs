//! One structured log line per decision, emitted when the request or tunnel ends.
//!
//! A [`DecisionRecord`] is filled in as a request proceeds and written when it is dropped,
//! so every path (allowed, denied, failed, client gone mid-transfer) logs exactly once,
//! with the bytes moved and the policy generation and digest that decided.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::Method;
use sandbox_policy::Policy;

use super::request::Target;
use crate::net::tunnel::{Transferred, TunnelEnd};
use crate::ops::telemetry::Telemetry;
use crate::secrets::substitute::Marks;

/// Who sent a request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Client {
    Tcp(SocketAddr),
    /// A peer on a Unix socket listener.
    Unix,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Allowed by the policy and forwarded.
    Allowed,
    /// Refused by policy, with the reason code.
    Denied(&'static str),
    /// Allowed but failed, or malformed, with the reason code.
    Failed(&'static str),
}

/// The fields of one decision log line.
pub(crate) struct DecisionRecord {
    started: Instant,
    client: Client,
    method: Method,
    policy: Arc<Policy>,
    telemetry: Arc<Telemetry>,
    /// The validated target, once known.
    pub(crate) target: Option<Target>,
    pub(crate) outcome: Outcome,
    /// The deciding allowlist entry and its line.
    pub(crate) entry: Option<(Box<str>, u32)>,
    /// The upstream address dialed.
    pub(crate) address: Option<SocketAddr>,
    /// The HTTP status returned to the client.
    pub(crate) status: u16,
    /// Bytes moved each way.
    pub(crate) transferred: Transferred,
    /// How the tunnel ended (CONNECT only).
    pub(crate) tunnel_end: Option<TunnelEnd>,
    /// What exactly was wrong, for refusals whose reason code is not the whole story.
    pub(crate) detail: Option<String>,
    /// The secrets added to the request, and those whose placeholder it carried to a
    /// host not bound to them.
    secrets: Marks,
}

impl DecisionRecord {
    /// Starts a record for a request decided under `policy`, counted in `telemetry`.
    pub(crate) fn new(
        client: Client,
        method: Method,
        policy: Arc<Policy>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        DecisionRecord {
            started: Instant::now(),
            client,
            method,
            policy,
            telemetry,
            target: None,
            outcome: Outcome::Failed("incomplete"),
            entry: None,
            address: None,
            status: 0,
            transferred: Transferred::default(),
            tunnel_end: None,
            detail: None,
            secrets: Marks::default(),
        }
    }

    /// The policy deciding this request.
    pub(crate) fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Makes `policy` the one deciding this request (a newer snapshot than the one it
    /// started with).
    pub(crate) fn decided_by(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
    }

    /// Who sent the request.
    pub(crate) fn client(&self) -> Client {
        self.client
    }

    /// Records the secrets the request carried (names only).
    pub(crate) fn mark_secrets(&mut self, marks: Marks) {
        self.secrets = marks;
    }

    /// The names of the secrets added to the request.
    pub(crate) fn secrets_added(&self) -> &[String] {
        &self.secrets.added
    }

    /// Records how a tunnel ended and what it moved.
    pub(crate) fn tunnel_ended(&mut self, end: TunnelEnd, transferred: Transferred) {
        self.tunnel_end = Some(end);
        self.transferred = transferred;
    }
}

impl Drop for DecisionRecord {
    fn drop(&mut self) {
        let (decision, reason) = match self.outcome {
            Outcome::Allowed => ("allow", ""),
            Outcome::Denied(code) => ("deny", code),
            Outcome::Failed(code) => ("error", code),
        };
        let port = self.target.as_ref().map_or(0, |target| target.port);
        let host = || {
            self.target
                .as_ref()
                .map_or(String::new(), |target| target.host.to_string())
        };
        self.telemetry.request(
            self.method.as_str(),
            decision,
            reason,
            self.transferred.up,
            self.transferred.down,
        );
        if let Outcome::Denied(code) = self.outcome {
            self.telemetry.denied.record(&host(), port, code);
        }
        // The strings below cost three allocations and formatting per request; skip
        // them when the decision line is filtered out (RUST_LOG=warn).
        if !tracing::enabled!(target: "sandbox_proxy::decision", tracing::Level::INFO) {
            return;
        }
        let client = match self.client {
            Client::Tcp(address) => address.to_string(),
            Client::Unix => "unix".to_owned(),
        };
        let host = host();
        let (entry, line) = self
            .entry
            .as_ref()
            .map_or(("", 0), |(text, line)| (&**text, *line));
        let address = self.address.map(|address| address.to_string());
        tracing::info!(
            target: "sandbox_proxy::decision",
            client,
            method = %self.method,
            host,
            port,
            decision,
            reason,
            entry,
            line,
            address = address.as_deref().unwrap_or(""),
            status = self.status,
            bytes_up = self.transferred.up,
            bytes_down = self.transferred.down,
            end = self.tunnel_end.map_or("", TunnelEnd::as_str),
            detail = self.detail.as_deref().unwrap_or(""),
            // Secrets count as added once the request went out.
            secrets = if self.outcome == Outcome::Allowed {
                self.secrets.added.join(",")
            } else {
                String::new()
            },
            stray_placeholders = self.secrets.strays.join(","),
            duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            policy_generation = self.policy.generation(),
            policy_sha256 = self.policy.sha256(),
            "decision"
        );
    }
}
