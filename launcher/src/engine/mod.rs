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
    CreateImageOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, ResizeContainerTTYOptionsBuilder,
    TagImageOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

pub(crate) mod context;
mod error;

use context::Endpoint;
use error::failed;
pub use error::{EngineError, OperationError};

/// HTTP status the engine answers when the object does not exist.
const NOT_FOUND: u16 = 404;
/// HTTP status the engine answers when the object is in a conflicting state (for removal:
/// already being removed).
const CONFLICT: u16 = 409;

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
pub(crate) struct EngineVersion {
    /// The engine's version (`20.10.24`).
    pub(crate) version: String,
    /// The API version the engine speaks at most.
    pub(crate) api_version: String,
    /// The API version this client negotiated.
    pub(crate) negotiated: String,
    /// The engine's operating system and architecture.
    pub(crate) platform: String,
}

/// An image's default command, needed to wrap it (for the relay as PID 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageCommand {
    pub(crate) entrypoint: Vec<String>,
    pub(crate) cmd: Vec<String>,
}

/// What the engine reports about one layer of a pull.
#[derive(Debug, Clone)]
pub(crate) struct LayerProgress {
    /// The layer's short id.
    pub(crate) layer: String,
    /// `Downloading`, `Download complete`, `Pull complete`, `Already exists`, ...
    pub(crate) status: String,
    /// Bytes done of the current step, when the engine says.
    pub(crate) current: Option<u64>,
    /// The step's total bytes, when the engine says.
    pub(crate) total: Option<u64>,
}

/// The kinds of engine object a run creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Network,
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
pub(crate) struct Labelled {
    pub(crate) kind: Kind,
    /// Container id, network id or volume name.
    pub(crate) id: String,
    pub(crate) labels: HashMap<String, String>,
}

/// A piece of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
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
pub(crate) type OutputStream = Pin<Box<dyn Stream<Item = Result<Output, EngineError>> + Send>>;

/// `stream` as an [`OutputStream`], its errors as failures of `operation` on `object`.
fn output_stream(
    stream: impl Stream<Item = Result<LogOutput, BollardError>> + Send + 'static,
    operation: &'static str,
    object: String,
) -> OutputStream {
    Box::pin(stream.map(move |item| {
        item.map(Output::from)
            .map_err(failed(operation, object.clone()))
    }))
}

/// The output and input of an attached container.
pub(crate) struct Attached {
    /// Output (demultiplexed when the container has no TTY).
    pub(crate) output: OutputStream,
    pub(crate) input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// What a command run in a container printed, and its status.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecOutput {
    pub(crate) exit_code: Option<i64>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A connection to the Docker engine, with a negotiated API version.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
}

impl Engine {
    /// Connects the way the docker CLI does (see `context`) and negotiates the API
    /// version, which also checks that the engine answers.
    ///
    /// # Errors
    ///
    /// No engine address can be worked out, or no engine answers there.
    pub async fn connect() -> Result<Self, EngineError> {
        let env = |name: &str| std::env::var(name).ok();
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let config = context::config_dir(env, home.as_deref());
        let endpoint = context::resolve(env, config.as_deref())
            .map_err(failed("work out", "which docker engine to use".to_owned()))?;
        Self::connect_to(endpoint).await
    }

