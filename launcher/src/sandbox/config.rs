//! The validated description of one sandbox: the merged options (flags over settings)
//! checked against the host, before anything is built or started. Nothing downstream
//! sees raw option strings, and every refusal happens here, early.

use std::path::{Path, PathBuf};

use bollard::models::MountType;
use sandbox_policy::LoadError;
use sandbox_policy::lint::lint;

use crate::options::image_ref::ImageRef;
use crate::options::limits::{CpuLimit, Limit, MemoryLimit, PidsLimit};
use crate::options::profile::{Missing, Profile, ResolvedMount};
use crate::options::settings::Settings;
use crate::options::{Isolation, Lang, Network, Options};
use crate::sandbox::agent::agent_mounts;
use crate::sandbox::allowlist::Checked;
use crate::sandbox::allowlist::exposure::{self, Exposure};
use crate::sandbox::allowlist::location::DefaultAllowlist;
use crate::sandbox::images::{DEFAULT_BASE_IMAGE, ImageSpec};
use crate::sandbox::protect::Protection;
use crate::sandbox::{labels, workdir};

/// The agent's process limit when none is given: far above what an agent, its tools
/// and a parallel build use, far below what a fork bomb needs to hurt the host.
const DEFAULT_PIDS: u32 = 4096;
/// The agent's default memory limit, as a fraction of the engine's memory: the agent
/// and its builds get most of it, the host (or Docker Desktop's VM) keeps the rest.
pub(crate) const DEFAULT_MEMORY_SHARE: (u64, u64) = (1, 2);

/// Why the options do not describe a sandbox the launcher will start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// Proxy mode without an allowlist file.
    #[error(
        "allowlist file {path} does not exist: create it (one domain per line, `*.example.com` \
         for a domain and its subdomains) or pass --allowed-domains FILE"
    )]
    MissingAllowlist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The allowlist file has invalid entries (the cause names each line and reason).
    #[error("invalid allowlist")]
    InvalidAllowlist(#[source] LoadError),
    /// The agent could change the allowlist (and so widen its own policy) through a
    /// read-write mount of its container.
    #[error(
        "refusing the allowlist {path}: the agent can change it from inside the sandbox \
         ({how}) and widen its own policy; {remedy}, or pass --force"
    )]
    ExposedAllowlist {
        path: PathBuf,
        /// How (the mount, or hard links).
        how: String,
        /// How to move it out of the sandbox's reach.
        remedy: String,
    },
    /// The launcher's configuration directory (its settings, the default allowlist) would
    /// be writable from the sandbox.
    #[error(
        "refusing to run: the launcher's configuration directory {path} (settings, default \
         allowlist) would be writable from inside the sandbox ({how}); run from another \
         directory or pass --force"
    )]
    ExposedConfigDir { path: PathBuf, how: String },
    /// Whether the agent could change the allowlist cannot be told.
    #[error("cannot check whether the sandbox can change the allowlist {path}")]
    AllowlistExposure {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The working directory is too broad (see `sandbox::workdir`).
    #[error(
        "refusing to mount {path} ({what}) into the sandbox as the working directory: it exposes \
         everything below it; run from a project directory or pass --force"
    )]
    BroadWorkdir { path: PathBuf, what: &'static str },
    /// `--network host` with `--proxy`.
    #[error(
        "--network host cannot be combined with --proxy: in proxy mode the agent has no network \
         but the proxy"
    )]
    HostNetworkWithProxy,
    /// The working directory cannot be determined.
    #[error("cannot determine the current directory")]
    Workdir(#[source] std::io::Error),
    /// The home directory is unknown.
    #[error("cannot determine the home directory (HOME is not set)")]
    NoHome,
    /// A `--label` is not `KEY=VALUE`.
    #[error("invalid label {0:?}: expected KEY=VALUE")]
    Label(String),
}

/// Facts about the host the configuration depends on (passed in, so tests choose them).
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) cwd: PathBuf,
    pub(crate) home: PathBuf,
    /// The launcher's own configuration directory (`~/.config/agent-sandbox`).
    pub(crate) config_dir: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Host {
    /// This process's host facts.
    ///
    /// # Errors
    ///
    /// The current or home directory is unknown.
    pub(crate) fn current() -> Result<Self, ConfigError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(ConfigError::NoHome)?;
        Ok(Self {
            cwd: std::env::current_dir().map_err(ConfigError::Workdir)?,
            config_dir: Settings::config_dir()
                .unwrap_or_else(|| home.join(".config").join("agent-sandbox")),
            home,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        })
    }

    /// `path` with a leading `~/` replaced by the home directory.
    pub(crate) fn expand(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("~") {
            Ok(rest) => self.home.join(rest),
            Err(_) => path.to_owned(),
        }
    }
}

