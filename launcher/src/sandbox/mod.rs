//! The sandbox of one run, in domain verbs: its validated description ([`config`], with
//! the working directories it refuses in [`workdir`] and what it protects from the agent
//! in [`protect`]), the allowlist the launcher owns and follows ([`allowlist`]), the images ([`images`]), the session labels on everything it creates
//! ([`labels`], [`liveness`]), the proxy sidecar ([`sidecar`]), the hardened agent
//! container ([`agent`]), and teardown in reverse order on every path ([`teardown`]).

mod agent;
pub(crate) mod allowlist;
pub(crate) mod checkout;
pub(crate) mod config;
pub(crate) mod denied;
pub mod images;
pub(crate) mod labels;
pub(crate) mod liveness;
pub(crate) mod private_dirs;
pub(crate) mod protect;
mod sidecar;
pub(crate) mod sidecar_image;
pub(crate) mod teardown;
mod workdir;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
};

use crate::engine::{Engine, EngineError};
use labels::Session;
use teardown::Resource;

pub(crate) use agent::AgentNetwork;

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A mount source could not be created.
    #[error("cannot create {path} to mount it into the sandbox")]
    MountSource {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The sidecar exited before it was ready.
    #[error("the proxy sidecar exited before it was ready; its output:\n{logs}")]
    ProxyExited { logs: String },
    /// The sidecar did not become ready in time.
    #[error("the proxy sidecar was not ready after {timeout:?}; its output:\n{logs}")]
    ProxyTimeout { timeout: Duration, logs: String },
}

/// The objects of one run.
pub(crate) struct Sandbox<'a> {
    engine: &'a Engine,
    session: &'a Session,
    // Interior mutability so that a signal can reach the agent while the run goes on;
    // the locks are never held across an await.
    created: Mutex<Vec<Resource>>,
    agent: Mutex<Option<String>>,
    proxy: Mutex<Option<String>>,
}

impl<'a> Sandbox<'a> {
    pub(crate) fn new(engine: &'a Engine, session: &'a Session) -> Self {
        Self {
            engine,
            session,
            created: Mutex::new(Vec::new()),
            agent: Mutex::new(None),
            proxy: Mutex::new(None),
        }
    }

    fn record(&self, resource: Resource) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(resource);
    }

    /// The agent container's id, once it exists.
    pub(crate) fn agent_id(&self) -> Option<String> {
        self.agent.lock().ok().and_then(|agent| agent.clone())
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

    /// Creates a container with `role`; it is recorded for teardown at once. The
    /// volumes its image declares (`VOLUME`) become anonymous volumes with the session's
    /// labels, so that teardown and `gc` find them even when the container is gone.
    async fn create_container(
        &self,
        role: &str,
        mut body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let labels = self.session.labels(role);
        if let Some(image) = &body.image {
            let declared = self.engine.image_volumes(image).await?;
            let host_config = body.host_config.get_or_insert_with(HostConfig::default);
            let mounts = host_config.mounts.get_or_insert_with(Vec::new);
            let volumes = labelled_volumes(&declared, mounts, &labels);
            mounts.extend(volumes);
        }
        body.labels = Some(labels);
        let id = self
            .engine
            .create_container(&self.session.name(role), body)
            .await?;
        self.record(Resource::Container(id.clone()));
        Ok(id)
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

/// The cap on each container's log kept by the engine: the proxy writes a line per
/// request, and a loop of refused requests must not fill the disk. Two files, so the
/// latest lines survive a rotation.
const LOG_MAX_SIZE: &str = "10m";
const LOG_MAX_FILES: &str = "2";

/// The settings both containers share: no capabilities, no privilege gain, private IPC,
/// a capped log (`json-file`, which every engine can read back: the launcher follows
/// the sidecar's log for its ready line).
fn hardened() -> HostConfig {
    HostConfig {
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        ipc_mode: Some("private".to_owned()),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
            ])),
        }),
        ..HostConfig::default()
    }
}

/// Anonymous volumes carrying `labels` for the paths an image declares as volumes,
/// except where `mounts` already mount something.
fn labelled_volumes(
    declared: &[String],
    mounts: &[Mount],
    labels: &HashMap<String, String>,
) -> Vec<Mount> {
    declared
        .iter()
        .filter(|path| {
            !mounts
                .iter()
                .any(|m| m.target.as_deref() == Some(path.as_str()))
        })
        .map(|path| Mount {
            typ: Some(MountType::VOLUME),
            target: Some(path.clone()),
            volume_options: Some(MountVolumeOptions {
                labels: Some(labels.clone()),
                ..MountVolumeOptions::default()
            }),
            ..Mount::default()
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_containers_log_to_a_capped_file() {
        let log = hardened().log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let config = log.config.unwrap();
        assert_eq!(config["max-size"], LOG_MAX_SIZE);
        assert_eq!(config["max-file"], LOG_MAX_FILES);
    }

    #[test]
    fn declared_volumes_become_labelled_anonymous_volumes_unless_mounted() {
        let labels = HashMap::from([("agent-sandbox.session".to_owned(), "s1".to_owned())]);
        let mounts = [bind("/src", "/data", false)];
        let volumes = labelled_volumes(&["/data".into(), "/cache".into()], &mounts, &labels);
        assert_eq!(volumes.len(), 1);
        let volume = &volumes[0];
        assert_eq!(volume.typ, Some(MountType::VOLUME));
        assert_eq!(volume.target.as_deref(), Some("/cache"));
        assert_eq!(volume.source, None, "anonymous");
        assert_eq!(
            volume
                .volume_options
                .as_ref()
                .and_then(|o| o.labels.as_ref()),
            Some(&labels)
        );
    }
}
