//! The settings file: TOML in the user's configuration directory
//! (`$XDG_CONFIG_HOME/agent-sandbox/config.toml`, usually `~/.config/agent-sandbox/`),
//! holding defaults for the sandbox options and extra agent profiles. Flags win over it.
//!
//! ```toml
//! proxy = true
//! allowed_domains = "~/.agents/proxy_allowed_domains.txt"
//! lang = "go"
//! memory = "4g"
//! cpus = 2
//!
//! [agents.myagent]          # same shape as the built-in profiles
//! command = ["myagent"]
//! home = "/home/me"
//! image = "myagent:latest"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::options::cli::SandboxArgs;
use crate::options::limits::{CpuLimit, MemoryLimit, PidsLimit};
use crate::options::profile::Profile;
use crate::sandbox::Isolation;
use crate::sandbox::images::Lang;

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file exists but cannot be read.
    #[error("cannot read settings file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid (the cause names the line and the reason).
    #[error("invalid settings file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

/// The contents of the settings file; every field is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Default for `--proxy`.
    pub proxy: Option<bool>,
    /// Default for `--allowed-domains` (a leading `~/` is the home directory).
    pub allowed_domains: Option<PathBuf>,
    /// Default for `--lang`.
    pub lang: Option<Lang>,
    /// Default for `--image`.
    pub image: Option<String>,
    /// Default for `--base-image`.
    pub base_image: Option<String>,
    /// Default for `--proxy-image`.
    pub proxy_image: Option<String>,
    /// Default for `--egress-network`.
    pub egress_network: Option<String>,
    /// Default for `--isolation`.
    pub isolation: Option<Isolation>,
    /// Default for `--memory`.
    pub memory: Option<MemoryLimit>,
    /// Default for `--cpus`.
    pub cpus: Option<CpuLimit>,
    /// Default for `--pids`.
    pub pids: Option<PidsLimit>,
    /// Default for `--read-only`.
    pub read_only: Option<bool>,
    /// Agent profiles added to (or replacing) the built-in ones.
    #[serde(default)]
    pub agents: BTreeMap<String, Profile>,
}

impl Settings {
    /// The settings file's usual location, if a home directory is known.
    pub fn default_path() -> Option<PathBuf> {
        use etcetera::BaseStrategy as _;
        let strategy = etcetera::choose_base_strategy().ok()?;
        Some(
            strategy
                .config_dir()
                .join("agent-sandbox")
                .join("config.toml"),
        )
    }

    /// Reads the settings at `path`; a missing file means no settings.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or is not valid (unknown keys included).
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
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
    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|source| SettingsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The options in effect: each flag given on the command line, else this file's value.
    pub fn apply(&self, args: &SandboxArgs) -> SandboxArgs {
        let proxy = if args.proxy || args.no_proxy {
            args.proxy
        } else {
            self.proxy.unwrap_or(false)
        };
        SandboxArgs {
            proxy,
            no_proxy: !proxy,
            allowed_domains: args
                .allowed_domains
                .clone()
                .or_else(|| self.allowed_domains.clone()),
            lang: args.lang.or(self.lang),
            build: args.build,
            image: args.image.clone().or_else(|| self.image.clone()),
            base_image: args.base_image.clone().or_else(|| self.base_image.clone()),
            proxy_image: args
                .proxy_image
                .clone()
                .or_else(|| self.proxy_image.clone()),
            egress_network: args
                .egress_network
                .clone()
                .or_else(|| self.egress_network.clone()),
            isolation: args.isolation.or(self.isolation),
            memory: args.memory.or(self.memory),
            cpus: args.cpus.or(self.cpus),
            pids: args.pids.or(self.pids),
            read_only: args.read_only || self.read_only.unwrap_or(false),
            force: args.force,
            labels: args.labels.clone(),
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

[agents.codex]
command = ["codex"]
home = "/home/codex"
"#;

    fn settings() -> Settings {
        Settings::parse(FILE, Path::new("config.toml")).unwrap()
    }

    #[test]
    fn file_values_fill_what_flags_leave_out() {
        let merged = settings().apply(&SandboxArgs::default());
        assert!(merged.proxy && merged.read_only);
        assert_eq!(merged.lang, Some(Lang::Php84));
        assert_eq!(merged.memory.map(MemoryLimit::bytes), Some(4 << 30));
        assert_eq!(merged.cpus.map(CpuLimit::nano_cpus), Some(1_500_000_000));
        assert_eq!(merged.pids.map(PidsLimit::get), Some(300));
        assert_eq!(merged.image.as_deref(), Some("from-file"));
        assert!(settings().agents.contains_key("codex"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = SandboxArgs {
            no_proxy: true,
            lang: Some(Lang::Go),
            image: Some("from-flag".into()),
            memory: "512m".parse().ok(),
            ..SandboxArgs::default()
        };
        let merged = settings().apply(&flags);
        assert!(!merged.proxy);
        assert_eq!(merged.lang, Some(Lang::Go));
        assert_eq!(merged.image.as_deref(), Some("from-flag"));
        assert_eq!(merged.memory.map(MemoryLimit::bytes), Some(512 << 20));
    }

    #[test]
    fn no_file_and_no_flags_means_no_proxy() {
        let merged = Settings::default().apply(&SandboxArgs::default());
        assert!(!merged.proxy && !merged.read_only);
        assert_eq!(merged.lang, None);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        for (text, line) in [
            ("proxy = true\nlang = \"cobol\"\n", "line 2"),
            ("\n\nmemroy = \"1g\"\n", "line 3"),
            ("cpus = \"x\"\n", "line 1"),
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
