//! A test-scoped set of Docker objects: every network, container and volume created
//! through a [`Scope`] carries the labels [`TEST_LABEL`] and `agent-sandbox.test.id=<id>`,
//! and is removed when the scope is dropped, which also happens when the test panics.
//!
//! Removal finds objects by label rather than by a list kept in memory, so anything a
//! test (or the code under test) created with the scope's labels is removed too.
//! Objects left by a test process that was killed outright (its `Drop` never ran) are
//! removed by the next test process that opens a scope.
//!
//! A scope also owns a temporary directory on the host (through `tempfile`, removed on
//! drop) for the files and directories a test hands to containers or to the launcher.

use std::fs::Permissions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cli::{Outcome, docker, docker_ok};

/// The label every Docker object created by a test carries.
pub const TEST_LABEL: &str = "agent-sandbox.test=1";

/// The key of the label naming the scope (one per test) an object belongs to.
pub const TEST_ID_LABEL: &str = "agent-sandbox.test.id";

/// The key of the label naming the test process that created an object.
const TEST_PID_LABEL: &str = "agent-sandbox.test.pid";

/// Docker objects (and host files) of one test, removed on drop. See the module
/// documentation.
#[derive(Debug)]
pub struct Scope {
    id: String,
    dir: tempfile::TempDir,
}

impl Scope {
    /// A new scope, named after the current test (the test harness names each test's
    /// thread after it) plus the process id and a counter, so names never collide.
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        remove_orphans_once();
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(32)
            .collect::<String>();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("ast-{test}-{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        // Readable by every UID, so containers running as any user can read bind mounts.
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dir.path().display()));
        Self { id, dir }
    }

    /// The scope's unique id: the value of its `agent-sandbox.test.id` label, and the
    /// prefix of every name it gives.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `--label` arguments that mark an object as this scope's, for any `docker
    /// ... create`-like command (and for code under test that accepts extra labels).
    pub fn label_args(&self) -> Vec<String> {
        [
            TEST_LABEL.to_owned(),
            format!("{TEST_ID_LABEL}={}", self.id),
            format!("{TEST_PID_LABEL}={}", std::process::id()),
        ]
        .into_iter()
        .flat_map(|label| ["--label".to_owned(), label])
        .collect()
    }

    /// A name for an object of this scope: `<id>-<what>`.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.id)
    }

    /// Creates a user-defined bridge network (with `extra` arguments such as
    /// `--internal`) and returns its name.
    pub fn network(&self, what: &str, extra: &[&str]) -> String {
        let name = self.name(what);
        let mut args = vec!["network".to_owned(), "create".to_owned()];
        args.extend(self.label_args());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args.push(name.clone());
        docker_ok(&args);
        name
    }

    /// Starts describing a container named `<id>-<what>` running `image`.
    pub fn container(&self, image: &str, what: &str) -> ContainerBuilder<'_> {
        ContainerBuilder {
            scope: self,
            name: self.name(what),
            image: image.to_owned(),
            args: Vec::new(),
            cmd: Vec::new(),
        }
    }

    /// Runs `cmd` in a throwaway container of `image` (with extra `docker run`
    /// arguments `args`), waits for it and returns its exit code and output.
    pub fn run(&self, image: &str, args: &[&str], cmd: &[&str]) -> Outcome {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = self.name(&format!("run{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut all = vec![
            "run".to_owned(),
            "--rm".to_owned(),
            "--name".to_owned(),
            name,
        ];
        all.extend(self.label_args());
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.push(image.to_owned());
        all.extend(cmd.iter().map(|a| (*a).to_owned()));
        docker(&all)
    }

    /// The scope's directory on the host: readable by every UID, removed with the scope.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates the directory `name` (and its parents) in the scope's directory and
    /// returns its path.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        path
    }

    /// Writes a file, readable by every UID, into the scope's directory and returns its
    /// path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        std::fs::set_permissions(&path, Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        path
    }

    /// Creates a named volume of this scope and returns its name.
    pub fn volume(&self, what: &str) -> String {
        let name = self.name(what);
        let mut args = vec!["volume".to_owned(), "create".to_owned()];
        args.extend(self.label_args());
        args.push(name.clone());
        docker_ok(&args);
        name
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scope {
    /// Removes every container, network and volume labelled with this scope's id; the
    /// directory goes with its `TempDir`.
    fn drop(&mut self) {
        remove_labelled(&format!("{TEST_ID_LABEL}={}", self.id));
    }
}

/// Describes a container before it starts; see [`Scope::container`].
#[derive(Debug)]
pub struct ContainerBuilder<'s> {
    scope: &'s Scope,
    name: String,
    image: String,
    args: Vec<String>,
    cmd: Vec<String>,
}