    /// Connects to `endpoint` and negotiates the API version.
    ///
    /// # Errors
    ///
    /// The address is not usable, or no engine answers there.
    pub(crate) async fn connect_to(endpoint: Endpoint) -> Result<Self, EngineError> {
        let docker = Docker::connect_with_host(&endpoint.host).map_err(failed(
            "connect to",
            format!("the docker engine at {endpoint}"),
        ))?;
        let docker =
            docker
                .negotiate_version()
                .await
                .map_err(|source| EngineError::Unreachable {
                    endpoint: endpoint.to_string(),
                    source,
                })?;
        Ok(Self { docker, endpoint })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The engine's version and the negotiated API version.
    ///
    /// # Errors
    ///
    /// The engine does not answer.
    pub(crate) async fn version(&self) -> Result<EngineVersion, EngineError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|source| EngineError::Unreachable {
                endpoint: self.endpoint.to_string(),
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
    pub(crate) async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(
                inspect.config.and_then(|c| c.labels).unwrap_or_default(),
            )),
            Err(error) if status(&error) == Some(NOT_FOUND) => Ok(None),
            Err(source) => Err(failed("inspect", format!("image {image}"))(source)),
        }
    }

    /// The paths `image` declares as volumes (`VOLUME`).
    ///
    /// # Errors
    ///
    /// There is no such image, or the engine fails.
    pub(crate) async fn image_volumes(&self, image: &str) -> Result<Vec<String>, EngineError> {
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(failed("inspect", format!("image {image}")))?;
        let mut volumes: Vec<String> = inspect
            .config
            .and_then(|c| c.volumes)
            .unwrap_or_default()
            .into_iter()
            .collect();
        volumes.sort();
        Ok(volumes)
    }

    /// The memory the engine can give containers, in bytes (the host's, or Docker
    /// Desktop's and Colima's virtual machine's), when it says.
    ///
    /// # Errors
    ///
    /// The engine does not answer.
    pub(crate) async fn total_memory(&self) -> Result<Option<u64>, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(failed("ask", "the engine about itself".to_owned()))?;
        Ok(info
            .mem_total
            .and_then(|bytes| u64::try_from(bytes).ok())
            .filter(|&bytes| bytes > 0))
    }

    /// The ENTRYPOINT and CMD of `image`.
    ///
    /// # Errors
    ///
    /// There is no such image, or the engine fails.
    pub(crate) async fn image_command(&self, image: &str) -> Result<ImageCommand, EngineError> {
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(failed("inspect", format!("image {image}")))?;
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
    /// The engine fails, or the build itself fails ([`EngineError::BuildFailed`], with the
    /// last lines of its output).
    pub(crate) async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        target: &str,
        build_args: &HashMap<String, String>,
        labels: &HashMap<String, String>,
        mut progress: impl FnMut(&str),
    ) -> Result<(), EngineError> {
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
                    return Err(EngineError::BuildFailed {
                        image: tag.to_owned(),
                        message: error,
                        log: tail.join("\n"),
                    });
                }
                Err(source) => return Err(failed("build", format!("image {tag}"))(source)),
            };
            if let Some(detail) = info.error_detail {
                return Err(EngineError::BuildFailed {
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

    /// Pulls `repository` at `reference` (a tag, or a digest `sha256:…`) for the engine's
    /// platform, reporting the progress of each layer to `progress`.
    ///
    /// # Errors
    ///
    /// The registry cannot be reached, refuses, or has no such image.
    pub(crate) async fn pull_image(
        &self,
        repository: &str,
        reference: &str,
        mut progress: impl FnMut(LayerProgress),
    ) -> Result<(), EngineError> {
        let separator = if reference.contains(':') { '@' } else { ':' };
        let object = format!("image {repository}{separator}{reference}");
        // The tag (or digest) always goes separately: without one the engine pulls every tag.
        let options = CreateImageOptionsBuilder::default()
            .from_image(repository)
            .tag(reference)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(failed("pull", object.clone()))?;
            if let Some(detail) = info.error_detail {
                return Err(failed("pull", object)(detail.message.unwrap_or_default()));
            }
            if let (Some(layer), Some(status)) = (info.id, info.status) {
                let detail = info.progress_detail.unwrap_or_default();
                progress(LayerProgress {
                    layer,
                    status,
                    current: detail.current.and_then(|n| u64::try_from(n).ok()),
                    total: detail.total.and_then(|n| u64::try_from(n).ok()),
                });
            }
        }
        Ok(())
    }

    /// Names `image` (a name, an id, or `repository@digest`) `repository:tag` too.
    ///
    /// # Errors
    ///
    /// There is no such image, or the engine fails.
    pub(crate) async fn tag_image(
        &self,
        image: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(failed(
                "tag",
                format!("image {image} as {repository}:{tag}"),
            ))
    }

    /// Creates a bridge network (`internal`: without a route out) and returns its id.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example the name is taken).
    pub(crate) async fn create_network(
        &self,
        name: &str,
        internal: bool,
        labels: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
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
            .map_err(failed("create", format!("network {name}")))?;
        Ok(created.id)
    }

    /// Connects `container` to `network`, reachable there under `aliases`.
    pub(crate) async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
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
            .map_err(failed(
                "connect",
                format!("container {container} to network {network}"),
            ))
    }

    /// Removes a network; one that is already gone counts as removed.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example a container still uses it).
    pub(crate) async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        gone_is_done(self.docker.remove_network(id).await)
            .map_err(failed("remove", format!("network {id}")))
    }

    /// Creates a local volume.
    pub(crate) async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels.clone()),
            ..VolumeCreateRequest::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(drop)
            .map_err(failed("create", format!("volume {name}")))
    }

    /// Removes a volume; one that is already gone counts as removed.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example a container still uses it).
    pub(crate) async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        gone_is_done(self.docker.remove_volume(name, Some(options)).await)
            .map_err(failed("remove", format!("volume {name}")))
    }

    /// Creates a container named `name` and returns its id.
    ///
    /// # Errors
    ///
    /// The engine refuses (unknown image, name taken, invalid option).
    pub(crate) async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(failed("create", format!("container {name}")))?;
        Ok(created.id)
    }

    /// Starts a created container.
    ///
    /// # Errors
    ///
    /// The engine cannot start it.
    pub(crate) async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(failed("start", format!("container {id}")))
    }

    /// Attaches to a container's stdin, stdout and stderr. Done before the container
    /// starts, no output is lost. `detach_keys` replaces docker's default Ctrl-P Ctrl-Q,
    /// which would swallow every Ctrl-P typed.
    pub(crate) async fn attach(
        &self,
        id: &str,
        detach_keys: &str,
    ) -> Result<Attached, EngineError> {
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
            .map_err(failed("attach to", format!("container {id}")))?;
        Ok(Attached {
            output: output_stream(attached.output, "attach to", format!("container {id}")),
            input: attached.input,
        })
    }

    /// Sends `signal` (a name such as `SIGTERM`) to a container's main process; a
    /// container that is gone or no longer running counts as signalled.
    pub(crate) async fn kill_container(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        gone_is_done(self.docker.kill_container(id, Some(options)).await)
            .map_err(failed("signal", format!("container {id}")))
    }

    /// Sets the size of a container's TTY.
    ///
    /// # Errors
    ///
    /// The engine refuses (for example before the TTY exists).
    pub(crate) async fn resize_tty(
        &self,
        id: &str,
        columns: u16,
        rows: u16,
    ) -> Result<(), EngineError> {
        let options = ResizeContainerTTYOptionsBuilder::default()
            .w(i32::from(columns))
            .h(i32::from(rows))
            .build();
        self.docker
            .resize_container_tty(id, options)
            .await
            .map_err(failed("resize the terminal of", format!("container {id}")))
    }

    /// A future for the exit status of a started container. The condition is "not
    /// running", so a container that already exited answers at once; call it only after
    /// the start call returned (before it, a created container counts as not running).
    pub(crate) fn wait_exit(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<i64, EngineError>> + Send + 'static {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(id, Some(options));
        let object = format!("container {id}");
        async move {
            match stream.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                // bollard reports a non-zero status as an error carrying the code.
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(source)) => Err(failed("wait for", object)(source)),
                None => Err(failed("wait for", object)(
                    "the engine reported no exit status",
                )),
            }
        }
    }

    /// Follows a container's log from its start (stdout and stderr frames).
    pub(crate) fn follow_logs(&self, id: &str) -> OutputStream {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let object = format!("container {id}");
        Box::pin(self.docker.logs(id, Some(options)).map(move |item| {
            item.map(Output::from)
                .map_err(failed("read the logs of", object.clone()))
        }))
    }

    /// The whole log of a container so far, both streams interleaved.
    pub(crate) async fn logs(&self, id: &str) -> Result<String, EngineError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            let frame = item.map_err(failed("read the logs of", format!("container {id}")))?;
            text.push_str(&String::from_utf8_lossy(&frame.into_bytes()));
        }
        Ok(text)
    }

    /// Runs `command` in a running container and collects its output and status.
    pub(crate) async fn exec(
        &self,
        id: &str,
        command: &[String],
    ) -> Result<ExecOutput, EngineError> {
        let fail =
            |source: BollardError| failed("run", format!("{command:?} in container {id}"))(source);
        let (exec, started) = self.start_exec(id, command, false).await.map_err(fail)?;
        let mut output = ExecOutput::default();
        if let StartExecResults::Attached {
            output: mut frames, ..
        } = started
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
            .inspect_exec(&exec)
            .await
            .map_err(fail)?
            .exit_code;
        Ok(output)
    }

    /// Runs `command` in container `id` with its standard streams attached: its output
    /// as a stream (ending when it exits), its standard input as a writer (shutting it
    /// down is the command's end of input).
    ///
    /// # Errors
    ///
    /// The engine refuses to run it.
    pub(crate) async fn exec_attached(
        &self,
        id: &str,
        command: &[String],
    ) -> Result<Attached, EngineError> {
        let object = format!("{command:?} in container {id}");
        match self.start_exec(id, command, true).await {
            Ok((_, StartExecResults::Attached { output, input })) => Ok(Attached {
                output: output_stream(output, "run", object),
                input,
            }),
            Ok((_, StartExecResults::Detached)) => {
                Err(failed("attach to", object)("the engine did not attach"))
            }
            Err(source) => Err(failed("run", object)(source)),
        }
    }

    /// Creates and starts an exec of `command` in container `id`, its output attached
    /// (and its input when `stdin`); returns its id and streams.
    async fn start_exec(
        &self,
        id: &str,
        command: &[String],
        stdin: bool,
    ) -> Result<(String, StartExecResults), BollardError> {
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..CreateExecOptions::default()
                },
            )
            .await?;
        let started = self.docker.start_exec(&exec.id, None).await?;
        Ok((exec.id, started))
    }

    /// Removes a container, killing it if it runs, with its anonymous volumes; one
    /// already gone counts as removed.
    pub(crate) async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        gone_is_done(self.docker.remove_container(id, Some(options)).await)
            .map_err(failed("remove", format!("container {id}")))
    }

    /// The objects of `kind` (containers: running or not) carrying the label filter `key`
    /// (`name` for any value, `name=value` for one value).
    pub(crate) async fn labelled(
        &self,
        kind: Kind,
        key: &str,
    ) -> Result<Vec<Labelled>, EngineError> {
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
        listed.map_err(failed("list", kind.to_string()))
    }
}
