//! The allowlist belongs to the launcher. It is found ([`location`]: the launcher's own
//! configuration directory, which no mount exposes), refused when the agent could change
//! it through a mount of its container ([`exposure`]), checked, and copied into a
//! private per-run directory that the sidecar mounts read-only ([`copy`]); during the
//! run the user's file is followed and every valid change replaces the copy
//! ([`follow`]). The sidecar never sees the user's file, and the policy in force is
//! shared with the rest of the launcher as a [`watch::Receiver`].

pub(crate) mod copy;
pub(crate) mod exposure;
pub(crate) mod follow;
pub(crate) mod location;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::models::MountType;
use sandbox_policy::{LoadError, Policy, PolicyOptions};
use tokio::sync::watch;

use crate::sandbox::agent::agent_mounts;
use crate::sandbox::config::SandboxConfig;
use crate::sandbox::labels::Owner;
use copy::PolicyCopy;
use follow::LiveAllowlist;

/// Copies `checked` for the sidecar into a private directory under the first of
/// `parents` (see [`private_dirs::parents`](crate::sandbox::private_dirs::parents)) that no mount of `config`'s agent container reaches,
/// and follows the user's file from now on.
///
/// # Errors
///
/// No place will do: the copy cannot be written there, or the agent could reach it.
pub(crate) fn follow(
    checked: &Checked,
    config: &SandboxConfig,
    parents: Vec<PathBuf>,
    session: &str,
    owner: &Owner,
) -> std::io::Result<LiveAllowlist> {
    let mounts = agent_mounts(config);
    let sources: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ == Some(MountType::BIND))
        .filter_map(|m| m.source.as_deref().map(Path::new))
        .collect();
    let mut refusals = Vec::new();
    for parent in parents {
        let copy = match PolicyCopy::create(&parent, session, owner, &checked.text) {
            Ok(copy) => copy,
            Err(error) => {
                refusals.push(format!("{}: {error}", parent.display()));
                continue;
            }
        };
        match exposure::exposed_through(copy.private_dir(), sources.iter().copied()) {
            Ok(None) => return Ok(LiveAllowlist::new(checked.clone(), copy)),
            Ok(Some(how)) => refusals.push(format!("{}: {how}", parent.display())),
            Err(error) => refusals.push(format!("{}: {error}", parent.display())),
        }
    }
    Err(std::io::Error::other(format!(
        "no place for it out of the sandbox's reach ({})",
        refusals.join("; ")
    )))
}

/// The policy in force during a run, updated on every valid change of the user's file.
pub(crate) type PolicyInForce = watch::Receiver<Arc<Policy>>;

/// The user's allowlist, read once and compiled with the proxy's options: `text` is
/// exactly what was checked, and what the sidecar's copy holds.
#[derive(Clone)]
pub(crate) struct Checked {
    /// The user's file, as named (absolute): followed by this name during the run.
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) policy: Arc<Policy>,
}

impl Checked {
    /// Reads and compiles the file at `path`.
    ///
    /// # Errors
    ///
    /// It cannot be read, or has invalid entries (each named by `file:line:col`).
    pub(crate) fn read(path: &Path) -> Result<Self, LoadError> {
        let text = Policy::read_text(path)?;
        Self::compile(path, text, 1)
    }

    /// Compiles `text`, read from `path`, as policy number `generation`.
    fn compile(path: &Path, text: String, generation: u64) -> Result<Self, LoadError> {
        let origin = path.display().to_string();
        let policy = Policy::from_text(&origin, &text, &PolicyOptions::default(), generation)
            .map_err(LoadError::Invalid)?;
        Ok(Self {
            path: path.to_owned(),
            text,
            policy: Arc::new(policy),
        })
    }
}

impl fmt::Debug for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checked")
            .field("path", &self.path)
            .field("entries", &self.policy.allowlist().len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Checked {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.text == other.text
    }
}

impl Eq for Checked {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use crate::options::profile::Profile;
    use crate::sandbox::config::Host;

    #[test]
    fn the_copy_goes_where_no_mount_of_the_agent_reaches() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let allowlist = root.join("allow.txt");
        std::fs::write(&allowlist, "example.com\n").unwrap();
        let host = Host {
            cwd: root.join("work"),
            home: root.join("home"),
            config_dir: root.join("home/.config/agent-sandbox"),
            uid: 1000,
            gid: 1000,
        };
        let args = Options {
            proxy: true,
            allowed_domains: Some(allowlist),
            ..Options::default()
        };
        let profile = Profile::lookup("pi", &Default::default()).unwrap();
        let config = SandboxConfig::new(&args, &profile, vec![], &host, |_| None).unwrap();
        let checked = &config.proxy.as_ref().unwrap().allowlist;
        let owner = Owner {
            pid: 1,
            start: String::new(),
            host: "h".into(),
        };
        // The working directory is mounted read-write; pi's ~/.agents too.
        let exposed = [root.join("work/tmp"), root.join("home/.agents/run")];
        for parent in &exposed {
            std::fs::create_dir_all(parent).unwrap();
        }
        let private = root.join("private");
        let mut parents = exposed.to_vec();
        parents.push(private.clone());
        let live = follow(checked, &config, parents, "s1", &owner).unwrap();
        assert_eq!(live.copy().private_dir().parent(), Some(private.as_path()));
        for parent in &exposed {
            assert_eq!(
                std::fs::read_dir(parent).unwrap().count(),
                0,
                "left in {parent:?}"
            );
        }
        drop(live);
        let error = follow(checked, &config, exposed.to_vec(), "s2", &owner)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("through the mount of"),
            "{error}"
        );
    }
}
