//! The sandbox in domain verbs: per-run networks and volumes, the proxy sidecar (started
//! and waited for), and the hardened agent container. Everything created is labelled with
//! the session and recorded, so [`Sandbox::teardown`] can remove it in reverse order.
//!
//! Proxy mode topology (the default, [`Isolation::NoNetwork`]): the agent container has no
//! network at all (loopback only); the sidecar, on a per-run egress bridge (or
//! `--egress-network`), listens on a Unix socket in a per-run volume shared with the
//! agent; inside the agent container `sandbox-proxy relay` (PID 1, shipped in a volume
//! populated from the sidecar image) listens on 127.0.0.1:8888 and forwards to it. No
//! DNS, no other container and no host service is reachable from the agent.

pub(crate) mod config;
pub(crate) mod denied;
pub mod images;
pub(crate) mod labels;
pub(crate) mod liveness;
pub(crate) mod teardown;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use futures_util::StreamExt as _;

use crate::engine::{Engine, EngineError, ImageCommand, Output};
use crate::options::Isolation;
use crate::options::profile::Missing;
use crate::sandbox::config::{ProxyConfig, SandboxConfig};
use crate::sandbox::labels::Session;
use teardown::Resource;

/// Where the proxy's unix socket directory is mounted, in both containers.
const RUN_DIR: &str = "/run/sandbox";
/// Where the proxy binary's directory is, in the sidecar image and the agent container.
const BIN_DIR: &str = "/opt/sandbox/bin";
/// The proxy binary.
const PROXY_BINARY: &str = "/opt/sandbox/bin/sandbox-proxy";
/// Where the allowlist is mounted in the sidecar.
const ALLOWLIST_PATH: &str = "/etc/sandbox-proxy/allowed_domains.txt";
/// The proxy's admin listener, inside the sidecar.
const ADMIN_ADDRESS: &str = "127.0.0.1:9901";
/// The port the proxy is reached on by the agent.
const PROXY_PORT: u16 = 8888;
/// The sidecar's network alias on the internal network (`--isolation internal-network`).
const PROXY_ALIAS: &str = "proxy";
/// The line the proxy prints on stdout once it listens and its policy is loaded.
const READY_LINE: &str = "sandbox-proxy ready";
/// How long the sidecar may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A mount source could not be created.
    #[error("cannot create {path} to mount it into the sandbox")]
    MountSource {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The sidecar exited before it was ready.
    #[error("the proxy sidecar exited before it was ready; its output:\n{logs}")]
    ProxyExited {
        /// The sidecar's output.
        logs: String,
    },
    /// The sidecar did not become ready in time.
    #[error("the proxy sidecar was not ready after {timeout:?}; its output:\n{logs}")]
    ProxyTimeout {
        /// How long the launcher waited.
        timeout: Duration,
        /// The sidecar's output.
        logs: String,
    },
}

/// How the agent container reaches the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentNetwork {
    /// The host's network (no proxy).
    Host,
    /// No network; the relay as PID 1 reaches the proxy through the shared volumes.
    Relay {
        /// The volume holding the proxy's socket.
        run_volume: String,
        /// The volume holding the proxy binary.
        bin_volume: String,
    },
    /// The per-run internal network, where the sidecar has the alias `proxy`.
    Internal {
        /// The network's name.
        network: String,
    },
}

/// A started proxy sidecar.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    /// Its container id.
    pub(crate) container: String,
    /// How the agent reaches it.
    pub(crate) network: AgentNetwork,
}

/// The objects of one run.
pub(crate) struct Sandbox<'a> {
    engine: &'a Engine,
    session: &'a Session,
    // Interior mutability so that a signal can reach the agent while the run goes on;
    // the locks are never held across an await.
    created: Mutex<Vec<Resource>>,
    agent: Mutex<Option<String>>,
}

impl<'a> Sandbox<'a> {
    /// An empty sandbox for `session`.
    pub(crate) fn new(engine: &'a Engine, session: &'a Session) -> Self {
        Self {
            engine,
            session,
            created: Mutex::new(Vec::new()),
            agent: Mutex::new(None),
        }
    }

