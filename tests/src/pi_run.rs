//! Running pi against a mock model server, two ways: in the sandbox (the real launcher
//! in proxy mode, the pi test image, the mock as [`MODEL_HOST`] in a container on an
//! egress network the test creates) or directly on the host (the same Node.js and pi,
//! the mock on loopback). Each has its own home directory, whose
//! `~/.pi/agent/models.json` declares the mock as a provider, and its own working
//! directory, both removed with its [`Scope`].

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::Outcome;
use crate::model_server::{LocalModelServer, ModelServer};
use crate::node::node_binary;
use crate::pi_agent::{Provider, host_pi_cli};
use crate::pi_image::pi_image;
use crate::proxy_image::proxy_image;
use crate::scope::Scope;
use crate::test_ca::test_ca;

/// The mock model server's name on the egress network.
pub const MODEL_HOST: &str = "model.test";

/// The launcher's default allowlist, relative to the home directory (with
/// `XDG_CONFIG_HOME` at `~/.config`).
const DEFAULT_ALLOWLIST: &str = ".config/agent-sandbox/allowed_domains.txt";

/// pi's `settings.json`: its retries of a failed request stay (three, as by default) but
/// start 0.1 s apart instead of 2 s, so a refused provider fails in about a second
/// rather than the 15 s a user would wait.
const SETTINGS: &str = r#"{ "retry": { "baseDelayMs": 100 } }
"#;

/// pi in the sandbox; see the module documentation.
#[derive(Debug)]
pub struct SandboxedPi {
    model: ModelServer,
    egress: String,
    dirs: PiDirs,
    /// Last: dropped after the fields above, removes everything.
    scope: Scope,
}

impl SandboxedPi {
    /// Creates the egress network, starts the mock on it and writes pi's home.
    pub fn start() -> Self {
        let scope = Scope::new();
        let egress = scope.network("egress", &[]);
        let model = ModelServer::start(&scope, &egress, MODEL_HOST);
        let dirs = PiDirs::new(&scope, model.base_url());
        Self {
            model,
            egress,
            dirs,
            scope,
        }
    }

    /// The mock model server.
    pub fn model(&self) -> &ModelServer {
        &self.model
    }

    /// pi's agent directory on the host (`~/.pi/agent`, mounted into the container).
    pub fn agent_dir(&self) -> PathBuf {
        self.dirs.home.join(".pi/agent")
    }

    /// Hands pi's home and working directories to `uid` (and its group), for a launcher
    /// run as that user.
    pub fn hand_to(&self, uid: u32) {
        self.dirs.hand_to(uid);
    }

    /// `LAUNCHER run pi --proxy ... -- --provider mock --model mock-model -p PROMPT`
    /// with the test images, the egress network, the scope's labels and `allowlist`
    /// (written to the launcher's default, `~/.config/agent-sandbox/allowed_domains.txt`).
    pub fn command(&self, launcher: &Path, allowlist: &str, prompt: &str) -> Command {
        let allowed = self.dirs.home.join(DEFAULT_ALLOWLIST);
        std::fs::write(&allowed, allowlist)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", allowed.display()));
        let mut cmd = self.dirs.command(launcher);
        cmd.args(["run", "pi", "--proxy", "--image", pi_image()])
            .args(["--proxy-image", proxy_image()])
            .args(["--egress-network", &self.egress])
            .args(self.scope.label_args())
            .arg("--")
            .args(self.dirs.pi_args(prompt));
        cmd
    }
}

/// pi on the host; see the module documentation.
#[derive(Debug)]
pub struct HostPi {
    model: LocalModelServer,
    dirs: PiDirs,
    /// Last: dropped after the fields above, removes everything.
    _scope: Scope,
}

impl HostPi {
    /// Starts the mock on loopback and writes pi's home.
    pub fn start() -> Self {
        let scope = Scope::new();
        let model = LocalModelServer::start(&scope);
        let dirs = PiDirs::new(&scope, model.base_url());
        Self {
            model,
            dirs,
            _scope: scope,
        }
    }

    /// The mock model server.
    pub fn model(&self) -> &LocalModelServer {
        &self.model
    }

    /// `node .../pi --provider mock --model mock-model -p PROMPT`, trusting the test CA
    /// (`NODE_EXTRA_CA_CERTS`), without proxy variables.
    pub fn command(&self, prompt: &str) -> Command {
        let mut cmd = self.dirs.command(node_binary());
        cmd.arg(host_pi_cli())
            .args(self.dirs.pi_args(prompt))
            .env("NODE_EXTRA_CA_CERTS", test_ca().cert_path());
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            cmd.env_remove(proxy);
        }
        cmd
    }
}

/// pi's home and working directories in a scope's host directory, and the provider
/// its `models.json` declares.
#[derive(Debug)]
struct PiDirs {
    home: PathBuf,
    work: PathBuf,
    provider: Provider,
}

impl PiDirs {
    /// Creates them, with the launcher's configuration directory (where the allowlist
    /// goes) and `models.json` declaring the provider `mock` at `base_url`.
    fn new(scope: &Scope, base_url: String) -> Self {
        let (home, work) = (scope.subdir("home"), scope.subdir("work"));
        scope.subdir("home/.config/agent-sandbox");
        let provider = Provider {
            name: "mock".to_owned(),
            base_url,
            model: "mock-model".to_owned(),
        };
        let agent = provider.write_agent_dir(&home);
        let settings = agent.join("settings.json");
        std::fs::write(&settings, SETTINGS)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", settings.display()));
        Self {
            home,
            work,
            provider,
        }
    }

    /// Hands the directory holding both (and the scope's other files) to `uid`.
    fn hand_to(&self, uid: u32) {
        let root = self.home.parent().unwrap_or(&self.home);
        let owner = format!("{uid}:{uid}");
        let outcome = Outcome::of(Command::new("chown").args(["-R", &owner]).arg(root));
        if !outcome.success() {
            panic!("chown -R {owner} {}: {}", root.display(), outcome.stderr);
        }
    }

    /// `program` in the working directory with this home.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.work)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("PI_TELEMETRY", "false");
        cmd
    }

    /// pi's arguments: the provider's model and the prompt.
    fn pi_args(&self, prompt: &str) -> Vec<String> {
        let mut args: Vec<String> = self.provider.args().map(str::to_owned).into();
        args.extend(["-p".to_owned(), prompt.to_owned()]);
        args
    }
}
