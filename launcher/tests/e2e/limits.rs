//! Limits by default, seen through the engine: the agent's process and memory limits
//! (half the engine's memory), the sidecar's own memory, process and CPU limits, both
//! logs capped; and the anonymous volumes of an image that declares `VOLUME`: labelled
//! with the session, removed at teardown, and found by `gc` after a launcher was killed.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use agent_sandbox_e2e::{TEST_ID_LABEL, debian_image, docker_ok};
use sha2::{Digest as _, Sha256};

use crate::support::{Launcher, launcher_objects, run, wait_for_agent};

/// An image with a `VOLUME`, built from the Debian test image (kept, like it, under a
/// tag derived from its recipe).
fn volume_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let dockerfile = format!(
            "FROM {}\nVOLUME /data\nLABEL agent-sandbox.test=1\n",
            debian_image()
        );
        let hash: String = Sha256::digest(dockerfile.as_bytes())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tag = format!("agent-sandbox-test/with-volume:{hash}");
        if docker_ok(["image", "ls", "--quiet", &tag]).is_empty() {
            let mut build = Command::new("docker")
                .args(["build", "--quiet", "--tag", &tag, "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            build
                .stdin
                .take()
                .unwrap()
                .write_all(dockerfile.as_bytes())
                .unwrap();
            let built = build.wait_with_output().unwrap();
            assert!(
                built.status.success(),
                "cannot build {tag}: {}",
                String::from_utf8_lossy(&built.stderr)
            );
        }
        tag
    })
}

/// The scope's container with `role`, by id.
fn container(launcher: &Launcher, role: &str) -> String {
    docker_ok([
        "ps",
        "--quiet",
        "--filter",
        &format!("label={TEST_ID_LABEL}={}", launcher.scope.id()),
        "--filter",
        &format!("label=agent-sandbox.role={role}"),
    ])
}

/// `docker inspect --format FORMAT ID`.
fn inspect(id: &str, format: &str) -> String {
    docker_ok(["inspect", "--format", format, id])
}

/// The scope's volumes that no one named (the engine names anonymous volumes with 64
/// hexadecimal digits).
fn anonymous_volumes(launcher: &Launcher) -> Vec<String> {
    let filter = format!("label={TEST_ID_LABEL}={}", launcher.scope.id());
    docker_ok(["volume", "ls", "--quiet", "--filter", &filter])
        .split_whitespace()
        .filter(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn limits_log_caps_and_image_volumes_reach_the_engine_and_leave_with_the_run() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let mut options = launcher.proxy_options("allowed.test\n", None);
    options.extend(["--image".to_owned(), volume_image().to_owned()]);
    let mut child = launcher
        .shell(&options, &["sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_agent(&launcher.scope);
    let agent = container(&launcher, "agent");
    let proxy = container(&launcher, "proxy");
    let engine_memory: u64 = docker_ok(["info", "--format", "{{.MemTotal}}"])
        .parse()
        .unwrap();
    assert_eq!(
        inspect(&agent, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"),
        format!("{} 4096", engine_memory / 2)
    );
    assert_eq!(
        inspect(
            &proxy,
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}"
        ),
        format!("{} 256 1000000000", 256 << 20)
    );
    for id in [&agent, &proxy] {
        assert_eq!(
            inspect(
                id,
                "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} \
                 {{index .HostConfig.LogConfig.Config \"max-file\"}}"
            ),
            "json-file 10m 2"
        );
    }
    // The image's VOLUME: an anonymous volume, labelled with the session.
    let volumes = anonymous_volumes(&launcher);
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(
        inspect(
            &agent,
            "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}"
        ),
        volumes[0]
    );
    let session = inspect(&agent, "{{index .Config.Labels \"agent-sandbox.session\"}}");
    assert_eq!(
        docker_ok([
            "volume",
            "inspect",
            "--format",
            "{{index .Labels \"agent-sandbox.session\"}}",
            &volumes[0],
        ]),
        session
    );
    // A launcher killed outright leaves it behind; gc finds it by its labels.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(anonymous_volumes(&launcher), volumes);
    assert_eq!(run(launcher.launcher(&["gc"])).status.code(), Some(0));
    assert!(launcher_objects(&launcher.scope).is_empty());
    assert!(anonymous_volumes(&launcher).is_empty());

    // A run that ends normally takes its volume with it.
    let output = run(launcher.shell(&["--image", volume_image()], &["sh", "-c", "touch /data/x"]));
    assert_eq!(output.status.code(), Some(0));
    assert!(launcher_objects(&launcher.scope).is_empty());
    assert!(anonymous_volumes(&launcher).is_empty());
}
