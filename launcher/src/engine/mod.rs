//! The only module that speaks to the Docker engine (through bollard). Every operation
//! has its own error variant naming what it was doing and on what; "already gone" (404)
//! is told apart by status code, never by message text. The rest of the launcher speaks
//! domain verbs (`sandbox`, `teardown`, `images`) on top of these calls.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, NetworkConnectRequest, NetworkCreateRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, CreateContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, ResizeContainerTTYOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

pub mod context;

use context::{ContextError, Endpoint};

/// HTTP status the engine answers when the object does not exist.
const NOT_FOUND: u16 = 404;
/// HTTP status the engine answers when the object is in a conflicting state (for removal:
/// already being removed).
const CONFLICT: u16 = 409;

/// A failed engine operation.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine address could not be worked out.
    #[error("cannot work out which docker engine to use")]
    Context(#[from] ContextError),
    /// The engine address is not one bollard can connect to.
    #[error("cannot connect to the docker engine at {endpoint}")]
    Connect {
        /// The address.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// The engine did not answer.
    #[error("no docker engine answers at {endpoint}; is docker running?")]
    Unreachable {
        /// The address.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Inspecting an image failed.
    #[error("cannot inspect image {image}")]
    InspectImage {
        /// The image.
        image: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Talking to the engine during a build failed.
    #[error("cannot build image {image}")]
    Build {
        /// The image tag.
        image: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// The build ran and failed.
    #[error("building image {image} failed: {message}\n{log}")]
    BuildFailed {
        /// The image tag.
        image: String,
        /// The engine's error message.
        message: String,
        /// The last lines of the build output.
        log: String,
    },
    /// Creating a network failed.
    #[error("cannot create network {name}")]
    CreateNetwork {
        /// The network name.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Connecting a container to a network failed.
    #[error("cannot connect container {container} to network {network}")]
    ConnectNetwork {
        /// The network.
        network: String,
        /// The container.
        container: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Removing a network failed.
    #[error("cannot remove network {name}")]
    RemoveNetwork {
        /// The network.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Creating a volume failed.
    #[error("cannot create volume {name}")]
    CreateVolume {
        /// The volume.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Removing a volume failed.
    #[error("cannot remove volume {name}")]
    RemoveVolume {
        /// The volume.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Creating a container failed.
    #[error("cannot create container {name}")]
    CreateContainer {
        /// The container name.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Starting a container failed.
    #[error("cannot start container {name}")]
    StartContainer {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Attaching to a container failed.
    #[error("cannot attach to container {name}")]
    Attach {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Waiting for a container failed.
    #[error("cannot wait for container {name}")]
    Wait {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Signalling a container failed.
    #[error("cannot signal container {name}")]
    Kill {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Resizing a container's TTY failed.
    #[error("cannot resize the terminal of container {name}")]
    Resize {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// The wait ended without an exit status.
    #[error("the engine reported no exit status for container {name}")]
    NoExitStatus {
        /// The container.
        name: String,
    },
    /// Reading a container's logs failed.
    #[error("cannot read the logs of container {name}")]
    Logs {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Running a command in a container failed.
    #[error("cannot run {command:?} in container {name}")]
    Exec {
        /// The container.
        name: String,
        /// The command.
        command: Vec<String>,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Removing a container failed.
    #[error("cannot remove container {name}")]
    RemoveContainer {
        /// The container.
        name: String,
        /// The cause.
        #[source]
        source: BollardError,
    },
    /// Listing objects failed.
    #[error("cannot list {kind}")]
    List {
        /// What was listed.
        kind: Kind,
        /// The cause.
        #[source]
        source: BollardError,
    },
}

/// The HTTP status of an engine error, if it is one.
fn status(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// `Ok` for success and for "no such object" (or "already being removed"): removal is
/// done either way.
fn gone_is_done(result: Result<(), BollardError>) -> Result<(), BollardError> {
    match result {
        Err(error) if matches!(status(&error), Some(NOT_FOUND | CONFLICT)) => Ok(()),
        other => other,
    }
}

/// What the engine says about itself.
#[derive(Debug, Clone)]
pub struct EngineVersion {
    /// The engine's version (`20.10.24`).
    pub version: String,
    /// The API version the engine speaks at most.
    pub api_version: String,
    /// The API version this client negotiated.
    pub negotiated: String,
    /// The engine's operating system and architecture.
    pub platform: String,
}

/// An image's default command, needed to wrap it (for the relay as PID 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    /// The image's ENTRYPOINT.
    pub entrypoint: Vec<String>,
    /// The image's CMD.
    pub cmd: Vec<String>,
}

/// The kinds of engine object a run creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Container => "containers",
            Kind::Network => "networks",
            Kind::Volume => "volumes",
        })
    }
}

/// An object found by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// What it is.
    pub kind: Kind,
    /// Container id, network id or volume name.
    pub id: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// A piece of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Written to its standard output (or its terminal).
    Stdout(Bytes),
    /// Written to its standard error.
    Stderr(Bytes),
}

impl From<LogOutput> for Output {
    fn from(frame: LogOutput) -> Self {
        match frame {
            LogOutput::StdErr { message } => Output::Stderr(message),
            other => Output::Stdout(other.into_bytes()),
        }
    }
}

/// A stream of a container's output.
pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Output, DockerError>> + Send>>;

/// The output and input of an attached container.
pub struct Attached {
    /// Output (demultiplexed when the container has no TTY).
    pub output: OutputStream,
    /// The container's stdin.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// What a command run in a container printed, and its status.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Its exit code, when the engine reported one.
    pub exit_code: Option<i64>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// A connection to the Docker engine, with a negotiated API version.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
}

impl Engine {
    /// Connects the way the docker CLI does (see [`context`]) and negotiates the API
    /// version, which also checks that the engine answers.
    ///
    /// # Errors
    ///
    /// No engine address can be worked out, or no engine answers there.
    pub async fn connect() -> Result<Self, DockerError> {
        let env = |name: &str| std::env::var(name).ok();
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let config = context::config_dir(env, home.as_deref());
        let endpoint = context::resolve(env, config.as_deref())?;
        Self::connect_to(endpoint).await
    }

    /// Connects to `endpoint` and negotiates the API version.
    ///
    /// # Errors
    ///
    /// The address is not usable, or no engine answers there.
    pub async fn connect_to(endpoint: Endpoint) -> Result<Self, DockerError> {
        let docker =
            Docker::connect_with_host(&endpoint.host).map_err(|source| DockerError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
        let docker =
            docker
                .negotiate_version()
                .await
                .map_err(|source| DockerError::Unreachable {
                    endpoint: endpoint.clone(),
                    source,
                })?;
        Ok(Self { docker, endpoint })
    }

    /// The engine's address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The engine's version and the negotiated API version.
    ///
    /// # Errors
    ///
    /// The engine does not answer.
    pub async fn version(&self) -> Result<EngineVersion, DockerError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|source| DockerError::Unreachable {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        Ok(EngineVersion {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            negotiated: self.docker.client_version().to_string(),
            platform: format!(
                "{}/{}",
                version.os.unwrap_or_default(),
                version.arch.unwrap_or_default()
            ),
        })
    }

    /// The labels of `image`, or `None` when there is no such image.
    ///
    /// # Errors
    ///
    /// The engine fails for another reason.
    pub async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<HashMap<String, String>>, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(
                inspect.config.and_then(|c| c.labels).unwrap_or_default(),
            )),
            Err(error) if status(&error) == Some(NOT_FOUND) => Ok(None),
            Err(source) => Err(DockerError::InspectImage {
                image: image.to_owned(),
                source,
            }),
        }
    }

    /// The ENTRYPOINT and CMD of `image`.
    ///
    /// # Errors
    ///
    /// There is no such image, or the engine fails.
    pub async fn image_command(&self, image: &str) -> Result<ImageCommand, DockerError> {
        let inspect =
            self.docker
                .inspect_image(image)
                .await
                .map_err(|source| DockerError::InspectImage {
                    image: image.to_owned(),
                    source,
                })?;
        let config = inspect.config.unwrap_or_default();
        Ok(ImageCommand {
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
        })
    }

    /// Builds `tag` from a tar build context (the classic builder, which every engine
    /// and Podman's compatible API have), reporting each output line to `progress`.
    ///
    /// # Errors
    ///
    /// The engine fails, or the build itself fails ([`DockerError::BuildFailed`], with the
    /// last lines of its output).
    pub async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        target: &str,
        build_args: &HashMap<String, String>,
        labels: &HashMap<String, String>,
        mut progress: impl FnMut(&str),
    ) -> Result<(), DockerError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .target(target)
            .buildargs(build_args)
            .labels(labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                // A build step failed: the engine's message, with the output before it.
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(DockerError::BuildFailed {
                        image: tag.to_owned(),
                        message: error,
                        log: tail.join("\n"),
                    });
                }
                Err(source) => {
                    return Err(DockerError::Build {
                        image: tag.to_owned(),
                        source,
                    });
                }
            };
            if let Some(detail) = info.error_detail {
                return Err(DockerError::BuildFailed {
                    image: tag.to_owned(),
                    message: detail.message.unwrap_or_default(),
                    log: tail.join("\n"),
                });
            }
            for line in info
                .stream
                .iter()
                .chain(info.status.iter())
                .flat_map(|text| text.lines())
            {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                progress(line);
                if tail.len() == 20 {
                    tail.remove(0);
                }
                tail.push(line.to_owned());
            }
        }
        Ok(())
    }

    /// Creates a bridge network (`internal`: without a route out) and returns its id.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example the name is taken).
    pub async fn create_network(
        &self,
        name: &str,
        internal: bool,
        labels: &HashMap<String, String>,
    ) -> Result<String, DockerError> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            internal: Some(internal),
            labels: Some(labels.clone()),
            ..NetworkCreateRequest::default()
        };
        let created = self
            .docker
            .create_network(request)
            .await
            .map_err(|source| DockerError::CreateNetwork {
                name: name.to_owned(),
                source,
            })?;
        Ok(created.id)
    }

    /// Connects `container` to `network`, reachable there under `aliases`.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<(), DockerError> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..EndpointSettings::default()
            }),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(|source| DockerError::ConnectNetwork {
                network: network.to_owned(),
                container: container.to_owned(),
                source,
            })
    }

    /// Removes a network; one that is already gone counts as removed.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example a container still uses it).
    pub async fn remove_network(&self, id: &str) -> Result<(), DockerError> {
        gone_is_done(self.docker.remove_network(id).await).map_err(|source| {
            DockerError::RemoveNetwork {
                name: id.to_owned(),
                source,
            }
        })
    }

    /// Creates a local volume.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), DockerError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels.clone()),
            ..VolumeCreateRequest::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(drop)
            .map_err(|source| DockerError::CreateVolume {
                name: name.to_owned(),
                source,
            })
    }

    /// Removes a volume; one that is already gone counts as removed.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example a container still uses it).
    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        gone_is_done(self.docker.remove_volume(name, Some(options)).await).map_err(|source| {
            DockerError::RemoveVolume {
                name: name.to_owned(),
                source,
            }
        })
    }

    /// Creates a container named `name` and returns its id.
    ///
    /// # Errors
    ///
    /// The engine refuses (unknown image, name taken, invalid option).
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, DockerError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| DockerError::CreateContainer {
                name: name.to_owned(),
                source,
            })?;
        Ok(created.id)
    }

    /// Starts a created container.
    ///
    /// # Errors
    ///
    /// The engine cannot start it.
    pub async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|source| DockerError::StartContainer {
                name: id.to_owned(),
                source,
            })
    }

    /// Attaches to a container's stdin, stdout and stderr. Done before the container
    /// starts, no output is lost. `detach_keys` replaces docker's default Ctrl-P Ctrl-Q,
    /// which would swallow every Ctrl-P typed.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub async fn attach(&self, id: &str, detach_keys: &str) -> Result<Attached, DockerError> {
        let options = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .stdin(true)
            .detach_keys(detach_keys)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|source| DockerError::Attach {
                name: id.to_owned(),
                source,
            })?;
        let name = id.to_owned();
        let output = attached.output.map(move |item| {
            item.map(Output::from)
                .map_err(|source| DockerError::Attach {
                    name: name.clone(),
                    source,
                })
        });
        Ok(Attached {
            output: Box::pin(output),
            input: attached.input,
        })
    }

    /// Sends `signal` (a name such as `SIGTERM`) to a container's main process; a
    /// container that is gone or no longer running counts as signalled.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<(), DockerError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        gone_is_done(self.docker.kill_container(id, Some(options)).await).map_err(|source| {
            DockerError::Kill {
                name: id.to_owned(),
                source,
            }
        })
    }

    /// Sets the size of a container's TTY.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example before the TTY exists).
    pub async fn resize_tty(&self, id: &str, columns: u16, rows: u16) -> Result<(), DockerError> {
        let options = ResizeContainerTTYOptionsBuilder::default()
            .w(i32::from(columns))
            .h(i32::from(rows))
            .build();
        self.docker
            .resize_container_tty(id, options)
            .await
            .map_err(|source| DockerError::Resize {
                name: id.to_owned(),
                source,
            })
    }

    /// A future for the exit status of a started container. The condition is "not
    /// running", so a container that already exited answers at once; call it only after
    /// the start call returned (before it, a created container counts as not running).
    pub fn wait_exit(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<i64, DockerError>> + Send + 'static {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(id, Some(options));
        let name = id.to_owned();
        async move {
            match stream.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                // bollard reports a non-zero status as an error carrying the code.
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(source)) => Err(DockerError::Wait { name, source }),
                None => Err(DockerError::NoExitStatus { name }),
            }
        }
    }

    /// Follows a container's log from its start (stdout and stderr frames).
    pub fn follow_logs(&self, id: &str) -> OutputStream {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let name = id.to_owned();
        Box::pin(self.docker.logs(id, Some(options)).map(move |item| {
            item.map(Output::from).map_err(|source| DockerError::Logs {
                name: name.clone(),
                source,
            })
        }))
    }

    /// The whole log of a container so far, both streams interleaved.
    ///
    /// # Errors
    ///
    /// The engine fails.
    pub async fn logs(&self, id: &str) -> Result<String, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            let frame = item.map_err(|source| DockerError::Logs {
                name: id.to_owned(),
                source,
            })?;
            text.push_str(&String::from_utf8_lossy(&frame.into_bytes()));
        }
        Ok(text)
    }

    /// Runs `command` in a running container and collects its output and status.
    ///
    /// # Errors
    ///
    /// The engine fails.
    pub async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput, DockerError> {
        let fail = |source| DockerError::Exec {
            name: id.to_owned(),
            command: command.to_vec(),
            source,
        };
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(fail)?;
        let mut output = ExecOutput::default();
        if let StartExecResults::Attached {
            output: mut frames, ..
        } = self.docker.start_exec(&exec.id, None).await.map_err(fail)?
        {
            while let Some(frame) = frames.next().await {
                match frame.map_err(fail)? {
                    LogOutput::StdErr { message } => {
                        output.stderr.push_str(&String::from_utf8_lossy(&message))
                    }
                    other => output
                        .stdout
                        .push_str(&String::from_utf8_lossy(&other.into_bytes())),
                }
            }
        }
        output.exit_code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(fail)?
            .exit_code;
        Ok(output)
    }

    /// Removes a container, killing it if it runs; one already gone counts as removed.
    ///
    /// # Errors
    ///
    /// The engine refuses.
    pub async fn remove_container(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        gone_is_done(self.docker.remove_container(id, Some(options)).await).map_err(|source| {
            DockerError::RemoveContainer {
                name: id.to_owned(),
                source,
            }
        })
    }

    /// The objects of `kind` (containers: running or not) carrying the label filter `key`
    /// (`name` for any value, `name=value` for one value).
    ///
    /// # Errors
    ///
    /// The engine fails.
    pub async fn labelled(&self, kind: Kind, key: &str) -> Result<Vec<Labelled>, DockerError> {
        let filters = HashMap::from([("label", vec![key])]);
        let labelled = |id: Option<String>, labels: Option<HashMap<String, String>>| {
            Some(Labelled {
                kind,
                id: id?,
                labels: labels.unwrap_or_default(),
            })
        };
        let listed = match kind {
            Kind::Container => {
                let options = ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build();
                self.docker
                    .list_containers(Some(options))
                    .await
                    .map(|list| {
                        list.into_iter()
                            .filter_map(|c| labelled(c.id, c.labels))
                            .collect()
                    })
            }
            Kind::Network => {
                let options = ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build();
                self.docker.list_networks(Some(options)).await.map(|list| {
                    list.into_iter()
                        .filter_map(|n| labelled(n.id, n.labels))
                        .collect()
                })
            }
            Kind::Volume => {
                let options = ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build();
                self.docker.list_volumes(Some(options)).await.map(|list| {
                    let volumes = list.volumes.unwrap_or_default().into_iter();
                    volumes
                        .filter_map(|v| labelled(Some(v.name), Some(v.labels)))
                        .collect()
                })
            }
        };
        listed.map_err(|source| DockerError::List { kind, source })
    }
}
