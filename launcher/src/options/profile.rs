//! Agent profiles as data: what an agent needs from the host (mounts, environment),
//! the command that starts it, its appended system prompt and its image. The built-in
//! profiles are TOML files embedded in the binary; the settings file can add or replace
//! profiles with `[agents.NAME]` tables of the same shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::options::keypath::KeyPath;
use crate::options::subpath::SubPath;

/// The names of the agents whose profiles are built in (an executable invoked under one
/// of these names runs that agent).
pub(crate) const BUILTIN_AGENTS: &[&str] = &["pi"];

/// The embedded TOML of a built-in profile.
fn builtin_source(name: &str) -> Option<&'static str> {
    match name {
        "pi" => Some(include_str!("../../profiles/pi.toml")),
        _ => None,
    }
}

/// Why a profile could not be found or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    /// No built-in profile and no settings entry has this name.
    #[error("unknown agent {name:?}: known agents are {known}")]
    Unknown { name: String, known: String },
    /// A built-in profile does not parse (a defect of this build).
    #[error("built-in profile {name:?} is invalid")]
    Builtin {
        name: String,
        #[source]
        source: toml::de::Error,
    },
}

/// What an agent needs from the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The command that starts the agent; the user's arguments follow it.
    pub(crate) command: Vec<String>,
    /// The image to run; when absent, the agent image built from the embedded Dockerfile.
    #[serde(default)]
    pub(crate) image: Option<String>,
    /// The home directory inside the image (`~` in a mount's `container` path).
    pub(crate) home: String,
    /// The command `agent-sandbox shell` runs when given none.
    #[serde(default = "default_shell")]
    pub(crate) shell: Vec<String>,
    /// A system prompt appended through a command-line flag of the agent.
    #[serde(default)]
    pub(crate) prompt: Option<Prompt>,
    /// Host variables passed on when set on the host.
    #[serde(default)]
    pub(crate) forward_env: Vec<String>,
    /// Host variables passed on when set on the host, else set to these values.
    #[serde(default)]
    pub(crate) default_env: BTreeMap<String, String>,
    /// Host paths mounted into the container.
    #[serde(default)]
    pub(crate) mounts: Vec<MountSpec>,
}

fn default_shell() -> Vec<String> {
    vec!["sh".to_owned()]
}

/// A system prompt given to the agent as `FLAG TEXT`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Prompt {
    /// The agent's option that appends to its system prompt.
    pub(crate) flag: String,
    pub(crate) text: String,
}

/// A host path the agent needs, and where it goes in the container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MountSpec {
    /// The host path; a leading `~/` is the user's home.
    pub(crate) host: String,
    /// The container path; a leading `~/` is the profile's home; absent: the host path.
    #[serde(default)]
    pub(crate) container: Option<String>,
    #[serde(default)]
    pub(crate) read_only: bool,
    /// What to do when the host path does not exist.
    #[serde(default)]
    pub(crate) missing: Missing,
    /// The parts of it the agent loads or runs as code (extensions, packages, skills,
    /// instructions): read-only unless `--writable-config`, so that nothing written in
    /// one session runs in every later one. A missing directory (`name/`) is created
    /// empty so that it can be protected; a missing file is checked at exit instead.
    #[serde(default)]
    pub(crate) code: Vec<SubPath>,
    /// Files of it that the agent writes (so they cannot be read-only) but whose values
    /// can make it run commands or load code when it next starts, on the host too:
    /// compared before and after the run.
    #[serde(default)]
    pub(crate) watch: Vec<WatchedFile>,
}

/// A JSON file of a mount and the values in it that make the agent run commands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchedFile {
    /// The file, relative to the mount.
    pub(crate) file: SubPath,
    pub(crate) keys: Vec<WatchedKey>,
}

/// Values in a JSON file that make the agent run a command or load code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchedKey {
    /// Where the values are.
    pub(crate) key: KeyPath,
    /// Only string values starting with this count (`!`: a command run through a shell).
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    /// What the agent does with such a value, for the user ("pi runs this command ...").
    pub(crate) effect: String,
}

/// What to do about a mount whose host path does not exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Missing {
    /// Create it as a directory owned by the user (Docker would create it owned by root).
    #[default]
    Create,
    /// Leave the mount out.
    Skip,
}

