//! The settings file: TOML in the user's configuration directory
//! (`$XDG_CONFIG_HOME/agent-sandbox/config.toml`, usually `~/.config/agent-sandbox/`),
//! holding defaults for the sandbox options and extra agent profiles. Flags win over it.
//!
//! ```toml
//! proxy = true
//! allowed_domains = "~/policies/work.txt"   # default: allowed_domains.txt next to this file
//! lang = "go"
//! memory = "4g"            # or "none"
//! source_checkout = "~/src/agent-sandbox"   # to build the sidecar image when a pull fails
//! cpus = 2
//! protect = ["scripts/hooks/"]        # more paths of the project read-only in the sandbox
//! unprotect = [".github/workflows/"]  # default ones the agent may change
//!
//! [agents.myagent]          # same shape as the built-in profiles
//! command = ["myagent"]
//! home = "/home/me"
//! image = "myagent:latest"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::options::Options;
use crate::options::cli::SandboxArgs;
use crate::options::limits::{CpuLimit, Limit, MemoryLimit, PidsLimit};
use crate::options::profile::Profile;
use crate::options::subpath::SubPath;
use crate::options::{Isolation, Lang, Network};

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    /// The file exists but cannot be read.
    #[error("cannot read settings file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid (the cause names the line and the reason).
    #[error("invalid settings file {path}")]
    Parse {
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

/// The contents of the settings file; every field is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Default for `--proxy`.
    pub(crate) proxy: Option<bool>,
    /// Default for `--allowed-domains` (a leading `~/` is the home directory).
    pub(crate) allowed_domains: Option<PathBuf>,
    /// Default for `--lang`.
    pub(crate) lang: Option<Lang>,
    /// Default for `--image`.
    pub(crate) image: Option<String>,
    /// Default for `--base-image`.
    pub(crate) base_image: Option<String>,
    /// Default for `--proxy-image`.
    pub(crate) proxy_image: Option<String>,
    /// The source checkout the sidecar image is built from when it cannot be pulled
    /// (default: the one the launcher was built from; `""`: never build it).
    pub(crate) source_checkout: Option<PathBuf>,
    /// Default for `--egress-network`.
    pub(crate) egress_network: Option<String>,
    /// Default for `--isolation`.
    pub(crate) isolation: Option<Isolation>,
    /// Default for `--network`.
    pub(crate) network: Option<Network>,
    /// Default for `--memory`.
    pub(crate) memory: Option<Limit<MemoryLimit>>,
    /// Default for `--cpus`.
    pub(crate) cpus: Option<Limit<CpuLimit>>,
    /// Default for `--pids`.
    pub(crate) pids: Option<Limit<PidsLimit>>,
    /// Default for `--read-only`.
    pub(crate) read_only: Option<bool>,
    /// Paths of the working directory kept read-only besides the launcher's default ones
    /// (`dir/` for a directory).
    #[serde(default)]
    pub(crate) protect: Vec<SubPath>,
    /// Paths the launcher protects by default that this user lets the agent change.
    #[serde(default)]
    pub(crate) unprotect: Vec<SubPath>,
    /// Agent profiles added to (or replacing) the built-in ones.
    #[serde(default)]
    pub(crate) agents: BTreeMap<String, Profile>,
}

impl Settings {
    /// The launcher's own configuration directory (`$XDG_CONFIG_HOME/agent-sandbox`,
    /// usually `~/.config/agent-sandbox`, on macOS too), if a home directory is known.
    pub(crate) fn config_dir() -> Option<PathBuf> {
        use etcetera::BaseStrategy as _;
        let strategy = etcetera::choose_base_strategy().ok()?;
        Some(strategy.config_dir().join("agent-sandbox"))
    }

    /// The settings file's usual location, `config.toml` in [`Settings::config_dir`].
    pub(crate) fn default_path() -> Option<PathBuf> {
        Some(Self::config_dir()?.join("config.toml"))
    }

