//! The run's certificate authority: made in memory at start, its private key never
//! leaves the process (only its certificate is printed, for the agent's trust store).
//! It signs one leaf certificate per intercepted host, minted on first use and kept.
//!
//! The CA is name-constrained to the hosts of the secrets: even a client that trusts
//! it accepts its signature for those hosts (and their subdomains) only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sandbox_policy::Host;

use super::InterceptError;

/// The only application protocol spoken inside decrypted tunnels.
pub(super) const HTTP1: &[u8] = b"http/1.1";

/// The run's CA and the TLS server configurations of the hosts it has certified.
pub(super) struct RunCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    provider: Arc<CryptoProvider>,
    /// One server configuration (leaf + CA certificate) per host.
    leaves: Mutex<HashMap<Host, Arc<ServerConfig>>>,
}

impl RunCa {
    /// A fresh CA allowed to certify `hosts` only.
    pub(super) fn new(
        hosts: &[Host],
        provider: Arc<CryptoProvider>,
    ) -> Result<RunCa, InterceptError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = named("agent-sandbox run CA (sandbox-proxy)");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: hosts
                .iter()
                .map(|host| GeneralSubtree::DnsName(host.to_string()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
        let key = KeyPair::generate().map_err(InterceptError::Certificate)?;
        let issuer =
            CertifiedIssuer::self_signed(params, key).map_err(InterceptError::Certificate)?;
        Ok(RunCa {
            issuer,
            provider,
            leaves: Mutex::default(),
        })
    }

    /// The CA certificate, PEM.
    pub(super) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The TLS server configuration presenting a leaf for `host`, minted on first use.
    pub(super) fn server_config(&self, host: &Host) -> Result<Arc<ServerConfig>, InterceptError> {
        if let Some(config) = self
            .leaves
            .lock()
            .ok()
            .and_then(|leaves| leaves.get(host).cloned())
        {
            return Ok(config);
        }
        let config = Arc::new(self.mint(host)?);
        if let Ok(mut leaves) = self.leaves.lock() {
            leaves.insert(host.clone(), config.clone());
        }
        Ok(config)
    }

    /// A leaf certificate for `host` and the server configuration presenting it.
    fn mint(&self, host: &Host) -> Result<ServerConfig, InterceptError> {
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(InterceptError::Certificate)?;
        params.distinguished_name = named(&host.to_string());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(InterceptError::Certificate)?;
        let leaf = params
            .signed_by(&key, &self.issuer)
            .map_err(InterceptError::Certificate)?;
        let chain = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(InterceptError::Tls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(InterceptError::Tls)?;
        config.alpn_protocols = vec![HTTP1.to_vec()];
        Ok(config)
    }
}

/// A distinguished name holding only a common name.
fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_minted_once_per_host() {
        let hosts = [Host::parse("api.test").unwrap()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca = RunCa::new(&hosts, provider).unwrap();
        assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let first = ca.server_config(&hosts[0]).unwrap();
        let again = ca.server_config(&hosts[0]).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.alpn_protocols, [HTTP1]);
    }
}