/// The image the agent container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentImage {
    /// An image given by name (`--image`, or the profile's `image`).
    Given(String),
    /// The agent image built from the embedded Dockerfile.
    Built(ImageSpec),
}

impl AgentImage {
    pub(crate) fn name(&self) -> &str {
        match self {
            AgentImage::Given(name) => name,
            AgentImage::Built(spec) => &spec.tag,
        }
    }
}

/// Proxy mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyConfig {
    /// The user's allowlist, checked (the sidecar gets a copy, see `sandbox::allowlist`).
    pub(crate) allowlist: Checked,
    /// When the allowlist is the old default: how to move it (see `DefaultAllowlist`).
    pub(crate) move_command: Option<String>,
    pub(crate) image: String,
    /// An existing network for the sidecar's egress, instead of a per-run bridge.
    pub(crate) egress_network: Option<String>,
    /// How the agent container is cut off from the network.
    pub(crate) isolation: Isolation,
    /// Shown before the run: the allowlist's lint warnings (`FILE:LINE:COL: message`;
    /// the sidecar is built without the public-suffix data, so they are given here), and
    /// where it lies when that is not where it should.
    pub(crate) warnings: Vec<String>,
}

/// Resource limits for the agent container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) memory: Memory,
    /// `None`: no limit.
    pub(crate) cpus: Option<CpuLimit>,
    /// `None`: no limit.
    pub(crate) pids: Option<u32>,
}

/// The agent's memory limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Memory {
    /// [`DEFAULT_MEMORY_SHARE`] of the engine's memory (known once connected).
    #[default]
    EngineShare,
    /// `--memory none`.
    Unlimited,
    /// A given limit.
    Given(MemoryLimit),
}

impl Memory {
    /// The limit in bytes for an engine with `engine_total` bytes of memory, or `None`
    /// for no limit.
    pub(crate) fn bytes(self, engine_total: u64) -> Option<u64> {
        let (numerator, denominator) = DEFAULT_MEMORY_SHARE;
        match self {
            Memory::EngineShare => Some(engine_total / denominator * numerator),
            Memory::Unlimited => None,
            Memory::Given(limit) => Some(limit.bytes()),
        }
    }
}

impl Limits {
    /// The limits `args` ask for, the defaults where they ask for none.
    fn new(args: &Options) -> Self {
        Self {
            memory: match args.memory {
                None => Memory::EngineShare,
                Some(Limit::Unlimited) => Memory::Unlimited,
                Some(Limit::At(limit)) => Memory::Given(limit),
            },
            cpus: args.cpus.and_then(Limit::value),
            pids: match args.pids {
                None => Some(DEFAULT_PIDS),
                Some(limit) => limit.value().map(PidsLimit::get),
            },
        }
    }
}

/// One sandbox, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SandboxConfig {
    /// Proxy mode, or `None` for unrestricted egress.
    pub(crate) proxy: Option<ProxyConfig>,
    /// The network without the proxy.
    pub(crate) network: Network,
    pub(crate) image: AgentImage,
    /// Rebuild the images even when up to date.
    pub(crate) rebuild: bool,
    /// The sidecar image (also outside proxy mode: `--build` makes sure of it).
    pub(crate) sidecar_image: ImageRef,
    /// The settings' `source_checkout`, expanded.
    pub(crate) source_checkout: Option<PathBuf>,
    /// The working directory, mounted at the same path.
    pub(crate) workdir: PathBuf,
    /// The UID and GID the agent runs as.
    pub(crate) user: (u32, u32),
    /// Host paths mounted besides the working directory.
    pub(crate) mounts: Vec<ResolvedMount>,
    /// What must not change although a mount makes it writable.
    pub(crate) protection: Protection,
    /// The code parts of the agent's config are writable for this run.
    pub(crate) writable_config: bool,
    /// The agent's environment (`NAME=value`).
    pub(crate) env: Vec<String>,
    /// The command run in the container.
    pub(crate) command: Vec<String>,
    pub(crate) limits: Limits,
    /// Mount the root filesystem read-only.
    pub(crate) read_only: bool,
    /// Extra labels for every object.
    pub(crate) extra_labels: Vec<(String, String)>,
    /// Shown before the run: what `--force` let through.
    pub(crate) warnings: Vec<String>,
}

