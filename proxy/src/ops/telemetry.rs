//! Metrics (Prometheus text format) and the denied-destination record.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ops::denied::DeniedLog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    decision: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// A limit that refused or cut off a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// The connection cap (503).
    Connections,
    /// The request head size (431).
    HeadSize,
    /// The request head read timeout.
    HeaderTimeout,
    /// A tunnel's idle timeout.
    IdleTimeout,
}

/// Every metric the proxy exports, and the denied-destination record.
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    active_tunnels: Gauge,
    bytes: Family<DirectionLabels, Counter>,
    connect_seconds: Histogram,
    reloads: Family<ResultLabels, Counter>,
    limits: Family<LimitLabels, Counter>,
    policy_generation: Gauge,
    policy_entries: Gauge,
    /// Denied destinations with counts.
    pub(crate) denied: DeniedLog,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sandbox_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        let active_tunnels = Gauge::default();
        let bytes = Family::<DirectionLabels, Counter>::default();
        let connect_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let reloads = Family::<ResultLabels, Counter>::default();
        let limits = Family::<LimitLabels, Counter>::default();
        let policy_generation = Gauge::default();
        let policy_entries = Gauge::default();
        registry.register(
            "requests",
            "Requests by method, decision and reason",
            requests.clone(),
        );
        registry.register(
            "active_tunnels",
            "Open CONNECT tunnels",
            active_tunnels.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Bytes relayed, by direction (up: client to upstream)",
            bytes.clone(),
        );
        registry.register(
            "upstream_connect_seconds",
            "Time to resolve and connect to an upstream",
            connect_seconds.clone(),
        );
        registry.register("reloads", "Policy reloads by result", reloads.clone());
        registry.register(
            "limit_hits",
            "Clients refused or cut off by a limit",
            limits.clone(),
        );
        registry.register(
            "policy_generation",
            "Generation of the policy in force",
            policy_generation.clone(),
        );
        registry.register(
            "policy_entries",
            "Entries in the policy in force",
            policy_entries.clone(),
        );
        Telemetry {
            registry,
            requests,
            active_tunnels,
            bytes,
            connect_seconds,
            reloads,
            limits,
            policy_generation,
            policy_entries,
            denied: DeniedLog::default(),
        }
    }
}

impl Telemetry {
    /// Counts one decided request and the bytes it moved.
    pub(crate) fn request(
        &self,
        method: &str,
        decision: &'static str,
        reason: &'static str,
        up: u64,
        down: u64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                decision,
                reason,
            })
            .inc();
        if up > 0 {
            self.bytes
                .get_or_create(&DirectionLabels { direction: "up" })
                .inc_by(up);
        }
        if down > 0 {
            self.bytes
                .get_or_create(&DirectionLabels { direction: "down" })
                .inc_by(down);
        }
    }

    /// A tunnel opened (`true`) or closed (`false`).
    pub(crate) fn tunnel(&self, open: bool) {
        if open {
            self.active_tunnels.inc();
        } else {
            self.active_tunnels.dec();
        }
    }

    /// Observes the time an upstream connect took.
    pub(crate) fn connected(&self, elapsed: Duration) {
        self.connect_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a reload attempt.
    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a limit hit.
    pub(crate) fn limit(&self, hit: LimitHit) {
        let limit = match hit {
            LimitHit::Connections => "connections",
            LimitHit::HeadSize => "head-size",
            LimitHit::HeaderTimeout => "header-timeout",
            LimitHit::IdleTimeout => "idle-timeout",
        };
        self.limits.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Records the policy now in force.
    pub(crate) fn policy(&self, generation: u64, entries: usize) {
        self.policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.policy_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// The metrics in Prometheus text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A bounded label value for a request method (unknown methods share one label).
fn method_label(method: &str) -> &'static str {
    match method {
        "CONNECT" => "CONNECT",
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prometheus_text_with_labels() {
        let telemetry = Telemetry::default();
        telemetry.request("CONNECT", "deny", "not-allowlisted", 0, 0);
        telemetry.request("BREW", "allow", "", 10, 20);
        telemetry.tunnel(true);
        telemetry.limit(LimitHit::Connections);
        let text = telemetry.encode();
        assert!(text.contains(
            "sandbox_proxy_requests_total{method=\"CONNECT\",decision=\"deny\",reason=\"not-allowlisted\"} 1"
        ), "{text}");
        assert!(text.contains("method=\"other\""), "{text}");
        assert!(text.contains("sandbox_proxy_active_tunnels 1"), "{text}");
        assert!(
            text.contains("sandbox_proxy_relayed_bytes_total{direction=\"down\"} 20"),
            "{text}"
        );
        assert!(
            text.contains("sandbox_proxy_limit_hits_total{limit=\"connections\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