/// A mount with both paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedMount {
    pub(crate) source: PathBuf,
    pub(crate) target: String,
    pub(crate) read_only: bool,
    /// What to do when the source does not exist.
    pub(crate) missing: Missing,
    /// The parts of the source that are code (see [`MountSpec::code`]).
    pub(crate) code: Vec<SubPath>,
    /// The files whose values are compared (see [`MountSpec::watch`]).
    pub(crate) watch: Vec<WatchedFile>,
}

impl Profile {
    /// Finds the profile `name`: one from the settings file first, else a built-in one.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Unknown`] when neither has it.
    pub(crate) fn lookup(
        name: &str,
        configured: &BTreeMap<String, Profile>,
    ) -> Result<Self, ProfileError> {
        if let Some(profile) = configured.get(name) {
            return Ok(profile.clone());
        }
        let Some(source) = builtin_source(name) else {
            let mut known: Vec<&str> = BUILTIN_AGENTS.to_vec();
            known.extend(configured.keys().map(String::as_str));
            known.sort_unstable();
            known.dedup();
            return Err(ProfileError::Unknown {
                name: name.to_owned(),
                known: known.join(", "),
            });
        };
        toml::from_str(source).map_err(|source| ProfileError::Builtin {
            name: name.to_owned(),
            source,
        })
    }

    /// The agent's command line: its command, the appended prompt, then `args`.
    pub(crate) fn agent_command(&self, args: &[String]) -> Vec<String> {
        let mut command = self.command.clone();
        if let Some(prompt) = &self.prompt {
            command.extend([prompt.flag.clone(), prompt.text.clone()]);
        }
        command.extend(args.iter().cloned());
        command
    }

    /// The mounts with `~` resolved against the host home and the profile's home.
    pub(crate) fn resolve_mounts(&self, host_home: &Path) -> Vec<ResolvedMount> {
        self.mounts
            .iter()
            .map(|mount| {
                let source = match mount.host.strip_prefix("~/") {
                    Some(rest) => host_home.join(rest),
                    None => PathBuf::from(&mount.host),
                };
                let target = match mount.container.as_deref() {
                    Some(path) => match path.strip_prefix("~/") {
                        Some(rest) => format!("{}/{rest}", self.home.trim_end_matches('/')),
                        None => path.to_owned(),
                    },
                    None => source.to_string_lossy().into_owned(),
                };
                ResolvedMount {
                    source,
                    target,
                    read_only: mount.read_only,
                    missing: mount.missing,
                    code: mount.code.clone(),
                    watch: mount.watch.clone(),
                }
            })
            .collect()
    }