    /// Records a created object for teardown.
    fn record(&self, resource: Resource) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(resource);
    }

    /// Whether the agent container exists yet.
    pub(crate) fn has_agent(&self) -> bool {
        self.agent.lock().is_ok_and(|agent| agent.is_some())
    }

    /// Creates a per-run network with `role` (`internal`: no route out).
    async fn create_network(&self, role: &str, internal: bool) -> Result<String, EngineError> {
        let name = self.session.name(role);
        let id = self
            .engine
            .create_network(&name, internal, &self.session.labels(role))
            .await?;
        self.record(Resource::Network(id));
        Ok(name)
    }

    /// Creates a per-run volume with `role`.
    async fn create_volume(&self, role: &str) -> Result<String, EngineError> {
        let name = self.session.name(role);
        self.engine
            .create_volume(&name, &self.session.labels(role))
            .await?;
        self.record(Resource::Volume(name.clone()));
        Ok(name)
    }

    /// Creates a container with `role`; it is recorded for teardown at once.
    async fn create_container(
        &self,
        role: &str,
        mut body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        body.labels = Some(self.session.labels(role));
        let id = self
            .engine
            .create_container(&self.session.name(role), body)
            .await?;
        self.record(Resource::Container(id.clone()));
        Ok(id)
    }

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
                    vec![format!("0.0.0.0:{PROXY_PORT}")],
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
            listen.insert(0, format!("unix:{RUN_DIR}/proxy.sock"));
        }
        let mut cmd = vec!["--allowlist".to_owned(), ALLOWLIST_PATH.to_owned()];
        for address in listen {
            cmd.extend(["--listen".to_owned(), address]);
        }
        cmd.extend(["--admin".to_owned(), ADMIN_ADDRESS.to_owned()]);
        let body = ContainerCreateBody {
            image: Some(proxy.image.clone()),
            cmd: Some(cmd),
            host_config: Some(HostConfig {
                network_mode: Some(egress),
                mounts: Some(mounts),
                readonly_rootfs: Some(true),
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

    /// Creates (does not start) the agent container for `config`, reaching the network
    /// as `network` says; `image` is the image's own command, which the relay wraps.
    ///
    /// # Errors
    ///
    /// A mount source cannot be created, or the engine refuses the container.
    pub(crate) async fn create_agent_container(
        &self,
        config: &SandboxConfig,
        network: &AgentNetwork,
        image: &ImageCommand,
        tty: bool,
    ) -> Result<String, SandboxError> {
        for mount in &config.mounts {
            if mount.missing == Missing::Create && !mount.source.exists() {
                std::fs::create_dir_all(&mount.source).map_err(|source| {
                    SandboxError::MountSource {
                        path: mount.source.clone(),
                        source,
                    }
                })?;
            }
        }
        let body = agent_container_body(config, network, image, tty);
        let id = self.create_container("agent", body).await?;
        if let Ok(mut agent) = self.agent.lock() {
            *agent = Some(id.clone());
        }
        Ok(id)
    }

    /// The hosts the proxy refused during the run, from its admin endpoint.
    ///
    /// # Errors
    ///
    /// The engine fails to run the query in the sidecar.
    pub(crate) async fn denied(
        &self,
        proxy: &Proxy,
    ) -> Result<crate::sandbox::denied::Denied, EngineError> {
        let command = [PROXY_BINARY, "denied", "--admin", ADMIN_ADDRESS].map(str::to_owned);
        let output = self.engine.exec(&proxy.container, &command).await?;
        Ok(crate::sandbox::denied::Denied::parse(&output.stdout))
    }

    /// Passes `signal` (a name such as `SIGTERM`) on to the agent container, if it exists.
    pub(crate) async fn signal_agent(&self, signal: &str) {
        let agent = self.agent.lock().ok().and_then(|agent| agent.clone());
        if let Some(agent) = agent
            && let Err(error) = self.engine.kill_container(&agent, signal).await
        {
            tracing::debug!(error = %crate::report::chain(&error), "cannot signal the agent");
        }
    }

    /// Removes everything this sandbox created, in reverse order; returns the failures.
    pub(crate) async fn teardown(self) -> Vec<EngineError> {
        let created = self
            .created
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        teardown::remove_all(self.engine, created).await
    }
}

/// The settings both containers share: no capabilities, no privilege gain, private IPC.
fn hardened() -> HostConfig {
    HostConfig {
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        ipc_mode: Some("private".to_owned()),
        ..HostConfig::default()
    }
}

fn bind(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::BIND),
        source: Some(source.to_owned()),
        target: Some(target.to_owned()),
        read_only: Some(read_only),
        ..Mount::default()
    }
}

fn volume(name: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::VOLUME),
        ..bind(name, target, read_only)
    }
}

/// Read-only mounts of the allowlist over every place where it is visible read-write in
/// the agent container (it usually lives in `~/.agents`, which pi's profile mounts): an
/// agent must not widen its own policy, for a proxy that reloads it or for the next run.
fn protect_allowlist(allowlist: &std::path::Path, mounts: &[Mount]) -> Vec<Mount> {
    let source = allowlist.to_string_lossy();
    mounts
        .iter()
        .filter(|m| m.read_only != Some(true) && m.typ == Some(MountType::BIND))
        .filter_map(|m| {
            let inner = allowlist.strip_prefix(m.source.as_deref()?).ok()?;
            let target = std::path::Path::new(m.target.as_deref()?).join(inner);
            Some(bind(&source, &target.to_string_lossy(), true))
        })
        .collect()
}

