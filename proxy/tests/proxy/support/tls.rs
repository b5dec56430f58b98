//! TLS on both ends of a tunnel: an upstream with a self-signed certificate made at run
//! time, and a rustls client that trusts only that certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A TLS server for `name` answering one fixed HTTP response; returns its address and
/// the self-signed certificate (PEM and DER).
pub async fn tls_upstream(name: &str) -> (SocketAddr, String, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = "hello over tls";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, certified.cert.pem(), cert)
}

/// A rustls client handshake over `stream` for `name` (a DNS name, or an IP address,
/// for which rustls sends no server name), trusting only `cert`.
pub async fn tls_client(
    stream: TcpStream,
    name: &str,
    cert: CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(name.to_owned()).unwrap();
    connector.connect(name, stream).await
}

/// Sends a GET over `tls` and returns everything the server answers.
pub async fn get_over_tls(mut tls: TlsStream<TcpStream>) -> String {
    tls.write_all(b"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    response
}

/// How a test client offers Encrypted Client Hello.
#[derive(Clone, Copy)]
pub enum Ech {
    /// GREASE ECH: the extension with random contents, as browsers send by default.
    Grease,
    /// Real ECH with a configuration whose outer, public name is this.
    PublicName(&'static str),
}

/// A rustls client handshake over `stream` for `name` offering ECH (aws-lc-rs: its HPKE
/// suites). It trusts nothing: the tests expect the handshake to be refused earlier.
pub async fn ech_client(
    stream: TcpStream,
    name: &str,
    ech: Ech,
) -> std::io::Result<TlsStream<TcpStream>> {
    use rustls::client::{EchConfig, EchGreaseConfig, EchMode};
    use rustls::crypto::aws_lc_rs::hpke::DH_KEM_X25519_HKDF_SHA256_AES_128 as SUITE;
    use rustls::crypto::hpke::Hpke;

    let (public_key, _) = SUITE.generate_key_pair().unwrap();
    let mode = match ech {
        Ech::Grease => EchMode::Grease(EchGreaseConfig::new(SUITE, public_key)),
        Ech::PublicName(public_name) => {
            let list = ech_config_list(&public_key.0, public_name);
            EchMode::Enable(EchConfig::new(list.into(), &[SUITE]).unwrap())
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_ech(mode)
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(name.to_owned()).unwrap();
    connector.connect(name, stream).await
}

/// An ECHConfigList (draft-ietf-tls-esni-18 §4) holding one configuration: X25519 with
/// HKDF-SHA256 and AES-128-GCM, `public_key`, `public_name`, no extensions.
fn ech_config_list(public_key: &[u8], public_name: &str) -> Vec<u8> {
    fn with_u16_length(body: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }
    let mut contents = vec![7]; // config_id
    contents.extend_from_slice(&0x0020u16.to_be_bytes()); // DHKEM(X25519, HKDF-SHA256)
    contents.extend(with_u16_length(public_key));
    contents.extend(with_u16_length(&[0, 1, 0, 1])); // HKDF-SHA256, AES-128-GCM
    contents.push(64); // maximum_name_length
    contents.push(u8::try_from(public_name.len()).unwrap());
    contents.extend_from_slice(public_name.as_bytes());
    contents.extend(with_u16_length(&[])); // extensions
    let mut config = 0xfe0du16.to_be_bytes().to_vec();
    config.extend(with_u16_length(&contents));
    with_u16_length(&config)
}

/// A certificate authority made at run time, signing the certificates of test upstreams
/// (what `--upstream-ca` is given).
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sandbox-proxy test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A TLS server configuration for `name`, with a certificate this CA signed.
    pub fn server_config(&self, name: &str) -> rustls::ServerConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap()
    }
}

/// The DER of the first certificate in `pem`.
pub fn der_of(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}
