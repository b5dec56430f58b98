//! Trust for the sidecar's per-run CA inside the agent container, without discarding
//! the trust the image or the user configured. A private per-run host directory (0700,
//! in the first of [`private_dirs::parents`] that takes it, with the owner record the
//! browser channel's stale-directory sweep reads; removed when dropped), mounted
//! read-only at [`CONTAINER_DIR`], holds the CA certificate, a
//! bundle (the file an existing `SSL_CERT_FILE` names, else the image's system bundle,
//! plus the CA) and Node.js's extra certificates (an existing `NODE_EXTRA_CA_CERTS` file
//! plus the CA); the variables clients read point there. Certificates are public: only
//! the CA's key, which never leaves the sidecar, matters.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use super::super::{Sandbox, SandboxError};
use crate::options::profile::{Missing, ResolvedMount};
use crate::sandbox::labels::Owner;
use crate::sandbox::private_dirs;

/// Where the trust directory is mounted in the agent container.
pub(crate) const CONTAINER_DIR: &str = "/run/agent-sandbox/trust";
/// The run's CA certificate alone.
const CA_FILE: &str = "ca.pem";
/// The system's trust plus the run's CA.
const BUNDLE_FILE: &str = "bundle.pem";
/// Node.js's extra certificates plus the run's CA.
const NODE_FILE: &str = "node-extra-ca.pem";
/// Node.js adds the certificates of this file to its built-in roots.
const NODE_VAR: &str = "NODE_EXTRA_CA_CERTS";
/// Variables naming the one bundle a client trusts: OpenSSL (and Go, Python's ssl,
/// rustls-native-certs), Python's requests and pip, curl, git.
const BUNDLE_VARS: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];
/// Where images keep their system bundle, the first found is used: Debian, Ubuntu,
/// Alpine and Arch; Fedora and RHEL; openSUSE; BSD-style.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The file in the directory naming the launcher that owns it (as in the browser
/// channel's directories, whose sweep removes those of launchers that are gone).
const OWNER_FILE: &str = "owner";

/// The agent's trust files of one run; the directory is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Trust {
    dir: PathBuf,
    /// The values the agent's environment had for the variables pointed here.
    replaced: Vec<(String, String)>,
}

impl Trust {
    /// Creates the (empty) trust directory of `session` in the first private parent
    /// that takes it.
    ///
    /// # Errors
    ///
    /// No parent takes it (the last failure).
    pub(crate) fn create(session: &str, owner: &Owner) -> std::io::Result<Self> {
        let mut failure = std::io::Error::other("no directory for the launcher's private files");
        for parent in private_dirs::parents() {
            match Self::create_in(&parent, session, owner) {
                Ok(trust) => return Ok(trust),
                Err(error) => failure = error,
            }
        }
        Err(failure)
    }

    /// Creates `agent-sandbox-SESSION-trust` (0700) under `parent` with the owner record,
    /// complete when it appears (made under a hidden name, then renamed): the sweep of
    /// stale per-run directories removes those without a record.
    fn create_in(parent: &Path, session: &str, owner: &Owner) -> std::io::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        let name = format!("agent-sandbox-{session}-trust");
        let building = parent.join(format!(".{name}"));
        DirBuilder::new().mode(0o700).create(&building)?;
        let made = std::fs::write(building.join(OWNER_FILE), owner.record())
            .and_then(|()| std::fs::rename(&building, parent.join(&name)));
        if let Err(error) = made {
            let _ = std::fs::remove_dir_all(&building);
            return Err(error);
        }
        Ok(Self {
            dir: parent.join(name),
            replaced: Vec::new(),
        })
    }

    /// Points the trust variables of the agent's `env` (`NAME=value`) at the trust
    /// directory, remembering the values they replace.
    pub(crate) fn apply(&mut self, env: &mut Vec<String>) {
        let ours = |name: &str| BUNDLE_VARS.contains(&name) || name == NODE_VAR;
        env.retain(|variable| match variable.split_once('=') {
            Some((name, value)) if ours(name) => {
                self.replaced.push((name.to_owned(), value.to_owned()));
                false
            }
            _ => true,
        });
        env.push(format!("{NODE_VAR}={CONTAINER_DIR}/{NODE_FILE}"));
        env.extend(
            BUNDLE_VARS
                .iter()
                .map(|name| format!("{name}={CONTAINER_DIR}/{BUNDLE_FILE}")),
        );
    }

    /// The read-only mount of the trust directory.
    pub(crate) fn mount(&self) -> ResolvedMount {
        ResolvedMount {
            source: self.dir.clone(),
            target: CONTAINER_DIR.to_owned(),
            read_only: true,
            missing: Missing::Skip,
            code: Vec::new(),
            watch: Vec::new(),
        }
    }

    /// The value `name` had before [`Trust::apply`]: the agent's environment's, else the
    /// image's (`image_env`).
    fn previous<'a>(&'a self, name: &str, image_env: &'a [String]) -> Option<&'a str> {
        let replaced = self.replaced.iter().find(|(n, _)| n == name);
        replaced.map(|(_, value)| value.as_str()).or_else(|| {
            image_env
                .iter()
                .find_map(|variable| variable.strip_prefix(name)?.strip_prefix('='))
        })
    }

    /// Where to look for the trust the bundle extends, in order.
    fn bundle_sources<'a>(&'a self, image_env: &'a [String]) -> Vec<&'a str> {
        let configured = self.previous(BUNDLE_VARS[0], image_env);
        configured.into_iter().chain(SYSTEM_BUNDLES).collect()
    }

    /// Writes the files for `ca` (PEM) extending `bundle` and `node_extra`, the contents
    /// of the files found in the agent container.
    fn write(
        &self,
        ca: &str,
        bundle: Option<&[u8]>,
        node_extra: Option<&[u8]>,
    ) -> std::io::Result<()> {
        let dir = &self.dir;
        std::fs::write(dir.join(CA_FILE), ca)?;
        std::fs::write(dir.join(BUNDLE_FILE), extended(bundle, ca))?;
        std::fs::write(dir.join(NODE_FILE), extended(node_extra, ca))
    }
}

