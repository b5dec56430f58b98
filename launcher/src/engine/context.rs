//! Which Docker engine to talk to, decided the way the docker CLI decides it:
//! `DOCKER_HOST`, else the current context (`DOCKER_CONTEXT`, else `currentContext` in
//! `config.json`) and its endpoint from the context store, else the default socket.
//! This is what makes Docker Desktop, Colima and rootless setups work without flags.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The engine address used when nothing else names one.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Why the current context could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    /// The docker CLI configuration file exists but cannot be read or parsed.
    #[error("cannot read docker configuration {path}")]
    Config {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The context named as current has no metadata in the context store.
    #[error("docker context {name:?} is not in the context store {path}")]
    MissingContext {
        name: String,
        /// The metadata file looked for.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The context's metadata has no Docker endpoint.
    #[error("docker context {name:?} has no docker endpoint ({path})")]
    NoEndpoint { name: String, path: PathBuf },
}

/// Where the engine address came from (shown by `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointSource {
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// A docker context of this name.
    Context(String),
    /// Nothing was configured.
    Default,
}

/// An engine address and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) source: EndpointSource,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            EndpointSource::DockerHost => write!(f, "{} (from DOCKER_HOST)", self.host),
            EndpointSource::Context(name) => write!(f, "{} (docker context {name:?})", self.host),
            EndpointSource::Default => write!(f, "{} (default)", self.host),
        }
    }
}

#[derive(Deserialize)]
struct CliConfig {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: Endpoints,
}

#[derive(Deserialize, Default)]
struct Endpoints {
    docker: Option<DockerEndpoint>,
}

#[derive(Deserialize)]
struct DockerEndpoint {
    #[serde(rename = "Host")]
    host: Option<String>,
}

/// The docker CLI's configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn config_dir(
    env: impl Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".docker")))
}

/// Resolves the engine endpoint from the environment (read through `env`) and the docker
/// CLI configuration directory.
///
/// # Errors
///
/// The configuration or the current context's metadata is unreadable, or the context has
/// no docker endpoint. A missing configuration file means the default context.
pub(crate) fn resolve(
    env: impl Fn(&str) -> Option<String>,
    config_dir: Option<&Path>,
) -> Result<Endpoint, ContextError> {
    if let Some(host) = env("DOCKER_HOST").filter(|host| !host.is_empty()) {
        return Ok(Endpoint {
            host,
            source: EndpointSource::DockerHost,
        });
    }
    let default = Endpoint {
        host: DEFAULT_HOST.to_owned(),
        source: EndpointSource::Default,
    };
    let Some(dir) = config_dir else {
        return Ok(default);
    };
    let name = match env("DOCKER_CONTEXT").filter(|name| !name.is_empty()) {
        Some(name) => Some(name),
        None => current_context(&dir.join("config.json"))?,
    };
    let Some(name) = name.filter(|name| name != "default") else {
        return Ok(default);
    };
    let path = meta_path(dir, &name);
    let text = std::fs::read_to_string(&path).map_err(|source| ContextError::MissingContext {
        name: name.clone(),
        path: path.clone(),
        source,
    })?;
    let meta: ContextMeta = serde_json::from_str(&text).map_err(|source| ContextError::Config {
        path: path.clone(),
        source: Box::new(source),
    })?;
    match meta.endpoints.docker.and_then(|endpoint| endpoint.host) {
        Some(host) => Ok(Endpoint {
            host,
            source: EndpointSource::Context(name),
        }),
        None => Err(ContextError::NoEndpoint { name, path }),
    }
}

/// Where the context store keeps the metadata of context `name`: a directory named after
/// the SHA-256 of the name.
fn meta_path(config_dir: &Path, name: &str) -> PathBuf {
    let digest = Sha256::digest(name.as_bytes());
    config_dir
        .join("contexts")
        .join("meta")
        .join(format!("{digest:x}"))
        .join("meta.json")
}

