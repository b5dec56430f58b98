//! `sandbox-proxy`: a default-deny allowlist forward proxy for sandboxed coding agents.