    /// The environment (`NAME=value`) the agent gets from the host, given a way to read
    /// the host's variables.
    pub(crate) fn environment(&self, host_var: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let forwarded = self
            .forward_env
            .iter()
            .filter_map(|name| host_var(name).map(|value| format!("{name}={value}")));
        let defaulted = self.default_env.iter().map(|(name, default)| {
            format!(
                "{name}={}",
                host_var(name).unwrap_or_else(|| default.clone())
            )
        });
        forwarded.chain(defaulted).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi() -> Profile {
        Profile::lookup("pi", &BTreeMap::new()).unwrap()
    }

    #[test]
    fn every_builtin_profile_parses() {
        for name in BUILTIN_AGENTS {
            Profile::lookup(name, &BTreeMap::new()).unwrap();
        }
    }

    #[test]
    fn pi_mounts_resolve_against_both_homes() {
        let mounts = pi().resolve_mounts(Path::new("/home/alice"));
        let pairs: Vec<(&str, &str, Missing)> = mounts
            .iter()
            .map(|m| (m.source.to_str().unwrap(), m.target.as_str(), m.missing))
            .collect();
        let read_only: Vec<bool> = mounts.iter().map(|m| m.read_only).collect();
        assert_eq!(
            pairs,
            [
                (
                    "/home/alice/.pi/agent",
                    "/home/piuser/.pi/agent",
                    Missing::Create
                ),
                (
                    "/home/alice/.agents",
                    "/home/piuser/.agents",
                    Missing::Create
                ),
                (
                    "/home/alice/.config/acli",
                    "/home/piuser/.config/acli",
                    Missing::Create
                ),
                (
                    "/home/alice/.context-mode",
                    "/home/piuser/.pi/context-mode",
                    Missing::Create
                ),
                (
                    "/home/alice/dotfiles",
                    "/home/alice/dotfiles",
                    Missing::Skip
                ),
            ]
        );
        // Only ~/dotfiles is read-only: configs are read through it, nothing writes there.
        assert_eq!(read_only, [false, false, false, false, true]);
    }

    #[test]
    fn pi_marks_what_it_loads_as_code() {
        let mounts = pi().resolve_mounts(Path::new("/home/alice"));
        let code = |source: &str| -> Vec<String> {
            let mount = mounts
                .iter()
                .find(|m| m.source == Path::new(source))
                .unwrap();
            mount.code.iter().map(ToString::to_string).collect()
        };
        let agent = code("/home/alice/.pi/agent");
        for part in [
            "extensions/",
            "npm/",
            "npm-global/",
            "git/",
            "bin/",
            "skills/",
            "prompts/",
            "themes/",
            "mcp.json",
            "SYSTEM.md",
            "APPEND_SYSTEM.md",
            "AGENTS.md",
        ] {
            assert!(agent.iter().any(|c| c == part), "{part} missing: {agent:?}");
        }
        // What pi writes as it runs stays writable.
        for data in ["sessions/", "settings.json", "auth.json", "trust.json"] {
            assert!(!agent.iter().any(|c| c == data), "{data} is protected");
        }
        assert_eq!(code("/home/alice/.agents"), ["skills/"]);
    }

    #[test]
    fn pi_environment_forwards_only_what_is_set_and_defaults_the_rest() {
        let host = |name: &str| match name {
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            "TERM" => Some("screen".to_owned()),
            "HOME" => Some("/home/alice".to_owned()),
            _ => None,
        };
        let mut env = pi().environment(host);
        env.sort();
        assert_eq!(
            env,
            [
                "COLORTERM=truecolor",
                "OPENAI_API_KEY=sk-test",
                "PI_TELEMETRY=false",
                "TERM=screen"
            ]
        );
    }

    #[test]
    fn pi_command_appends_the_prompt_before_user_arguments() {
        let command = pi().agent_command(&["-p".to_owned(), "hi".to_owned()]);
        assert_eq!(command[0], "pi");
        assert_eq!(command[1], "--append-system-prompt");
        assert!(command[2].contains("non-root") && !command[2].contains("apk"));
        assert_eq!(&command[3..], ["-p", "hi"]);
    }

    #[test]
    fn configured_profiles_win_and_unknown_names_list_the_known_ones() {
        let custom: Profile = toml::from_str("command = [\"codex\"]\nhome = \"/root\"\n").unwrap();
        let configured = BTreeMap::from([("codex".to_owned(), custom.clone())]);
        assert_eq!(Profile::lookup("codex", &configured).unwrap(), custom);
        assert_eq!(custom.shell, ["sh"]);
        let error = Profile::lookup("claude", &configured)
            .unwrap_err()
            .to_string();
        assert!(error.contains("codex, pi"), "{error}");
    }

    #[test]
    fn unknown_profile_fields_are_rejected() {
        assert!(
            toml::from_str::<Profile>("command = [\"x\"]\nhome = \"/\"\nmonuts = []\n").is_err()
        );
    }

    #[test]
    fn watched_keys_must_be_json_pointers() {
        let text = "command = [\"x\"]\nhome = \"/\"\n[[mounts]]\nhost = \"~/.x\"\n\
                    [[mounts.watch]]\nfile = \"s.json\"\nkeys = [{ key = \"shellPath\", effect = \"e\" }]\n";
        let error = toml::from_str::<Profile>(text).unwrap_err().to_string();
        assert!(
            error.contains("line 7") && error.contains("JSON pointer"),
            "{error}"
        );
    }

    #[test]
    fn code_parts_must_stay_inside_their_mount() {
        let text = "command = [\"x\"]\nhome = \"/\"\n[[mounts]]\nhost = \"~/.x\"\ncode = [\"../.bashrc\"]\n";
        let error = toml::from_str::<Profile>(text).unwrap_err().to_string();
        assert!(
            error.contains("line 5") && error.contains("`..`"),
            "{error}"
        );
    }
}