impl Drop for Trust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `certificates` (PEM, possibly none) followed by `ca`.
fn extended(certificates: Option<&[u8]>, ca: &str) -> Vec<u8> {
    let mut out = certificates.unwrap_or_default().to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(ca.as_bytes());
    out
}

impl Sandbox<'_> {
    /// Writes `trust`'s files for the run's CA (`ca`, PEM), extending what the created
    /// (not yet started) `agent` container trusts; `image_env` is its image's
    /// environment. An image without a system bundle gets the CA alone.
    ///
    /// # Errors
    ///
    /// The engine cannot read the container's files, or the files cannot be written.
    pub(crate) async fn install_trust(
        &self,
        trust: &Trust,
        agent: &str,
        image_env: &[String],
        ca: &str,
    ) -> Result<(), SandboxError> {
        let mut bundle = None;
        for path in trust.bundle_sources(image_env) {
            bundle = self.engine.read_file(agent, path).await?;
            if bundle.is_some() {
                break;
            }
        }
        let node_extra = match trust.previous(NODE_VAR, image_env) {
            Some(path) => self.engine.read_file(agent, path).await?,
            None => None,
        };
        if bundle.is_none() {
            tracing::debug!("the agent image has no system CA bundle");
        }
        trust
            .write(ca, bundle.as_deref(), node_extra.as_deref())
            .map_err(SandboxError::Trust)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(parent: &Path) -> Trust {
        Trust::create_in(parent, "s1", &crate::sandbox::liveness::current_owner()).unwrap()
    }

    #[test]
    fn the_variables_point_at_the_mounted_directory_and_what_they_replace_is_kept() {
        let parent = tempfile::tempdir().unwrap();
        let mut trust = trust(parent.path());
        let mut env = vec![
            "TERM=xterm".to_owned(),
            "SSL_CERT_FILE=/corp/bundle.pem".to_owned(),
            "NODE_EXTRA_CA_CERTS=/corp/extra.pem".to_owned(),
        ];
        trust.apply(&mut env);
        let value = |name: &str| {
            let found: Vec<_> = env
                .iter()
                .filter_map(|v| v.strip_prefix(name)?.strip_prefix('='))
                .collect();
            assert_eq!(found.len(), 1, "{name}: {env:?}");
            found[0].to_owned()
        };
        assert_eq!(value("TERM"), "xterm");
        for name in BUNDLE_VARS {
            assert_eq!(value(name), "/run/agent-sandbox/trust/bundle.pem");
        }
        assert_eq!(
            value("NODE_EXTRA_CA_CERTS"),
            "/run/agent-sandbox/trust/node-extra-ca.pem"
        );
        let image_env = ["NODE_EXTRA_CA_CERTS=/image/extra.pem".to_owned()];
        assert_eq!(
            trust.previous("NODE_EXTRA_CA_CERTS", &image_env),
            Some("/corp/extra.pem")
        );
        assert_eq!(
            trust.bundle_sources(&image_env)[..2],
            ["/corp/bundle.pem", SYSTEM_BUNDLES[0]]
        );
        let mount = trust.mount();
        assert!(mount.read_only && mount.target == CONTAINER_DIR);
    }

    #[test]
    fn without_configured_trust_the_image_environment_and_the_system_bundle_count() {
        let parent = tempfile::tempdir().unwrap();
        let mut trust = trust(parent.path());
        trust.apply(&mut Vec::new());
        let image_env = [
            "PATH=/bin".to_owned(),
            "NODE_EXTRA_CA_CERTS=/image/extra.pem".to_owned(),
        ];
        assert_eq!(
            trust.previous("NODE_EXTRA_CA_CERTS", &image_env),
            Some("/image/extra.pem")
        );
        assert_eq!(trust.bundle_sources(&image_env), SYSTEM_BUNDLES);
    }

    #[test]
    fn the_files_extend_what_was_trusted_with_the_ca() {
        let parent = tempfile::tempdir().unwrap();
        let trust = trust(parent.path());
        let ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
        trust.write(ca, Some(b"SYSTEM"), None).unwrap();
        let read = |file: &str| std::fs::read_to_string(trust.dir.join(file)).unwrap();
        assert_eq!(read(CA_FILE), ca);
        assert_eq!(read(BUNDLE_FILE), format!("SYSTEM\n{ca}"));
        assert_eq!(read(NODE_FILE), ca);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&trust.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(trust.dir.ends_with("agent-sandbox-s1-trust"));
        let dir = trust.dir.clone();
        drop(trust);
        assert!(!dir.exists());
    }
}
