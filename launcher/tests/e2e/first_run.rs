//! The first run of a launcher without its sidecar image: the image is pulled from a
//! registry (a real one on loopback) with progress on a terminal and quietly otherwise,
//! by digest when the reference pins one; with the registry gone and no checkout to
//! build from, the run stops with one message naming the image and both ways out, and
//! leaves nothing behind. `build` and `--build` build it from the source checkout,
//! `doctor` says where each image comes from, and the README's install command gives a
//! launcher that names the sidecar image the build script tags.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use agent_sandbox_e2e::{
    Registry, TEST_ID_LABEL, debian_image, docker, docker_ok, proxy_image, workspace_root,
};

use crate::pty::Pty;
use crate::support::{Launcher, run, stdout};

/// The launcher's version, which every sidecar image it runs must carry.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a pull or a build from a warm cache may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(120);

/// Image names a test created, removed when it ends, also when it fails. Only the
/// names go: an image that other tests use keeps its own name.
struct Names(Vec<String>);

impl Drop for Names {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker(["image", "rm", name]);
        }
    }
}

/// The version label of the image `name`.
fn version_label(name: &str) -> String {
    docker_ok([
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.opencontainers.image.version\"}}",
        name,
    ])
}

/// Writes the launcher's settings file in the fixture's home.
fn settings(launcher: &Launcher, text: &str) {
    let dir = launcher.home.join(".config/agent-sandbox");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// `command` with this machine's Rust toolchain: the fixture's home is not the one
/// cargo and rustup keep it in, and a build from the checkout needs it.
fn with_toolchain(mut command: Command) -> Command {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    for (variable, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let value = std::env::var_os(variable).map_or_else(|| home.join(default), PathBuf::from);
        command.env(variable, value);
    }
    command
}

#[test]
fn a_missing_sidecar_image_is_pulled_or_the_run_names_both_ways_out() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let Some(mut registry) = Registry::start() else {
        return;
    };
    let repository = format!(
        "{}/{}/sandbox-proxy",
        registry.address(),
        launcher.scope.id()
    );
    let reference = format!("{repository}:first-run");
    let mut names = Names(vec![reference.clone()]);
    docker_ok(["tag", proxy_image(), &reference]);
    docker_ok(["push", &reference]);
    let digests = docker_ok([
        "image",
        "inspect",
        "--format",
        "{{range .RepoDigests}}{{println .}}{{end}}",
        &reference,
    ]);
    let pinned = digests
        .lines()
        .find(|line| line.starts_with(&format!("{repository}@")))
        .unwrap()
        .to_owned();
    names.0.push(pinned.clone());
    docker_ok(["image", "rm", &reference]);
    let allowlist = launcher.scope.file("allowed.txt", "example.com\n");
    let shell = |image: &str| {
        launcher.shell(
            &[
                "--proxy",
                "--proxy-image",
                image,
                "--allowed-domains",
                allowlist.to_str().unwrap(),
            ],
            &["true"],
        )
    };

    // On a terminal: the pull's progress line, then the run.
    let pty = Pty::open(160, 30);
    let status = shell(&reference)
        .stdin(pty.stdio())
        .stdout(pty.stdio())
        .stderr(pty.stdio())
        .status()
        .unwrap();
    let seen = pty.wait_for(&format!("pulling {reference}"), 0, WAIT);
    pty.wait_for(&format!("pulled the sidecar image {reference}"), seen, WAIT);
    assert!(status.success(), "{}", pty.screen_after(0));
    assert_eq!(version_label(&reference), VERSION);

    // Without a terminal: one line, no progress drawn.
    docker_ok(["image", "rm", &reference]);
    let output = run(shell(&reference));
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("pulled the sidecar image {reference}\n")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pulling") && !stderr.contains(['\r', '\x1b']),
        "progress drawn without a terminal: {stderr:?}"
    );

    // A reference pinned to a digest: pulled by it, then named as the reference says.
    docker_ok(["image", "rm", &reference]);
    let (_, digest) = pinned.split_once('@').unwrap();
    let output = run(shell(&format!("{reference}@{digest}")));
    assert!(output.status.success());
    assert_eq!(version_label(&reference), VERSION);

    // The registry gone and building turned off: one message, both ways out, nothing left.
    registry.stop();
    docker_ok(["image", "rm", &reference]);
    settings(&launcher, "source_checkout = \"\"\n");
    let output = run(shell(&reference));
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("agent-sandbox: cannot get the sidecar image"))
        .collect();
    assert_eq!(message.len(), 1, "{stderr}");
    for needle in [
        format!("cannot get the sidecar image {reference}: pulling it failed"),
        "there is no source checkout to build it from".to_owned(),
        format!("docker pull {reference}"),
        format!("scripts/build-proxy-image.sh --tag {reference}"),
        "source_checkout".to_owned(),
    ] {
        assert!(message[0].contains(&needle), "{needle:?} not in {stderr}");
    }
    assert_ne!(docker(["image", "inspect", &reference]).code, 0);
    let label = format!("label={TEST_ID_LABEL}={}", launcher.scope.id());
    for kind in [
        &["ps", "--all", "--quiet"][..],
        &["network", "ls", "--quiet"],
        &["volume", "ls", "--quiet"],
    ] {
        let left = docker_ok(kind.iter().copied().chain(["--filter", &label]));
        assert!(left.is_empty(), "left behind ({kind:?}): {left}");
    }
}