impl SandboxConfig {
    /// Validates merged options for running `command` with `profile`'s mounts and
    /// environment on `host`; `host_var` reads the host's environment.
    ///
    /// # Errors
    ///
    /// See [`ConfigError`]: the checks are made here, before anything is built or started.
    pub(crate) fn new(
        args: &Options,
        profile: &Profile,
        command: Vec<String>,
        host: &Host,
        host_var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let extra_labels = labels::parse_extra(&args.labels).map_err(ConfigError::Label)?;
        let workdir = host.cwd.clone();
        if !args.force
            && let Some(what) = workdir::refusal(&workdir, &host.home)
        {
            return Err(ConfigError::BroadWorkdir {
                path: workdir,
                what,
            });
        }
        if args.proxy && args.network == Network::Host {
            return Err(ConfigError::HostNetworkWithProxy);
        }
        let sidecar_image = ImageRef::sidecar(args.proxy_image.as_deref());
        let proxy = match args.proxy {
            true => Some(ProxyConfig::new(args, host, sidecar_image.name())?),
            false => None,
        };
        let image = match args.image.clone().or_else(|| profile.image.clone()) {
            Some(name) => AgentImage::Given(name),
            None => AgentImage::Built(ImageSpec::agent(
                args.lang.unwrap_or(Lang::Base),
                args.base_image.as_deref().unwrap_or(DEFAULT_BASE_IMAGE),
            )),
        };
        let mut mounts = profile.resolve_mounts(&host.home);
        let protection = Protection::new(
            &workdir,
            &host.home,
            &args.protect,
            &args.unprotect,
            &mounts,
            args.writable_config,
        );
        mounts.extend(protection.outside.iter().map(|dir| ResolvedMount {
            source: dir.clone(),
            target: dir.to_string_lossy().into_owned(),
            read_only: false,
            missing: Missing::Skip,
            code: Vec::new(),
            watch: Vec::new(),
        }));
        let mut config = Self {
            proxy,
            network: args.network,
            image,
            rebuild: args.rebuild,
            source_checkout: args
                .source_checkout
                .as_deref()
                .map(|path| host.expand(path)),
            sidecar_image,
            workdir,
            user: (host.uid, host.gid),
            mounts,
            protection,
            writable_config: args.writable_config,
            env: profile.environment(host_var),
            command,
            limits: Limits::new(args),
            read_only: args.read_only,
            extra_labels,
            warnings: Vec::new(),
        };
        let mounts = agent_mounts(&config);
        let writable: Vec<&Path> = mounts
            .iter()
            .filter(|m| m.read_only != Some(true) && m.typ == Some(MountType::BIND))
            .filter_map(|m| m.source.as_deref().map(Path::new))
            .collect();
        if let Some(exposure) = exposed_config_dir(&host.config_dir, &writable) {
            let refusal = ConfigError::ExposedConfigDir {
                path: host.config_dir.clone(),
                how: exposure.to_string(),
            };
            match args.force {
                true => config.warnings.push(format!("--force: {refusal}")),
                false => return Err(refusal),
            }
        }
        if let Some(proxy) = &mut config.proxy {
            proxy.refuse_exposure(&writable, args.force)?;
        }
        Ok(config)
    }
}

/// The first of `writable` through which the launcher's configuration directory (or,
/// while it does not exist, the directory it would be created in) can be changed.
fn exposed_config_dir<'a>(config_dir: &Path, writable: &[&'a Path]) -> Option<Exposure<'a>> {
    let existing = config_dir.ancestors().find(|dir| dir.exists())?;
    // What cannot be resolved is refused by the allowlist's own check where it matters.
    exposure::exposed_through(existing, writable.iter().copied())
        .ok()
        .flatten()
}

