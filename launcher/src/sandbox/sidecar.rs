//! The proxy sidecar: its networks or volumes, its hardened container, and the wait
//! until it is ready; at the end, its record of what it refused.
//!
//! Proxy mode topology (the default, [`Isolation::NoNetwork`]): the agent container has no
//! network at all (loopback only); the sidecar, on a per-run egress bridge (or
//! `--egress-network`), listens on a Unix socket in a per-run volume shared with the
//! agent; inside the agent container `sandbox-proxy relay` (PID 1, shipped in a volume
//! populated from the sidecar image) listens on 127.0.0.1:8888 and forwards to it. No
//! DNS, no other container and no host service is reachable from the agent. The same
//! tools volume carries the login callbacks' `sandbox-proxy pipe` in every mode
//! ([`Sandbox::create_tools`] without the proxy).
//!
//! Secrets: the sidecar is created with an open stdin, attached before it starts; the
//! launcher writes the grants (values included) there and closes it, so the values are
//! in no container definition, command line, file or log. The sidecar prints its per-run
//! CA certificate before its ready line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::agent::AgentNetwork;
use super::config::ProxyConfig;
use super::denied::Denied;
use super::secrets::Grants;
use super::secrets::summary::SecretsUse;
use super::{Sandbox, SandboxError, bind, hardened, volume};
use crate::engine::{EngineError, Output};
use crate::options::Isolation;
use crate::options::image_ref::VERSION;
use crate::sandbox::sidecar_image::VERSION_LABEL;
use sandbox_policy::protocol::{
    self, ALLOWLIST_DIR, BIN_DIR, ListenAddr, PROXY_PORT, READY_LINE, RUN_DIR, SidecarOptions,
    UPSTREAM_CA_PATH,
};

/// The role of the volume holding the sidecar image's binary directory.
const TOOLS_ROLE: &str = "bin";
/// The sidecar's network alias on the internal network (`--isolation internal-network`).
pub(super) const PROXY_ALIAS: &str = "proxy";
/// How long the sidecar may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The sidecar's memory limit: 3.5 times the proxy's peak under a load far beyond an
/// agent's (measured in `launcher/README.md`, "Measured").
const PROXY_MEMORY: i64 = 256 << 20;
/// The sidecar's process (thread) limit: its runtime's workers and blocking pool.
const PROXY_PIDS: i64 = 256;
/// The sidecar's CPU limit, in billionths of a CPU: one CPU carries far more than an
/// agent's traffic.
const PROXY_NANO_CPUS: i64 = 1_000_000_000;

/// A started proxy sidecar.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    pub(crate) container: String,
    pub(crate) network: AgentNetwork,
    /// The volume holding the sidecar image's `sandbox-proxy` (see [`Sandbox::create_tools`]).
    pub(crate) tools: String,
}

