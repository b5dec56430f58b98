//! Decrypted tunnels: a CONNECT to a host some secret is bound to, on a TLS port
//! (`--sni-ports`), is terminated by the proxy so that it can add the secret's value.
//!
//! After the TLS name check has passed the ClientHello, the proxy completes the
//! handshake itself with a leaf certificate for the CONNECT host signed by the run's CA
//! ([`ca`]; ALPN `http/1.1` only), serves the requests inside as HTTP towards that host
//! only ([`super::origin`]), and forwards each one over TLS verified against the public
//! roots and `--upstream-ca` ([`upstream_tls`]), with the secrets bound to the host
//! added ([`rewrite`]). A client that does not trust the CA fails its handshake and
//! nothing is sent upstream; an upstream that fails verification is answered 502
//! `upstream-tls` before any request is written to it. Every other tunnel is never
//! decrypted.

mod ca;
pub(crate) mod rewrite;
mod upstream_tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use sandbox_policy::Host;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::origin::{self, DialConnector, Origin, Served};
use super::record::Client;
use super::request::Target;
use crate::secrets::Secrets;
use ca::RunCa;
use rewrite::AddSecrets;
use upstream_tls::UpstreamTls;

/// Why interception could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InterceptError {
    /// A certificate could not be made.
    #[error("cannot make a certificate")]
    Certificate(#[source] rcgen::Error),
    /// A TLS configuration was refused.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),
    /// The `--upstream-ca` file is unreadable or holds no usable certificate.
    #[error("--upstream-ca {}: {reason}", path.display())]
    UpstreamCa { path: PathBuf, reason: String },
}

/// Why a decrypted tunnel ended before its first request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The client's TLS handshake failed: it does not trust the run's CA, or is not TLS.
    Failed,
    /// The client did not complete its handshake in time.
    Timeout,
    /// No leaf certificate could be made for the host.
    Certificate,
}

impl HandshakeFailure {
    /// The reason code in the tunnel's decision line.
    pub(crate) fn code(self) -> &'static str {
        match self {
            HandshakeFailure::Failed => "client-tls",
            HandshakeFailure::Timeout => "client-tls-timeout",
            HandshakeFailure::Certificate => "certificate",
        }
    }
}

/// The run's CA and upstream TLS, for the hosts of the secrets.
pub(crate) struct Interceptor {
    secrets: Arc<Secrets>,
    ca: RunCa,
    upstream: UpstreamTls,
}

impl Interceptor {
    /// Interception of the hosts of `secrets`, verifying upstreams also against the
    /// certificates in `upstream_ca`; `None` when there is no secret (the file is still
    /// checked).
    pub(crate) fn new(
        secrets: Arc<Secrets>,
        upstream_ca: Option<&Path>,
    ) -> Result<Option<Interceptor>, InterceptError> {
        let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
        let upstream = UpstreamTls::new(upstream_ca, provider.clone())?;
        if secrets.is_empty() {
            return Ok(None);
        }
        let mut hosts: Vec<Host> = secrets.hosts().cloned().collect();
        hosts.sort_by_key(Host::to_string);
        hosts.dedup();
        let ca = RunCa::new(&hosts, provider)?;
        Ok(Some(Interceptor {
            secrets,
            ca,
            upstream,
        }))
    }

    /// The run's CA certificate, PEM: what the agent must trust.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Whether tunnels to `host` are decrypted (on TLS ports).
    pub(crate) fn intercepts(&self, host: &Host) -> bool {
        self.secrets.any_bound_to(host)
    }

    /// Terminates the client's TLS on `client` (its ClientHello already screened) and
    /// serves the requests inside towards `target`, over connections from `dial`.
    pub(crate) async fn serve<S>(
        &self,
        client: S,
        target: &Target,
        dial: DialConnector,
        shared: Arc<Shared>,
        who: Client,
    ) -> Result<Served, HandshakeFailure>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let config = self.ca.server_config(&target.host).map_err(|err| {
            tracing::error!(host = %target.host, error = %err, "cannot certify an intercepted host");
            HandshakeFailure::Certificate
        })?;
        let handshake = TlsAcceptor::from(config).accept(client);
        let tls = match tokio::time::timeout(shared.limits.sni.timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::info!(
                    host = %target.host,
                    error = %err,
                    "the client refused the TLS handshake of a decrypted tunnel (does it trust \
                     the run's CA?); nothing was sent upstream"
                );
                return Err(HandshakeFailure::Failed);
            }
            Err(_) => return Err(HandshakeFailure::Timeout),
        };
        let origin = Origin::new(target, true);
        let rewrite = AddSecrets {
            secrets: self.secrets.clone(),
            host: target.host.clone(),
        };
        match self
            .upstream
            .connector(dial, &target.host, shared.limits.connect_timeout)
        {
            Ok(connector) => Ok(origin::serve(tls, origin, connector, rewrite, shared, who).await),
            Err(err) => {
                tracing::error!(host = %target.host, error = %err, "cannot reach an intercepted host");
                Ok(Served::Error)
            }
        }
    }
}
