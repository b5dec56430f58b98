//! The agent container: hardened, as the user, in the working directory, with the
//! profile's mounts (what runs on the host protected: [`agent_mounts`]) and environment,
//! limited, on a per-run network of its own, and cut off from the network in proxy mode.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount};

use super::config::{Memory, SandboxConfig};
use super::sidecar::PROXY_ALIAS;
use super::{Sandbox, SandboxError, bind, hardened, volume};
use crate::engine::ImageCommand;
use crate::options::profile::Missing;
use sandbox_policy::protocol::{self, BIN_DIR, PROXY_PORT, RUN_DIR};

/// How the agent container reaches the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentNetwork {
    /// A per-run bridge network: unrestricted egress, not the host's loopback (no proxy).
    Bridge { network: String },
    /// The host's network (no proxy, `--network host`).
    Host,
    /// No network; the relay as PID 1 (from the tools volume) reaches the proxy through
    /// the shared run volume.
    Relay { run_volume: String },
    /// The per-run internal network, where the sidecar has the alias `proxy`.
    Internal { network: String },
}

impl Sandbox<'_> {
    /// Creates the per-run bridge network of an agent without the proxy.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub(crate) async fn create_agent_network(&self) -> Result<AgentNetwork, SandboxError> {
        let network = self.create_network("egress", false).await?;
        Ok(AgentNetwork::Bridge { network })
    }

    /// Creates (does not start) the agent container for `config`, reaching the network
    /// as `network` says, with the `sandbox-proxy` binary of the `tools` volume (the
    /// relay, the login callbacks' pipe) when there is one; `image` is the image's own
    /// command, which the relay wraps.
    ///
    /// # Errors
    ///
    /// A mount source cannot be created, or the engine refuses the container.
    pub(crate) async fn create_agent_container(
        &self,
        config: &SandboxConfig,
        network: &AgentNetwork,
        tools: Option<&str>,
        image: &ImageCommand,
        tty: bool,
    ) -> Result<String, SandboxError> {
        let missing_sources = config
            .mounts
            .iter()
            .filter(|m| m.missing == Missing::Create)
            .map(|m| &m.source);
        for dir in missing_sources.chain(&config.protection.create) {
            if !dir.exists() {
                create_private_dir(dir).map_err(|source| SandboxError::MountSource {
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        let memory = match config.limits.memory {
            Memory::EngineShare => {
                let total = self.engine.total_memory().await?;
                config
                    .limits
                    .memory
                    .bytes(total.unwrap_or(FALLBACK_ENGINE_MEMORY))
            }
            other => other.bytes(0),
        };
        let body = agent_container_body(config, network, tools, image, tty, memory);
        let id = self.create_container("agent", body).await?;
        if let Ok(mut agent) = self.agent.lock() {
            *agent = Some(id.clone());
        }
        Ok(id)
    }
}

/// The engine memory assumed when the engine does not say how much it has.
const FALLBACK_ENGINE_MEMORY: u64 = 4 << 30;

/// Creates `dir` and its missing parents, readable by the user only (they hold the
/// user's configuration); as the user, where Docker would create them as root.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Every bind mount of the agent container, the final list: the working directory, the
/// profile's mounts (one at the working directory's own path is left out: the working
/// directory wins), and the mounts that keep protected paths read-only
/// ([`Protection::mounts`](super::protect::Protection::mounts)).
pub(crate) fn agent_mounts(config: &SandboxConfig) -> Vec<Mount> {
    let workdir = config.workdir.to_string_lossy().into_owned();
    let mut mounts = vec![bind(&workdir, &workdir, false)];
    mounts.extend(
        config
            .mounts
            .iter()
            .filter(|m| m.missing == Missing::Create || m.source.exists())
            .filter(|m| m.target != workdir)
            .map(|m| bind(&m.source.to_string_lossy(), &m.target, m.read_only)),
    );
    let protective = config.protection.mounts(&mounts);
    mounts.extend(protective);
    mounts
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
/// open (closed when the launcher's input ends); `tty` gives it a terminal; `tools` is
/// mounted read-only at [`BIN_DIR`]. `memory` is the memory limit in bytes, if any.
pub(crate) fn agent_container_body(
    config: &SandboxConfig,
    network: &AgentNetwork,
    tools: Option<&str>,
    image: &ImageCommand,
    tty: bool,
    memory: Option<u64>,
) -> ContainerCreateBody {
    let workdir = config.workdir.to_string_lossy().into_owned();
    let mut mounts = agent_mounts(config);
    let mut env = config.env.clone();
    let mut entrypoint = None;
    mounts.extend(tools.map(|tools| volume(tools, BIN_DIR, true)));
    let (network_mode, init) = match network {
        AgentNetwork::Bridge { network } => (network.clone(), true),
        AgentNetwork::Host => ("host".to_owned(), true),
        AgentNetwork::Relay { run_volume } => {
            mounts.push(volume(run_volume, RUN_DIR, true));
            env.extend(proxy_environment("127.0.0.1", PROXY_PORT));
            entrypoint = Some(protocol::relay_entrypoint(&image.entrypoint));
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
            memory: memory.and_then(|bytes| i64::try_from(bytes).ok()),
            nano_cpus: limits.cpus.and_then(|c| i64::try_from(c.nano_cpus()).ok()),
            pids_limit: limits.pids.map(i64::from),
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
    use bollard::models::MountType;

    fn config(args: Options) -> SandboxConfig {
        let profile = Profile::lookup("pi", &Default::default()).unwrap();
        let host = Host {
            cwd: "/src/project".into(),
            home: "/nonexistent-home".into(),
            config_dir: "/nonexistent-home/.config/agent-sandbox".into(),
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
            &AgentNetwork::Bridge {
                network: "net".into(),
            },
            None,
            &image(),
            true,
            None,
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
        assert_eq!(host.network_mode.as_deref(), Some("net"));
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
        let targets: Vec<&str> = mounts.iter().filter_map(|m| m.target.as_deref()).collect();
        for target in [
            "/home/piuser/.pi/agent",
            "/home/piuser/.agents",
            "/home/piuser/.config/acli",
            "/home/piuser/.pi/context-mode",
        ] {
            assert!(targets.contains(&target), "{target}: {targets:?}");
        }
        assert!(!targets.iter().any(|t| t.contains("dotfiles")));
    }

    #[test]
    fn the_code_parts_of_the_agent_config_are_read_only_unless_writable_config() {
        let protected = |args| {
            let mounts = agent_mounts(&config(args));
            let mut read_only: Vec<String> = mounts
                .iter()
                .filter(|m| m.read_only == Some(true))
                .filter_map(|m| m.target.clone())
                .collect();
            read_only.sort();
            read_only
        };
        let by_default = protected(Options::default());
        for target in [
            "/home/piuser/.pi/agent/extensions",
            "/home/piuser/.pi/agent/npm-global",
            "/home/piuser/.pi/agent/tmp/extensions",
            "/home/piuser/.agents/skills",
        ] {
            assert!(
                by_default.iter().any(|t| t == target),
                "{target}: {by_default:?}"
            );
        }
        // Missing files cannot be mounted; they are compared at exit instead.
        assert!(!by_default.iter().any(|t| t.ends_with("mcp.json")));
        let writable = protected(Options {
            writable_config: true,
            ..Options::default()
        });
        assert!(writable.is_empty(), "{writable:?}");
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
        let host = agent_container_body(
            &config(args),
            &AgentNetwork::Host,
            None,
            &image(),
            false,
            Some(512 << 20),
        )
        .host_config
        .unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
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
        };
        let body = agent_container_body(
            &config(Options::default()),
            &network,
            Some("bin"),
            &image(),
            false,
            None,
        );
        let entrypoint = body.entrypoint.unwrap();
        assert_eq!(entrypoint[..2], [protocol::PROXY_BINARY, "relay"]);
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
    fn internal_network_mode_points_at_the_proxy_alias() {
        let network = AgentNetwork::Internal {
            network: "net".into(),
        };
        let body = agent_container_body(
            &config(Options::default()),
            &network,
            None,
            &image(),
            false,
            None,
        );
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