    /// Reads the settings at `path`; a missing file means no settings.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or is not valid (unknown keys included).
    pub(crate) fn load(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SettingsError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses settings text read from `path` (named in errors).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Parse`], whose cause names the line and the reason.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|source| SettingsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The options in effect: each flag given on the command line, else this file's value.
    pub(crate) fn merge(&self, flags: &SandboxArgs) -> Options {
        let proxy = if flags.proxy || flags.no_proxy {
            flags.proxy
        } else {
            self.proxy.unwrap_or(false)
        };
        let given =
            |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        Options {
            proxy,
            allowed_domains: flags
                .allowed_domains
                .clone()
                .or_else(|| self.allowed_domains.clone()),
            lang: flags.lang.or(self.lang),
            rebuild: flags.build,
            image: given(&flags.image, &self.image),
            base_image: given(&flags.base_image, &self.base_image),
            proxy_image: given(&flags.proxy_image, &self.proxy_image),
            source_checkout: self.source_checkout.clone(),
            egress_network: given(&flags.egress_network, &self.egress_network),
            isolation: flags.isolation.or(self.isolation).unwrap_or_default(),
            network: flags.network.or(self.network).unwrap_or_default(),
            memory: flags.memory.or(self.memory),
            cpus: flags.cpus.or(self.cpus),
            pids: flags.pids.or(self.pids),
            read_only: flags.read_only || self.read_only.unwrap_or(false),
            force: flags.force,
            writable_config: flags.writable_config,
            protect: self.protect.clone(),
            unprotect: self.unprotect.clone(),
            labels: flags.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
proxy = true
lang = "php8.4"
memory = "4g"
cpus = 1.5
pids = 300
image = "from-file"
read_only = true
network = "host"
protect = ["scripts/hooks/", ".tool-versions"]
unprotect = [".github/workflows/"]

[agents.codex]
command = ["codex"]
home = "/home/codex"
"#;

    fn settings() -> Settings {
        Settings::parse(FILE, Path::new("config.toml")).unwrap()
    }

    #[test]
    fn file_values_fill_what_flags_leave_out() {
        let merged = settings().merge(&SandboxArgs::default());
        assert!(merged.proxy && merged.read_only);
        assert_eq!(merged.lang, Some(Lang::Php84));
        assert_eq!(merged.memory, Some(Limit::At("4g".parse().unwrap())));
        assert_eq!(
            merged.cpus.and_then(Limit::value).map(CpuLimit::nano_cpus),
            Some(1_500_000_000)
        );
        assert_eq!(
            merged.pids.and_then(Limit::value).map(PidsLimit::get),
            Some(300)
        );
        assert_eq!(merged.image.as_deref(), Some("from-file"));
        assert_eq!(merged.network, Network::Host);
        let shown = |paths: &[SubPath]| paths.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(&merged.protect), ["scripts/hooks/", ".tool-versions"]);
        assert_eq!(shown(&merged.unprotect), [".github/workflows/"]);
        assert!(settings().agents.contains_key("codex"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = SandboxArgs {
            no_proxy: true,
            lang: Some(Lang::Go),
            image: Some("from-flag".into()),
            memory: "512m".parse().ok(),
            pids: "none".parse().ok(),
            network: Some(Network::Bridge),
            ..SandboxArgs::default()
        };
        let merged = settings().merge(&flags);
        assert!(!merged.proxy);
        assert_eq!(merged.lang, Some(Lang::Go));
        assert_eq!(merged.image.as_deref(), Some("from-flag"));
        assert_eq!(
            merged.memory.and_then(Limit::value).map(MemoryLimit::bytes),
            Some(512 << 20)
        );
        assert_eq!(merged.pids, Some(Limit::Unlimited));
        assert_eq!(merged.network, Network::Bridge);
    }

    #[test]
    fn none_in_the_file_lifts_a_limit() {
        let settings =
            Settings::parse("memory = \"none\"\npids = \"none\"\n", Path::new("c")).unwrap();
        let merged = settings.merge(&SandboxArgs::default());
        assert_eq!(merged.memory, Some(Limit::Unlimited));
        assert_eq!(merged.pids, Some(Limit::Unlimited));
        assert_eq!(merged.cpus, None);
    }

    #[test]
    fn no_file_and_no_flags_means_no_proxy() {
        let merged = Settings::default().merge(&SandboxArgs::default());
        assert!(!merged.proxy && !merged.read_only);
        assert_eq!(merged.lang, None);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        for (text, line) in [
            ("proxy = true\nlang = \"cobol\"\n", "line 2"),
            ("\n\nmemroy = \"1g\"\n", "line 3"),
            ("cpus = \"x\"\n", "line 1"),
            ("\nprotect = [\".vscode/\", \"../escape\"]\n", "line 2"),
            ("unprotect = [\"/etc\"]\n", "line 1"),
        ] {
            let error = Settings::parse(text, Path::new("/cfg/config.toml")).unwrap_err();
            let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
            assert!(
                chain.contains("/cfg/config.toml") && chain.contains(line),
                "{chain}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_no_settings() {
        let settings = Settings::load(Path::new("/nonexistent/agent-sandbox/config.toml")).unwrap();
        assert!(settings.proxy.is_none() && settings.agents.is_empty());
    }
}