/// The environment that points HTTP clients (curl, Node, Java, ...) at the proxy.
pub(crate) fn proxy_environment(host: &str, port: u16) -> Vec<String> {
    let url = format!("http://{host}:{port}");
    let no_proxy = "localhost,127.0.0.1";
    let mut env: Vec<String> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .iter()
        .map(|name| format!("{name}={url}"))
        .collect();
    env.extend([
        format!("NO_PROXY={no_proxy}"),
        format!("no_proxy={no_proxy}"),
        "NODE_USE_ENV_PROXY=1".to_owned(),
        format!(
            "JAVA_TOOL_OPTIONS=-Dhttp.proxyHost={host} -Dhttp.proxyPort={port} -Dhttps.proxyHost={host} \
             -Dhttps.proxyPort={port} -Dhttp.nonProxyHosts=localhost|127.0.0.1"
        ),
    ]);
    env
}

/// The agent container's definition (pure, so its hardening is unit-tested). Its stdin is
/// open (closed when the launcher's input ends); `tty` gives it a terminal.
pub(crate) fn agent_container_body(
    config: &SandboxConfig,
    network: &AgentNetwork,
    image: &ImageCommand,
    tty: bool,
) -> ContainerCreateBody {
    let workdir = config.workdir.to_string_lossy().into_owned();
    let mut mounts = vec![bind(&workdir, &workdir, false)];
    mounts.extend(
        config
            .mounts
            .iter()
            .filter(|m| m.missing == Missing::Create || m.source.exists())
            .map(|m| bind(&m.source.to_string_lossy(), &m.target, m.read_only)),
    );
    if let Some(allowlist) = &config.allowlist {
        mounts.extend(protect_allowlist(allowlist, &mounts));
    }
    let mut env = config.env.clone();
    let mut entrypoint = None;
    let (network_mode, init) = match network {
        AgentNetwork::Host => ("host".to_owned(), true),
        AgentNetwork::Relay {
            run_volume,
            bin_volume,
        } => {
            mounts.push(volume(run_volume, RUN_DIR, true));
            mounts.push(volume(bin_volume, BIN_DIR, true));
            env.extend(proxy_environment("127.0.0.1", PROXY_PORT));
            let relay = [
                PROXY_BINARY,
                "relay",
                "--listen",
                &format!("127.0.0.1:{PROXY_PORT}"),
                "--connect",
                &format!("unix:{RUN_DIR}/proxy.sock"),
                "--",
            ];
            let mut wrapped: Vec<String> = relay.iter().map(|s| (*s).to_owned()).collect();
            wrapped.extend(image.entrypoint.iter().cloned());
            entrypoint = Some(wrapped);
            // The relay is PID 1: it reaps zombies and forwards signals itself.
            ("none".to_owned(), false)
        }
        AgentNetwork::Internal { network } => {
            env.extend(proxy_environment(PROXY_ALIAS, PROXY_PORT));
            (network.clone(), true)
        }
    };
    let limits = &config.limits;
    ContainerCreateBody {
        image: Some(config.image.name().to_owned()),
        entrypoint,
        cmd: Some(config.command.clone()),
        env: Some(env),
        user: Some(format!("{}:{}", config.user.0, config.user.1)),
        working_dir: Some(workdir),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(tty),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode),
            init: Some(init),
            mounts: Some(mounts),
            readonly_rootfs: Some(config.read_only),
            tmpfs: config.read_only.then(|| {
                HashMap::from([("/tmp".to_owned(), "rw,nosuid,nodev,mode=1777".to_owned())])
            }),
            memory: limits.memory.and_then(|m| i64::try_from(m.bytes()).ok()),
            nano_cpus: limits.cpus.and_then(|c| i64::try_from(c.nano_cpus()).ok()),
            pids_limit: limits.pids.map(|p| i64::from(p.get())),
            ..hardened()
        }),
        ..ContainerCreateBody::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use crate::options::profile::Profile;
    use crate::sandbox::config::Host;

    fn config(args: Options) -> SandboxConfig {
        let profile = Profile::lookup("pi", &Default::default()).unwrap();
        let host = Host {
            cwd: "/src/project".into(),
            home: "/nonexistent-home".into(),
            uid: 1234,
            gid: 567,
        };
        SandboxConfig::new(
            &args,
            &profile,
            vec!["pi".into(), "-p".into()],
            &host,
            |_| None,
        )
        .unwrap()
    }

    fn image() -> ImageCommand {
        ImageCommand {
            entrypoint: vec!["/usr/local/bin/agent-entrypoint".into()],
            cmd: vec!["pi".into()],
        }
    }

    #[test]
    fn the_agent_container_is_hardened() {
        let body = agent_container_body(
            &config(Options::default()),
            &AgentNetwork::Host,
            &image(),
            true,
        );
        let host = body.host_config.unwrap();
        assert_eq!(body.user.as_deref(), Some("1234:567"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(host.ipc_mode.as_deref(), Some("private"));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.privileged, None);
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(body.working_dir.as_deref(), Some("/src/project"));
        assert_eq!(
            body.entrypoint, None,
            "the image's entrypoint runs without the relay"
        );
        let mounts = host.mounts.unwrap();
        assert!(
            mounts
                .iter()
                .all(|m| m.source.as_deref() != Some("/var/run/docker.sock"))
        );
        assert_eq!(mounts[0].source.as_deref(), Some("/src/project"));
        assert_eq!(mounts[0].target.as_deref(), Some("/src/project"));
        assert_eq!(mounts[0].read_only, Some(false));
        // ~/dotfiles is mounted only when present; the other four are created if missing.
        assert_eq!(mounts.len(), 5);
    }

    #[test]
    fn limits_and_read_only_root_reach_the_engine() {
        let args = Options {
            memory: "512m".parse().ok(),
            cpus: "1.5".parse().ok(),
            pids: "256".parse().ok(),
            read_only: true,
            ..Options::default()
        };
        let host = agent_container_body(&config(args), &AgentNetwork::Host, &image(), false)
            .host_config
            .unwrap();
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert!(host.tmpfs.unwrap().contains_key("/tmp"));
    }

    #[test]
    fn relay_mode_has_no_network_and_wraps_the_image_entrypoint() {
        let network = AgentNetwork::Relay {
            run_volume: "run".into(),
            bin_volume: "bin".into(),
        };
        let body = agent_container_body(&config(Options::default()), &network, &image(), false);
        let entrypoint = body.entrypoint.unwrap();
        assert_eq!(entrypoint[..2], [PROXY_BINARY, "relay"]);
        assert_eq!(
            entrypoint.last().map(String::as_str),
            Some("/usr/local/bin/agent-entrypoint")
        );
        assert_eq!(body.cmd, Some(vec!["pi".to_owned(), "-p".to_owned()]));
        let env = body.env.unwrap();
        for expected in [
            "HTTPS_PROXY=http://127.0.0.1:8888",
            "http_proxy=http://127.0.0.1:8888",
            "NO_PROXY=localhost,127.0.0.1",
            "NODE_USE_ENV_PROXY=1",
        ] {
            assert!(env.iter().any(|e| e == expected), "{expected} missing");
        }
        assert!(
            env.iter().any(
                |e| e.starts_with("JAVA_TOOL_OPTIONS=") && e.contains("-Dhttps.proxyPort=8888")
            )
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.init, Some(false));
        let volumes: Vec<_> = host
            .mounts
            .unwrap()
            .into_iter()
            .filter(|m| m.typ == Some(MountType::VOLUME))
            .collect();
        assert_eq!(volumes.len(), 2);
        assert!(volumes.iter().all(|m| m.read_only == Some(true)));
    }

    #[test]
    fn the_allowlist_is_read_only_wherever_a_mount_exposes_it() {
        let mounts = vec![
            bind("/home/a/.agents", "/home/piuser/.agents", false),
            bind("/home/a", "/home/a", false),
            bind("/home/a/.agents", "/ro/agents", true),
            bind("/srv", "/srv", false),
        ];
        let protected =
            protect_allowlist(std::path::Path::new("/home/a/.agents/allow.txt"), &mounts);
        let targets: Vec<_> = protected
            .iter()
            .map(|m| (m.target.as_deref(), m.read_only))
            .collect();
        assert_eq!(
            targets,
            [
                (Some("/home/piuser/.agents/allow.txt"), Some(true)),
                (Some("/home/a/.agents/allow.txt"), Some(true))
            ]
        );
        assert!(
            protected
                .iter()
                .all(|m| m.source.as_deref() == Some("/home/a/.agents/allow.txt"))
        );
    }

    #[test]
    fn internal_network_mode_points_at_the_proxy_alias() {
        let network = AgentNetwork::Internal {
            network: "net".into(),
        };
        let body = agent_container_body(&config(Options::default()), &network, &image(), false);
        assert!(
            body.env
                .unwrap()
                .contains(&"HTTP_PROXY=http://proxy:8888".to_owned())
        );
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("net")
        );
    }
}