#[test]
fn build_and_dash_dash_build_make_the_sidecar_image_from_the_checkout_and_doctor_shows_both() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let built = format!("agent-sandbox-test/{}-sidecar:built", launcher.scope.id());
    let rebuilt = format!("agent-sandbox-test/{}-sidecar:rebuilt", launcher.scope.id());
    let _names = Names(vec![built.clone(), rebuilt.clone()]);
    let checkout = workspace_root().canonicalize().unwrap();
    let doctor = |image: &str| {
        let output =
            run(launcher.launcher(&["doctor", "--image", debian_image(), "--proxy-image", image]));
        assert!(output.status.success());
        stdout(&output)
    };

    let report = doctor(&built);
    assert!(
        report.contains(&format!("agent image {}: present", debian_image())),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "sidecar image {built} (used with --proxy): missing: pulled from docker.io on the next \
             run, built from the checkout {} if that fails",
            checkout.display()
        )),
        "{report}"
    );

    let output = run(with_toolchain(launcher.launcher(&[
        "build",
        "--only",
        "sidecar",
        "--proxy-image",
        &built,
    ])));
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!(
        "built the sidecar image {built} from {}",
        checkout.display()
    )));
    assert_eq!(version_label(&built), VERSION);
    let report = doctor(&built);
    assert!(
        report.contains(&format!(
            "sidecar image {built} (used with --proxy): present, version {VERSION}"
        )),
        "{report}"
    );

    // `--build` (`pi --build`) before a run makes sure of the sidecar image too.
    let allowlist = launcher.scope.file("allowed.txt", "example.com\n");
    let output = run(with_toolchain(launcher.shell(
        &[
            "--build",
            "--proxy",
            "--proxy-image",
            &rebuilt,
            "--allowed-domains",
            allowlist.to_str().unwrap(),
        ],
        &["true"],
    )));
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("built the sidecar image {rebuilt} from")),
    );
    assert_eq!(version_label(&rebuilt), VERSION);
}

#[test]
fn the_readme_install_gives_a_launcher_that_names_the_image_the_build_script_tags() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let root = launcher.scope.subdir("install");
    // The README's install command, into a temporary root. The workspace's target
    // directory keeps reruns from compiling everything again.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut install = Command::new(cargo);
    install
        .current_dir(workspace_root())
        .args(["install", "--locked", "--path", "launcher", "--root"])
        .arg(&root)
        .env(
            "CARGO_TARGET_DIR",
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from),
        )
        .env_remove("AGENT_SANDBOX_PROXY_REPOSITORY")
        .env_remove("AGENT_SANDBOX_PROXY_DIGEST");
    assert!(run(install).status.success());
    let installed = root.join("bin/agent-sandbox");

    let mut script = Command::new("bash");
    script
        .arg(workspace_root().join("scripts/build-proxy-image.sh"))
        .arg("--print-tag")
        .env_remove("AGENT_SANDBOX_PROXY_REPOSITORY");
    let tag = stdout(&run(script)).trim().to_owned();
    assert_eq!(
        tag,
        format!("ghcr.io/agent-sandbox/sandbox-proxy:{VERSION}")
    );
    let mut version = launcher.command(&installed);
    version.arg("--version");
    let version = run(version);
    assert_eq!(
        stdout(&version),
        format!("agent-sandbox {VERSION}\nsidecar image {tag}\n")
    );

    let mut doctor = launcher.command(&installed);
    doctor.arg("doctor");
    let doctor = run(doctor);
    assert!(doctor.status.success());
    let report = stdout(&doctor);
    for needle in [
        "docker engine ".to_owned(),
        "agent image agent-sandbox/agent:base: ".to_owned(),
        format!("sidecar image {tag} (used with --proxy): "),
    ] {
        assert!(report.contains(&needle), "{needle:?} not in {report}");
    }
}