impl Sandbox<'_> {
    /// Creates (does not start) the proxy sidecar, its egress network (unless given) and
    /// the per-run network or volumes that connect it to the agent. The sidecar mounts
    /// `allowlist_dir`, the launcher's copy of the allowlist, read-only.
    ///
    /// # Errors
    ///
    /// The engine fails, or the sidecar exits or is not ready in time (its output is in
    /// the error).
    pub(crate) async fn create_proxy(
        &self,
        proxy: &ProxyConfig,
        allowlist_dir: &Path,
    ) -> Result<Proxy, SandboxError> {
        let egress = match &proxy.egress_network {
            Some(network) => network.clone(),
            None => self.create_network("egress", false).await?,
        };
        let tools = self.create_volume(TOOLS_ROLE).await?;
        let (network, mut listen) = match proxy.isolation {
            Isolation::NoNetwork => {
                let run_volume = self.create_volume("run").await?;
                (AgentNetwork::Relay { run_volume }, Vec::new())
            }
            Isolation::InternalNetwork => {
                let network = self.create_network("internal", true).await?;
                (
                    AgentNetwork::Internal { network },
                    vec![ListenAddr::Tcp(SocketAddr::from((
                        Ipv4Addr::UNSPECIFIED,
                        PROXY_PORT,
                    )))],
                )
            }
        };
        // The sidecar's image fills the tools volume (the engine copies the image's
        // files into an empty volume mounted over them).
        let mut mounts = vec![
            bind(&allowlist_dir.to_string_lossy(), ALLOWLIST_DIR, true),
            volume(&tools, BIN_DIR, false),
        ];
        if let AgentNetwork::Relay { run_volume } = &network {
            mounts.push(volume(run_volume, RUN_DIR, false));
            listen.insert(0, ListenAddr::socket());
        }
        let body = sidecar_body(proxy, &listen, mounts, egress);
        let container = self.create_container("proxy", body).await?;
        if let Ok(mut proxy) = self.proxy.lock() {
            *proxy = Some(container.clone());
        }
        if let AgentNetwork::Internal { network } = &network {
            self.engine
                .connect_network(network, &container, &[PROXY_ALIAS.to_owned()])
                .await?;
        }
        tracing::debug!(phase = "proxy created");
        Ok(Proxy {
            container,
            network,
            tools,
        })
    }

    /// Without the proxy: a volume holding `sandbox-proxy` (the login callbacks' pipe),
    /// filled by a container of the sidecar `image` that only prints its version, when
    /// that image is here, of this launcher's version (nothing is pulled or built for
    /// it); `None` otherwise.
    ///
    /// # Errors
    ///
    /// The engine fails.
    pub(crate) async fn create_tools(&self, image: &str) -> Result<Option<String>, SandboxError> {
        let labels = self.engine.image_labels(image).await?;
        if labels
            .and_then(|labels| labels.get(VERSION_LABEL).cloned())
            .as_deref()
            != Some(VERSION)
        {
            return Ok(None);
        }
        let tools = self.create_volume(TOOLS_ROLE).await?;
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: Some(vec!["--version".to_owned()]),
            host_config: Some(sidecar_host(
                "none".to_owned(),
                vec![volume(&tools, BIN_DIR, false)],
            )),
            ..ContainerCreateBody::default()
        };
        let container = self.create_container("tools", body).await?;
        self.engine.start_container(&container).await?;
        self.engine.wait_exit(&container).await?;
        Ok(Some(tools))
    }

    /// Starts the proxy sidecar, hands it the `grants` (when there are any) and waits
    /// until it is ready; returns its per-run CA certificate (PEM) when it has grants.
    ///
    /// # Errors
    ///
    /// The engine fails, the sidecar exits or is not ready in time (its output is in
    /// the error), or it has grants but printed no CA certificate.
    pub(crate) async fn start_proxy(
        &self,
        proxy: &Proxy,
        grants: &Grants,
    ) -> Result<Option<String>, SandboxError> {
        let input = match grants.is_empty() {
            true => None,
            false => Some(self.engine.attach_stdin(&proxy.container).await?),
        };
        self.engine.start_container(&proxy.container).await?;
        tracing::debug!(phase = "proxy started");
        if let Some(mut input) = input {
            let written = async {
                input.write_all(&grants.document()).await?;
                input.shutdown().await
            };
            written.await.map_err(SandboxError::Grants)?;
        }
        let stdout = self.wait_ready(&proxy.container).await?;
        if grants.is_empty() {
            return Ok(None);
        }
        match protocol::ca_from_output(&stdout) {
            Some(ca) => Ok(Some(ca)),
            None => Err(SandboxError::NoCa {
                logs: self.engine.logs(&proxy.container).await?,
            }),
        }
    }

    /// Has the sidecar, if it runs, read its allowlist again (SIGHUP): its watch of the
    /// directory sees the launcher replace the copy, except where the engine runs in a VM
    /// whose file sharing carries no file events.
    pub(crate) async fn reload_proxy(&self) {
        let proxy = self.proxy.lock().ok().and_then(|proxy| proxy.clone());
        if let Some(proxy) = proxy
            && let Err(error) = self.engine.kill_container(&proxy, "SIGHUP").await
        {
            tracing::debug!(error = %crate::report::chain(&error), "cannot signal the proxy");
        }
    }

    /// Follows the sidecar's output until it prints [`READY_LINE`] on stdout, and returns
    /// that output. Following the log through the engine works where the host cannot
    /// reach container addresses (Docker Desktop), and answers as soon as the proxy is
    /// ready (no polling interval).
    async fn wait_ready(&self, container: &str) -> Result<String, SandboxError> {
        let mut logs = self.engine.follow_logs(container);
        let mut stdout = Vec::new();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(chunk) = logs.next().await {
                if let Output::Stdout(bytes) = chunk? {
                    stdout.extend_from_slice(&bytes);
                    if stdout
                        .split(|&b| b == b'\n')
                        .any(|line| line == READY_LINE.as_bytes())
                    {
                        return Ok(true);
                    }
                }
            }
            Ok::<_, EngineError>(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => Ok(String::from_utf8_lossy(&stdout).into_owned()),
            Ok(Ok(false)) => Err(SandboxError::ProxyExited {
                logs: self.engine.logs(container).await?,
            }),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(SandboxError::ProxyTimeout {
                timeout: READY_TIMEOUT,
                logs: self.engine.logs(container).await?,
            }),
        }
    }

    /// The hosts the proxy refused during the run, from its admin endpoint.
    ///
    /// # Errors
    ///
    /// The engine fails to run the query in the sidecar.
    pub(crate) async fn denied(&self, proxy: &Proxy) -> Result<Denied, EngineError> {
        let output = self
            .engine
            .exec(&proxy.container, &protocol::denied_command())
            .await?;
        Ok(Denied::parse(&output.stdout))
    }

    /// What the proxy did with the secrets during the run, from its admin endpoint.
    ///
    /// # Errors
    ///
    /// The engine fails to run the query in the sidecar.
    pub(crate) async fn secrets_use(&self, proxy: &Proxy) -> Result<SecretsUse, EngineError> {
        let output = self
            .engine
            .exec(&proxy.container, &protocol::secrets_command())
            .await?;
        Ok(SecretsUse::parse(&output.stdout))
    }
}