impl ProxyConfig {
    /// Proxy mode's settings: the allowlist found (named, or the default), read and
    /// checked with the proxy's own compiler.
    fn new(args: &Options, host: &Host, image: String) -> Result<Self, ConfigError> {
        let default = DefaultAllowlist::find(&host.home, &host.config_dir);
        let (path, move_command) = match &args.allowed_domains {
            Some(path) => (host.cwd.join(host.expand(path)), None),
            None => (default.path.clone(), default.move_command.clone()),
        };
        let mut warnings: Vec<String> = match move_command {
            Some(_) => default.notice().into_iter().collect(),
            None => Vec::new(),
        };
        let allowlist = Checked::read(&path).map_err(|error| match error {
            LoadError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                ConfigError::MissingAllowlist { path, source }
            }
            error => ConfigError::InvalidAllowlist(error),
        })?;
        warnings.extend(
            lint(allowlist.policy.allowlist())
                .iter()
                .map(|finding| format!("{}:{finding}", path.display())),
        );
        Ok(Self {
            allowlist,
            move_command,
            warnings,
            image,
            egress_network: args.egress_network.clone(),
            isolation: args.isolation,
        })
    }

    /// Refuses an allowlist that the agent container could change through one of the
    /// sources of its read-write mounts, `writable`; with `force`, warns instead.
    fn refuse_exposure(&mut self, writable: &[&Path], force: bool) -> Result<(), ConfigError> {
        let path = &self.allowlist.path;
        let mount =
            exposure::exposed_through(path, writable.iter().copied()).map_err(|source| {
                ConfigError::AllowlistExposure {
                    path: path.clone(),
                    source,
                }
            })?;
        let Some(how) = mount else {
            return Ok(());
        };
        if force {
            self.warnings.push(format!(
                "--force: the agent can change the allowlist {} ({how}) and so widen its own \
                 policy",
                path.display(),
            ));
            return Ok(());
        }
        let remedy = match &self.move_command {
            Some(command) => format!("move it: {command}"),
            None => "keep it where no mount of the sandbox reaches (the default location, the \
                 launcher's configuration directory, is such a place)"
                .to_owned(),
        };
        Err(ConfigError::ExposedAllowlist {
            path: path.clone(),
            how: how.to_string(),
            remedy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pi() -> Profile {
        Profile::lookup("pi", &BTreeMap::new()).unwrap()
    }

    fn host(cwd: &str) -> Host {
        Host {
            cwd: cwd.into(),
            home: "/home/alice".into(),
            config_dir: "/home/alice/.config/agent-sandbox".into(),
            uid: 1000,
            gid: 1000,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn config(args: &Options, cwd: &str) -> Result<SandboxConfig, ConfigError> {
        SandboxConfig::new(args, &pi(), vec!["pi".into()], &host(cwd), no_env)
    }

    #[test]
    fn a_missing_allowlist_is_refused_in_proxy_mode_only() {
        let args = Options {
            proxy: true,
            allowed_domains: Some("/nonexistent/allow.txt".into()),
            ..Options::default()
        };
        let error = config(&args, "/home/alice/project").unwrap_err();
        assert!(
            matches!(&error, ConfigError::MissingAllowlist { path, .. } if path == Path::new("/nonexistent/allow.txt"))
        );
        assert!(error.to_string().contains("--allowed-domains"));
        let default = Options {
            proxy: true,
            ..Options::default()
        };
        let error = config(&default, "/home/alice/project").unwrap_err();
        assert!(
            matches!(&error, ConfigError::MissingAllowlist { path, .. } if path == Path::new("/home/alice/.config/agent-sandbox/allowed_domains.txt"))
        );
        assert!(
            config(
                &Options {
                    proxy: false,
                    ..args
                },
                "/home/alice/project"
            )
            .is_ok()
        );
    }

    /// Proxy-mode options with an allowlist file holding `contents`, in a directory that
    /// lives as long as the first value.
    fn proxied(contents: &str) -> (tempfile::TempDir, PathBuf, Options) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("allow.txt");
        std::fs::write(&file, contents).unwrap();
        let args = Options {
            proxy: true,
            allowed_domains: Some(file.clone()),
            ..Options::default()
        };
        (dir, file, args)
    }

    #[test]
    fn an_existing_allowlist_and_proxy_defaults() {
        let (_dir, file, args) = proxied("example.com\n");
        let proxy = config(&args, "/home/alice/project").unwrap().proxy.unwrap();
        assert_eq!(proxy.allowlist.path, file);
        assert_eq!(proxy.image, ImageRef::default_sidecar().name());
        assert_eq!(proxy.isolation, Isolation::NoNetwork);
        assert_eq!(proxy.egress_network, None);
    }

    #[test]
    fn an_invalid_allowlist_is_refused_with_file_and_line() {
        let (_dir, file, args) = proxied("example.com\nexa mple.com\n");
        let error = config(&args, "/home/alice/project").unwrap_err();
        let chain = crate::report::chain(&error);
        assert!(matches!(error, ConfigError::InvalidAllowlist(_)), "{chain}");
        assert!(
            chain.contains(&*file.to_string_lossy()) && chain.contains(":2"),
            "{chain}"
        );
    }

    #[test]
    fn allowlist_lint_warnings_name_the_file_and_line() {
        let (_dir, file, args) = proxied("*.github.io\nexample.com\nexample.com\n");
        let proxy = config(&args, "/home/alice/project").unwrap().proxy.unwrap();
        let file = std::fs::canonicalize(&file).unwrap();
        let [suffix, duplicate] = &proxy.warnings[..] else {
            panic!("{:?}", proxy.warnings);
        };
        assert!(
            suffix.starts_with(&format!("{}:1:", file.display())) && suffix.contains("github.io"),
            "{suffix}"
        );
        assert!(
            duplicate.starts_with(&format!("{}:3:", file.display())),
            "{duplicate}"
        );
    }

    #[test]
    fn an_allowlist_the_agent_can_change_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let host = Host {
            cwd: root.join("work"),
            home: root.join("home"),
            config_dir: root.join("home/.config/agent-sandbox"),
            ..host("/")
        };
        let inside = root.join("work/policy/allow.txt");
        let legacy = root.join("home/.agents/proxy_allowed_domains.txt");
        for file in [&inside, &legacy] {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, "example.com\n").unwrap();
        }
        let proxied = |allowed_domains: Option<&Path>, force: bool| {
            let args = Options {
                proxy: true,
                allowed_domains: allowed_domains.map(Path::to_owned),
                force,
                ..Options::default()
            };
            SandboxConfig::new(&args, &pi(), vec![], &host, no_env)
        };
        // In the working directory: renaming its parent or rewriting it would widen
        // the policy.
        let error = proxied(Some(&inside), false).unwrap_err();
        assert!(
            matches!(&error, ConfigError::ExposedAllowlist { how, .. } if how.ends_with(&*root.join("work").to_string_lossy())),
            "{error:?}"
        );
        assert!(error.to_string().contains("--force"), "{error}");
        let forced = proxied(Some(&inside), true).unwrap().proxy.unwrap();
        assert!(forced.warnings.iter().any(|w| w.starts_with("--force")));
        // The old default, in ~/.agents, which pi's profile mounts read-write: refused,
        // with the command that moves it.
        let error = proxied(None, false).unwrap_err();
        let ConfigError::ExposedAllowlist { path, remedy, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(path, &legacy);
        assert!(
            remedy.contains("mv ") && remedy.contains("allowed_domains.txt"),
            "{remedy}"
        );
        // The new default is used as it is.
        let new = host.config_dir.join("allowed_domains.txt");
        std::fs::create_dir_all(&host.config_dir).unwrap();
        std::fs::write(&new, "example.com\n").unwrap();
        let proxy = proxied(None, false).unwrap().proxy.unwrap();
        assert_eq!((proxy.allowlist.path, proxy.warnings), (new, Vec::new()));
    }

    #[test]
    fn the_launchers_configuration_directory_is_never_writable_from_the_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let config_dir = root.join("home/.config/agent-sandbox");
        std::fs::create_dir_all(&config_dir).unwrap();
        let in_config = |cwd: PathBuf, force: bool| {
            let host = Host {
                cwd,
                home: root.join("home"),
                config_dir: config_dir.clone(),
                ..host("/")
            };
            let args = Options {
                force,
                ..Options::default()
            };
            SandboxConfig::new(&args, &pi(), vec![], &host, no_env)
        };
        // Not even without the proxy: a run could plant the default allowlist or
        // rewrite the settings for the next one.
        for cwd in [root.join("home/.config"), config_dir.clone()] {
            let error = in_config(cwd.clone(), false).unwrap_err();
            assert!(
                matches!(&error, ConfigError::ExposedConfigDir { how, .. } if how.ends_with(&*cwd.to_string_lossy())),
                "{error:?}"
            );
            let forced = in_config(cwd, true).unwrap();
            assert!(
                forced.warnings[0].starts_with("--force: refusing"),
                "{:?}",
                forced.warnings
            );
        }
        // A sibling of it (pi mounts ~/.config/acli) is not its parent.
        std::fs::create_dir_all(root.join("home/.config/acli")).unwrap();
        let beside = in_config(root.join("home/.config/acli"), false).unwrap();
        assert!(beside.warnings.is_empty());
    }

    #[test]
    fn a_relative_allowlist_is_the_working_directorys() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("allow.txt"), "example.com\n").unwrap();
        let host = Host {
            cwd: root.clone(),
            ..host("/")
        };
        let args = Options {
            proxy: true,
            allowed_domains: Some("allow.txt".into()),
            ..Options::default()
        };
        let error = SandboxConfig::new(&args, &pi(), vec![], &host, no_env).unwrap_err();
        assert!(
            matches!(&error, ConfigError::ExposedAllowlist { path, .. } if *path == root.join("allow.txt")),
            "{error:?}"
        );
    }

    #[test]
    fn broad_working_directories_are_refused_unless_forced() {
        for cwd in ["/home/alice", "/", "/home", "/etc", "/usr"] {
            assert!(
                matches!(
                    config(&Options::default(), cwd),
                    Err(ConfigError::BroadWorkdir { .. })
                ),
                "{cwd}"
            );
            let forced = Options {
                force: true,
                ..Options::default()
            };
            assert_eq!(config(&forced, cwd).unwrap().workdir, Path::new(cwd));
        }
        assert!(config(&Options::default(), "/home/alice/src").is_ok());
    }

    #[test]
    fn the_host_network_is_an_opt_in_outside_proxy_mode_only() {
        let host_network = Options {
            network: Network::Host,
            ..Options::default()
        };
        assert_eq!(config(&host_network, "/w").unwrap().network, Network::Host);
        assert_eq!(
            config(&Options::default(), "/w").unwrap().network,
            Network::Bridge
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("allow.txt");
        std::fs::write(&file, "example.com\n").unwrap();
        let with_proxy = Options {
            proxy: true,
            allowed_domains: Some(file),
            ..host_network
        };
        assert!(matches!(
            config(&with_proxy, "/w"),
            Err(ConfigError::HostNetworkWithProxy)
        ));
    }

    #[test]
    fn limits_default_to_a_process_cap_and_a_share_of_memory_and_none_lifts_them() {
        let defaults = config(&Options::default(), "/w").unwrap().limits;
        assert_eq!(defaults.pids, Some(DEFAULT_PIDS));
        assert_eq!(defaults.cpus, None);
        assert_eq!(defaults.memory, Memory::EngineShare);
        assert_eq!(defaults.memory.bytes(8 << 30), Some(4 << 30));
        let lifted = Options {
            memory: "none".parse().ok(),
            pids: "none".parse().ok(),
            cpus: "none".parse().ok(),
            ..Options::default()
        };
        let lifted = config(&lifted, "/w").unwrap().limits;
        assert_eq!((lifted.memory.bytes(8 << 30), lifted.pids), (None, None));
        let given = Options {
            memory: "1g".parse().ok(),
            pids: "100".parse().ok(),
            ..Options::default()
        };
        let given = config(&given, "/w").unwrap().limits;
        assert_eq!(
            (given.memory.bytes(8 << 30), given.pids),
            (Some(1 << 30), Some(100))
        );
    }

    #[test]
    fn the_image_is_given_or_built_for_the_variant() {
        let built = config(
            &Options {
                lang: Some(Lang::Go),
                ..Options::default()
            },
            "/w",
        )
        .unwrap();
        assert_eq!(built.image.name(), "agent-sandbox/agent:go");
        let given = config(
            &Options {
                image: Some("test:1".into()),
                ..Options::default()
            },
            "/w",
        )
        .unwrap();
        assert_eq!(given.image, AgentImage::Given("test:1".into()));
    }

    #[test]
    fn user_mounts_env_and_labels_come_through() {
        let args = Options {
            labels: vec!["agent-sandbox.test=1".into()],
            read_only: true,
            ..Options::default()
        };
        let config = config(&args, "/w").unwrap();
        assert_eq!(config.user, (1000, 1000));
        assert_eq!(config.mounts.len(), 5);
        assert!(config.env.contains(&"PI_TELEMETRY=false".to_owned()));
        assert_eq!(
            config.extra_labels,
            [("agent-sandbox.test".to_owned(), "1".to_owned())]
        );
        assert!(config.read_only && config.proxy.is_none());
        let bad = Options {
            labels: vec!["oops".into()],
            ..Options::default()
        };
        assert!(matches!(
            SandboxConfig::new(&bad, &pi(), vec![], &host("/w"), no_env),
            Err(ConfigError::Label(_))
        ));
    }
}