impl ContainerBuilder<'_> {
    /// Attaches the container to `network` (first network only; see
    /// [`Container::connect`] for more).
    pub fn network(self, network: &str) -> Self {
        self.args(["--network", network])
    }

    /// Gives the container a DNS alias on its network.
    pub fn alias(self, alias: &str) -> Self {
        self.args(["--network-alias", alias])
    }

    /// Adds `docker run` arguments, e.g. `["--read-only"]` or `["-e", "K=V"]`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the command (the arguments after the image).
    pub fn cmd<I, S>(mut self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cmd.extend(cmd.into_iter().map(Into::into));
        self
    }

    /// Starts the container detached.
    pub fn start(self) -> Container {
        let mut all = vec!["run".to_owned(), "--detach".to_owned()];
        all.extend(["--name".to_owned(), self.name.clone()]);
        all.extend(self.scope.label_args());
        all.extend(self.args);
        all.push(self.image);
        all.extend(self.cmd);
        let id = docker_ok(&all);
        Container {
            id,
            name: self.name,
        }
    }
}

/// A running (or exited) container of a scope; removed with the scope.
#[derive(Debug, Clone)]
pub struct Container {
    id: String,
    name: String,
}

impl Container {
    /// The container's name, which is also its DNS name on its networks.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's full id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `cmd` inside the container and returns its exit code and output.
    pub fn exec(&self, cmd: &[&str]) -> Outcome {
        let mut all = vec!["exec", &self.id];
        all.extend(cmd);
        docker(all)
    }

    /// The container's logs so far (stdout and stderr as the container wrote them).
    pub fn logs(&self) -> Outcome {
        docker(["logs", &self.id])
    }

    /// Evaluates a `docker inspect --format` template on the container.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(["inspect", "--format", format, &self.id])
    }

    /// The container's address on `network`.
    pub fn ip(&self, network: &str) -> IpAddr {
        let template = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        let ip = self.inspect(&template);
        ip.parse().unwrap_or_else(|e| {
            let logs = self.logs();
            panic!(
                "container {} ({}) has no address on {network} ({ip:?}: {e}); logs:\n{}{}",
                self.name,
                self.inspect("{{.State.Status}} exit {{.State.ExitCode}}"),
                logs.stdout,
                logs.stderr
            )
        })
    }

    /// Connects the container to one more network, optionally with a DNS alias.
    pub fn connect(&self, network: &str, alias: Option<&str>) {
        let mut args = vec!["network", "connect"];
        if let Some(alias) = alias {
            args.extend(["--alias", alias]);
        }
        args.extend([network, &self.id]);
        docker_ok(args);
    }
}

/// Removes containers (with their anonymous volumes), then networks, then volumes
/// carrying `label`. Never panics: it runs in `Drop`, possibly during a panic.
fn remove_labelled(label: &str) {
    let filter = format!("label={label}");
    let kinds: [(&[&str], &[&str]); 3] = [
        (&["ps", "--all", "--quiet"], &["rm", "--force", "--volumes"]),
        (&["network", "ls", "--quiet"], &["network", "rm"]),
        (&["volume", "ls", "--quiet"], &["volume", "rm", "--force"]),
    ];
    for (list, remove) in kinds {
        let listed = docker(list.iter().copied().chain(["--filter", &filter]));
        let ids: Vec<&str> = listed.stdout.split_whitespace().collect();
        if ids.is_empty() {
            continue;
        }
        let removed = docker(remove.iter().copied().chain(ids.iter().copied()));
        if !removed.success() {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not remove Docker objects labelled {label}: {}",
                removed.stderr.trim()
            );
        }
    }
}

/// Once per test process, removes objects left by test processes that no longer run
/// (killed before their scopes were dropped).
fn remove_orphans_once() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let listed = docker([
            "ps",
            "--all",
            "--filter",
            &format!("label={TEST_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{TEST_PID_LABEL}\"}}}}"),
        ]);
        let networks = docker([
            "network",
            "ls",
            "--filter",
            &format!("label={TEST_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{TEST_PID_LABEL}\"}}}}"),
        ]);
        let mut pids: Vec<&str> = listed
            .stdout
            .split_whitespace()
            .chain(networks.stdout.split_whitespace())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            if !std::path::Path::new("/proc").join(pid).exists() {
                remove_labelled(&format!("{TEST_PID_LABEL}={pid}"));
            }
        }
    });
}
