//! The upstream side of a decrypted tunnel: TLS to the real host, verified against the
//! public roots (compiled in: the sidecar image has no system store) plus the
//! certificates of `--upstream-ca`. A host that fails verification gets nothing: the
//! handshake comes before the first request is written.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sandbox_policy::Host;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::InterceptError;
use super::ca::HTTP1;
use crate::server::origin::{Connector, DialConnector, Upstream};
use crate::server::respond::ProxyError;

/// The TLS client configuration for upstreams of decrypted tunnels.
pub(super) struct UpstreamTls {
    config: Arc<ClientConfig>,
}

impl UpstreamTls {
    /// Trusts the public roots and the certificates in `extra_ca` (PEM), if given.
    pub(super) fn new(
        extra_ca: Option<&Path>,
        provider: Arc<CryptoProvider>,
    ) -> Result<UpstreamTls, InterceptError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_ca {
            let bad = |reason: String| InterceptError::UpstreamCa {
                path: path.to_owned(),
                reason,
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|err| bad(err.to_string()))?;
            if certificates.is_empty() {
                return Err(bad("no PEM certificate in the file".to_owned()));
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|err| bad(format!("not a usable CA certificate: {err}")))?;
            }
        }
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(InterceptError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![HTTP1.to_vec()];
        Ok(UpstreamTls {
            config: Arc::new(config),
        })
    }

    /// A connector to `host` over the connections of `dial`, each wrapped in a verified
    /// TLS handshake that must complete within `timeout`.
    pub(super) fn connector(
        &self,
        dial: DialConnector,
        host: &Host,
        timeout: Duration,
    ) -> Result<TlsConnector, ProxyError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ProxyError::UpstreamTls(format!("{host} is not a TLS server name")))?;
        Ok(TlsConnector {
            dial,
            tls: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
            timeout,
        })
    }
}

/// Connections to one host, over TLS verified for its name.
pub(super) struct TlsConnector {
    dial: DialConnector,
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    timeout: Duration,
}

impl Connector for TlsConnector {
    type Io = TlsStream<TcpStream>;

    async fn connect(&self) -> Result<Upstream<TlsStream<TcpStream>>, ProxyError> {
        let upstream = self.dial.connect().await?;
        let handshake = self.tls.connect(self.name.clone(), upstream.io);
        let io = match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(io)) => io,
            Ok(Err(err)) => return Err(ProxyError::UpstreamTls(handshake_failure(&err))),
            Err(_) => {
                return Err(ProxyError::UpstreamTls(
                    "no TLS handshake within the connect timeout".to_owned(),
                ));
            }
        };
        Ok(Upstream {
            io,
            address: upstream.address,
        })
    }
}

/// What went wrong in a handshake, for the client and the log: the TLS error when
/// there is one (an unknown issuer, a name mismatch), else the I/O error.
fn handshake_failure(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => err.to_string(),
    }
}