/// The sidecar's definition (pure, so what secrets change in it is unit-tested):
/// listening on `listen`, with `mounts` plus the upstream CA read-only, on `egress`, and
/// an open one-shot stdin for the grants when there are secrets.
fn sidecar_body(
    proxy: &ProxyConfig,
    listen: &[ListenAddr],
    mut mounts: Vec<Mount>,
    egress: String,
) -> ContainerCreateBody {
    if let Some(upstream_ca) = &proxy.upstream_ca {
        mounts.push(bind(&upstream_ca.to_string_lossy(), UPSTREAM_CA_PATH, true));
    }
    let options = SidecarOptions {
        secrets_stdin: !proxy.secrets.is_empty(),
        upstream_ca: proxy.upstream_ca.is_some(),
    };
    ContainerCreateBody {
        image: Some(proxy.image.clone()),
        cmd: Some(protocol::sidecar_args(listen, options)),
        // The grants arrive on stdin, which closes after the launcher's one write.
        open_stdin: Some(options.secrets_stdin),
        stdin_once: Some(options.secrets_stdin),
        attach_stdin: Some(options.secrets_stdin),
        host_config: Some(sidecar_host(egress, mounts)),
        ..ContainerCreateBody::default()
    }
}

/// A container of the sidecar image: hardened, read-only, limited, on `network`.
fn sidecar_host(network: String, mounts: Vec<Mount>) -> HostConfig {
    HostConfig {
        network_mode: Some(network),
        mounts: Some(mounts),
        readonly_rootfs: Some(true),
        memory: Some(PROXY_MEMORY),
        memory_swap: Some(PROXY_MEMORY),
        pids_limit: Some(PROXY_PIDS),
        nano_cpus: Some(PROXY_NANO_CPUS),
        ..hardened()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::secrets::Secret;

    fn proxy_config() -> ProxyConfig {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("allow.txt");
        std::fs::write(&file, "a.example\n").unwrap();
        ProxyConfig {
            allowlist: crate::sandbox::allowlist::Checked::read(&file).unwrap(),
            move_command: None,
            image: "sidecar:1".into(),
            egress_network: None,
            isolation: Isolation::NoNetwork,
            warnings: Vec::new(),
            secrets: Vec::new(),
            upstream_ca: None,
        }
    }

    fn body(config: &ProxyConfig) -> ContainerCreateBody {
        sidecar_body(config, &[ListenAddr::socket()], Vec::new(), "egress".into())
    }

    #[test]
    fn without_secrets_the_sidecar_has_no_stdin_and_no_secret_flags() {
        let body = body(&proxy_config());
        assert_eq!(body.open_stdin, Some(false));
        let cmd = body.cmd.unwrap();
        assert!(
            !cmd.iter()
                .any(|a| a == "--secrets-stdin" || a == "--upstream-ca")
        );
        assert!(body.host_config.unwrap().mounts.unwrap().is_empty());
    }

    #[test]
    fn secrets_open_a_one_shot_stdin_and_the_upstream_ca_is_mounted_read_only() {
        let config = ProxyConfig {
            secrets: vec![Secret {
                name: "A_KEY".into(),
                value: "value-a".into(),
                hosts: vec!["a.example".into()],
            }],
            upstream_ca: Some("/cfg/ca.pem".into()),
            ..proxy_config()
        };
        let body = body(&config);
        assert_eq!(
            (body.open_stdin, body.stdin_once, body.attach_stdin),
            (Some(true), Some(true), Some(true))
        );
        let cmd = body.cmd.unwrap();
        assert!(cmd.contains(&"--secrets-stdin".to_owned()), "{cmd:?}");
        assert!(cmd.contains(&UPSTREAM_CA_PATH.to_owned()), "{cmd:?}");
        // The value is in neither the definition nor the command line.
        assert!(!format!("{cmd:?}{:?}{:?}", body.env, body.labels).contains("value-a"));
        let host = body.host_config.unwrap();
        assert_eq!(host.readonly_rootfs, Some(true));
        let mounts = host.mounts.unwrap();
        let ca = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some(UPSTREAM_CA_PATH))
            .unwrap();
        assert_eq!(
            (ca.source.as_deref(), ca.read_only),
            (Some("/cfg/ca.pem"), Some(true))
        );
    }
}
