//! Operating the proxy: the [`admin`] listener and its [`admin_client`], the metrics of
//! [`telemetry`], the [`denied`] record, and the allowlist's [`lint`] findings.

pub(crate) mod admin;
pub(crate) mod admin_client;
pub(crate) mod denied;
pub(crate) mod lint;
pub mod telemetry;
