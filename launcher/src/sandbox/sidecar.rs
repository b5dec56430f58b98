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

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount};
use futures_util::StreamExt as _;

use super::agent::AgentNetwork;
use super::config::ProxyConfig;
use super::denied::Denied;
use super::{Sandbox, SandboxError, bind, hardened, volume};
use crate::engine::{EngineError, Output};
use crate::options::Isolation;
use crate::options::image_ref::VERSION;
use crate::sandbox::sidecar_image::VERSION_LABEL;
use sandbox_policy::protocol::{
    self, ALLOWLIST_DIR, BIN_DIR, ListenAddr, PROXY_PORT, READY_LINE, RUN_DIR,
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
        let body = ContainerCreateBody {
            image: Some(proxy.image.clone()),
            cmd: Some(protocol::sidecar_args(
                &listen,
                protocol::SidecarOptions::default(),
            )),
            host_config: Some(sidecar_host(egress, mounts)),
            ..ContainerCreateBody::default()
        };
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

    /// Starts the proxy sidecar and waits until it is ready.
    ///
    /// # Errors
    ///
    /// The engine fails, or the sidecar exits or is not ready in time (its output is in
    /// the error).
    pub(crate) async fn start_proxy(&self, proxy: &Proxy) -> Result<(), SandboxError> {
        self.engine.start_container(&proxy.container).await?;
        tracing::debug!(phase = "proxy started");
        self.wait_ready(&proxy.container).await
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

    /// Follows the sidecar's output until it prints [`READY_LINE`] on stdout. Following
    /// the log through the engine works where the host cannot reach container addresses
    /// (Docker Desktop), and answers as soon as the proxy is ready (no polling interval).
    async fn wait_ready(&self, container: &str) -> Result<(), SandboxError> {
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
            Ok(Ok(true)) => Ok(()),
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