fn current_context(path: &Path) -> Result<Option<String>, ContextError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ContextError::Config {
                path: path.to_owned(),
                source: Box::new(source),
            });
        }
    };
    let config: CliConfig = serde_json::from_str(&text).map_err(|source| ContextError::Config {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    Ok(config.current_context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A docker configuration directory in a fresh temporary directory.
    struct ConfigDir(tempfile::TempDir);

    impl ConfigDir {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }

        fn path(&self) -> &Path {
            self.0.path()
        }

        fn with_config(self, json: &str) -> Self {
            std::fs::write(self.path().join("config.json"), json).unwrap();
            self
        }

        fn with_context(self, name: &str, meta: &str) -> Self {
            let path = meta_path(self.path(), name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, meta).unwrap();
            self
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    const COLIMA: &str = r#"{"Name":"colima","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///Users/a/.colima/default/docker.sock","SkipTLSVerify":false}}}"#;

    #[test]
    fn docker_host_wins_over_everything() {
        let dir = ConfigDir::new()
            .with_config(r#"{"currentContext":"colima"}"#)
            .with_context("colima", COLIMA);
        let endpoint = resolve(
            env(&[
                ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
                ("DOCKER_CONTEXT", "colima"),
            ]),
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(
            endpoint,
            Endpoint {
                host: "tcp://10.0.0.1:2375".into(),
                source: EndpointSource::DockerHost
            }
        );
    }

    #[test]
    fn current_context_from_config_json() {
        let dir = ConfigDir::new()
            .with_config(r#"{"auths":{},"currentContext":"colima"}"#)
            .with_context("colima", COLIMA);
        let endpoint = resolve(env(&[]), Some(dir.path())).unwrap();
        assert_eq!(endpoint.host, "unix:///Users/a/.colima/default/docker.sock");
        assert_eq!(endpoint.source, EndpointSource::Context("colima".into()));
    }

    #[test]
    fn docker_context_variable_wins_over_config_json() {
        let dir = ConfigDir::new()
            .with_config(r#"{"currentContext":"colima"}"#)
            .with_context("colima", COLIMA)
            .with_context(
                "desktop-linux",
                r#"{"Endpoints":{"docker":{"Host":"unix:///Users/a/.docker/run/docker.sock"}}}"#,
            );
        let endpoint = resolve(
            env(&[("DOCKER_CONTEXT", "desktop-linux")]),
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(endpoint.host, "unix:///Users/a/.docker/run/docker.sock");
    }

    #[test]
    fn default_context_and_missing_config_mean_the_default_socket() {
        let dir = ConfigDir::new().with_config(r#"{"currentContext":"default"}"#);
        assert_eq!(
            resolve(env(&[]), Some(dir.path())).unwrap().source,
            EndpointSource::Default
        );
        let empty = ConfigDir::new();
        assert_eq!(
            resolve(env(&[]), Some(empty.path())).unwrap().host,
            DEFAULT_HOST
        );
        assert_eq!(
            resolve(env(&[("DOCKER_HOST", "")]), None).unwrap().host,
            DEFAULT_HOST
        );
    }

    #[test]
    fn broken_configuration_is_an_error_not_a_silent_default() {
        let missing = ConfigDir::new().with_config(r#"{"currentContext":"gone"}"#);
        assert!(matches!(
            resolve(env(&[]), Some(missing.path())),
            Err(ContextError::MissingContext { .. })
        ));
        let garbled = ConfigDir::new().with_config("{not json");
        assert!(matches!(
            resolve(env(&[]), Some(garbled.path())),
            Err(ContextError::Config { .. })
        ));
        let no_docker = ConfigDir::new()
            .with_config(r#"{"currentContext":"k8s"}"#)
            .with_context("k8s", r#"{"Endpoints":{}}"#);
        assert!(matches!(
            resolve(env(&[]), Some(no_docker.path())),
            Err(ContextError::NoEndpoint { .. })
        ));
    }

    #[test]
    fn config_dir_prefers_docker_config() {
        let home = Path::new("/home/a");
        assert_eq!(
            config_dir(env(&[("DOCKER_CONFIG", "/etc/dc")]), Some(home)),
            Some(PathBuf::from("/etc/dc"))
        );
        assert_eq!(
            config_dir(env(&[]), Some(home)),
            Some(PathBuf::from("/home/a/.docker"))
        );
    }
}
