//! The test certificate authority: made once with rcgen and kept in the test cache, so
//! images that trust it (the pi test image bakes it in) stay valid between runs and
//! their hash covers it; test servers get leaf certificates from it at run time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::cache::{CacheLock, cache_dir};

/// The CA's common name, as clients report it in verification errors.
const COMMON_NAME: &str = "agent-sandbox test CA";

/// The test CA: its certificate (PEM, and the cached file holding it) and key.
#[derive(Debug)]
pub struct TestCa {
    cert_pem: String,
    cert_path: PathBuf,
    key_pem: String,
}

/// A certificate issued by the test CA and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// The test CA, created in the test cache on first use (safe across threads and test
/// binaries) and loaded from there afterwards.
pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = cache_dir().join("test-ca");
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key.pem"));
        let _lock = CacheLock::acquire("test-ca");
        if !cert_path.exists() || !key_path.exists() {
            create(&dir, &cert_path, &key_path);
        }
        TestCa {
            cert_pem: read(&cert_path),
            cert_path,
            key_pem: read(&key_path),
        }
    })
}

impl TestCa {
    /// Another CA, made now in `dir` (`ca.pem`, `ca.key.pem`), which nothing trusts.
    pub fn create_in(dir: &Path) -> TestCa {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key.pem"));
        create(dir, &cert_path, &key_path);
        TestCa {
            cert_pem: read(&cert_path),
            cert_path,
            key_pem: read(&key_path),
        }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The cached file holding the CA certificate (for `NODE_EXTRA_CA_CERTS` on the
    /// host).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses) with a
    /// fresh key.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let ca_key = KeyPair::from_pem(&self.key_pem).expect("the cached test CA key parses");
        // The issuer is the CA's subject and key; rebuilding the same parameters with
        // the cached key signs exactly as the cached certificate would.
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().expect("key generation");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("valid server names");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("signing a test server certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The CA's parameters: a CA for server certificates, with a fixed subject.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Makes a new CA and writes its certificate and key (a half-written pair is replaced
/// on the next use, which requires both files).
fn create(dir: &Path, cert_path: &Path, key_path: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let key = KeyPair::generate().expect("key generation");
    let cert = ca_params()
        .self_signed(&key)
        .expect("self-signing the test CA");
    write(key_path, &key.serialize_pem());
    write(cert_path, &cert.pem());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
