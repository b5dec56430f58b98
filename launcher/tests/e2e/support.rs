//! What the launcher's end-to-end tests share: a [`Launcher`] fixture (a scope, a home,
//! a working directory, the engine to itself) and a [`run`] that shows what a launcher
//! invocation printed. Docker helpers (scopes, test images, upstreams, waiting) come
//! from the `agent-sandbox-e2e` crate.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use agent_sandbox_e2e::{
    Scope, TEST_ID_LABEL, as_user, debian_image, docker_ok, docker_scope, eventually, proxy_image,
};

/// The UID and GID the non-root runs use.
pub const USER: u32 = 4321;

/// Serialises the launcher runs of this binary: each run starts with a `gc`, which must
/// not race with a test that inspects leftovers on purpose.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Launcher invocations in a scope: their own home (settings, profile mounts), working
/// directory and runtime directory, the scope's labels, the test images. Only one exists
/// at a time (see [`ONE_AT_A_TIME`]).
pub struct Launcher {
    pub scope: Scope,
    pub home: PathBuf,
    pub work: PathBuf,
    /// `XDG_RUNTIME_DIR`, where the browser hand-off channels go.
    pub runtime: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Launcher {
    /// The fixture of a Docker test, or `None` (after a loud skip; a failure under CI)
    /// when no Docker engine answers. Waits for the other tests' launchers to finish.
    pub fn start() -> Option<Self> {
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let scope = docker_scope()?;
        Some(Self {
            home: scope.subdir("home"),
            work: scope.subdir("work"),
            runtime: scope.subdir("run"),
            scope,
            _serial: serial,
        })
    }

    /// Hands the home, working and runtime directories to [`USER`].
    pub fn owned_by_user(self) -> Self {
        for dir in [&self.home, &self.work, &self.runtime, self.scope.dir()] {
            std::os::unix::fs::chown(dir, Some(USER), Some(USER)).unwrap();
        }
        self
    }

    /// `program` (the launcher, or a link to it) in the working directory, with this
    /// home, settings and runtime directory, the default engine and no input.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.work)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        cmd
    }

    /// `agent-sandbox ARGS`.
    pub fn launcher(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(launcher_binary());
        cmd.args(args);
        cmd
    }

    /// `agent-sandbox shell --image DEBIAN [labels] [options] -- command...`.
    pub fn shell(&self, options: &[impl AsRef<OsStr>], command: &[&str]) -> Command {
        let mut cmd = self.launcher(&["shell", "--image", debian_image()]);
        cmd.args(self.scope.label_args())
            .args(options)
            .arg("--")
            .args(command);
        cmd
    }

    /// Proxy-mode options with `allowlist` and the test sidecar image.
    pub fn proxy_options(&self, allowlist: &str, egress: Option<&str>) -> Vec<String> {
        let file = self.scope.file("allowed_domains.txt", allowlist);
        let mut options = vec![
            "--proxy".to_owned(),
            "--allowed-domains".to_owned(),
            file.display().to_string(),
            "--proxy-image".to_owned(),
            proxy_image().to_owned(),
        ];
        if let Some(network) = egress {
            options.extend(["--egress-network".to_owned(), network.to_owned()]);
        }
        options
    }

    /// The same, run as [`USER`] with access to the engine's socket.
    pub fn shell_as_user(&self, options: &[impl AsRef<OsStr>], command: &[&str]) -> Command {
        let mut cmd = as_user(&self.shell(options, command), USER);
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// The scope's objects that the launcher created (containers, networks, volumes).
pub fn launcher_objects(scope: &Scope) -> Vec<String> {
    let filter = format!("label={TEST_ID_LABEL}={}", scope.id());
    let managed = "label=agent-sandbox.managed-by=agent-sandbox";
    let mut objects = Vec::new();
    for list in [&["ps", "--all"][..], &["network", "ls"], &["volume", "ls"]] {
        let mut args: Vec<&str> = list.to_vec();
        args.extend(["--quiet", "--filter", &filter, "--filter", managed]);
        objects.extend(docker_ok(&args).split_whitespace().map(str::to_owned));
    }
    objects
}

/// Waits until the scope's agent container runs.
pub fn wait_for_agent(scope: &Scope) {
    let filter = format!("label={TEST_ID_LABEL}={}", scope.id());
    eventually(
        Duration::from_secs(60),
        "the agent container starting",
        || {
            let running = docker_ok([
                "ps",
                "--quiet",
                "--filter",
                &filter,
                "--filter",
                "label=agent-sandbox.role=agent",
            ]);
            if running.is_empty() {
                Err("no running agent container")
            } else {
                Ok(())
            }
        },
    );
}

/// Hands everything below `dir` to [`USER`].
pub fn chown_to_user(dir: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:{USER}"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The launcher binary cargo built for these tests.
pub fn launcher_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_agent-sandbox"))
}

/// Runs `command` to its end and prints what it printed (shown when the test fails).
pub fn run(mut command: Command) -> Output {
    let output = command.output().unwrap();
    eprintln!(
        "--- {:?} exited {:?}\n--- stdout:\n{}--- stderr:\n{}",
        command.get_args().collect::<Vec<_>>(),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The value after `key` on its line of `text` (a probe's `key: value` lines).
pub fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

/// Its standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
