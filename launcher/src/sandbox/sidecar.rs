//! The proxy sidecar: its networks or volumes, its hardened container, and the wait
//! until it is ready; at the end, its record of what it refused.
//!
//! Proxy mode topology (the default, [`Isolation::NoNetwork`]): the agent container has no
//! network at all (loopback only); the sidecar, on a per-run egress bridge (or
//! `--egress-network`), listens on a Unix socket in a per-run volume shared with the
//! agent; inside the agent container `sandbox-proxy relay` (PID 1, shipped in a volume
//! populated from the sidecar image) listens on 127.0.0.1:8888 and forwards to it. No
//! DNS, no other container and no host service is reachable from the agent.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use futures_util::StreamExt as _;

use super::agent::AgentNetwork;
use super::config::ProxyConfig;
use super::denied::Denied;
use super::{Sandbox, SandboxError, bind, hardened, volume};
use crate::engine::{EngineError, Output};
use crate::options::Isolation;
use sandbox_policy::protocol::{
    self, ALLOWLIST_PATH, BIN_DIR, ListenAddr, PROXY_PORT, READY_LINE, RUN_DIR,
};

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
}

impl Sandbox<'_> {
    /// Creates (does not start) the proxy sidecar, its egress network (unless given) and
    /// the per-run network or volumes that connect it to the agent.
    ///
    /// # Errors
    ///
    /// The engine fails, or the sidecar exits or is not ready in time (its output is in
    /// the error).
    pub(crate) async fn create_proxy(&self, proxy: &ProxyConfig) -> Result<Proxy, SandboxError> {
        let egress = match &proxy.egress_network {
            Some(network) => network.clone(),
            None => self.create_network("egress", false).await?,
        };
        let (network, mut listen) = match proxy.isolation {
            Isolation::NoNetwork => {
                let run_volume = self.create_volume("run").await?;
                let bin_volume = self.create_volume("bin").await?;
                (
                    AgentNetwork::Relay {
                        run_volume,
                        bin_volume,
                    },
                    Vec::new(),
                )
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
        let mut mounts = vec![bind(
            &proxy.allowlist.to_string_lossy(),
            ALLOWLIST_PATH,
            true,
        )];
        if let AgentNetwork::Relay {
            run_volume,
            bin_volume,
        } = &network
        {
            mounts.push(volume(run_volume, RUN_DIR, false));
            mounts.push(volume(bin_volume, BIN_DIR, false));
            listen.insert(0, ListenAddr::socket());
        }
        let body = ContainerCreateBody {
            image: Some(proxy.image.clone()),
            cmd: Some(protocol::sidecar_args(
                &listen,
                protocol::SidecarOptions::default(),
            )),
            host_config: Some(HostConfig {
                network_mode: Some(egress),
                mounts: Some(mounts),
                readonly_rootfs: Some(true),
                memory: Some(PROXY_MEMORY),
                memory_swap: Some(PROXY_MEMORY),
                pids_limit: Some(PROXY_PIDS),
                nano_cpus: Some(PROXY_NANO_CPUS),
                ..hardened()
            }),
            ..ContainerCreateBody::default()
        };
        let container = self.create_container("proxy", body).await?;
        if let AgentNetwork::Internal { network } = &network {
            self.engine
                .connect_network(network, &container, &[PROXY_ALIAS.to_owned()])
                .await?;
        }
        tracing::debug!(phase = "proxy created");
        Ok(Proxy { container, network })
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
