//! The test infrastructure itself, against the real engine: the Debian test image has
//! the tools tests rely on, throwaway runs report exit codes and output, and a scope
//! removes what it created, also when its test panics.

use agent_sandbox_e2e::{Scope, TEST_ID_LABEL, debian_image, docker_ok, docker_scope};

/// Lists the ids of containers and networks carrying a scope's id label.
fn labelled(scope_id: &str) -> (String, String) {
    let filter = format!("label={TEST_ID_LABEL}={scope_id}");
    (
        docker_ok(["ps", "--all", "--quiet", "--filter", &filter]),
        docker_ok(["network", "ls", "--quiet", "--filter", &filter]),
    )
}

#[test]
fn debian_image_has_the_tools_tests_use() {
    let Some(scope) = docker_scope() else { return };
    let image = debian_image();
    let labels = docker_ok([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        image,
    ]);
    assert!(labels.contains(r#""agent-sandbox.test":"1""#), "{labels}");
    let out = scope.run(
        image,
        &[],
        &[
            "bash",
            "-c",
            "for t in bash curl ip nc ps capsh python3 getent; do command -v $t >/dev/null || echo missing $t; done; \
             test -s /etc/ssl/certs/ca-certificates.crt || echo missing ca bundle",
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
}

#[test]
fn run_returns_exit_code_stdout_and_stderr() {
    let Some(scope) = docker_scope() else { return };
    let out = scope.run(
        debian_image(),
        &[],
        &["bash", "-c", "echo out; echo err >&2; exit 7"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (7, "out\n", "err\n")
    );
}

#[test]
fn scope_removes_its_objects_when_dropped() {
    let Some(scope) = docker_scope() else { return };
    let id = scope.id().to_owned();
    let net = scope.network("net", &["--internal"]);
    let container = scope
        .container(debian_image(), "sleeper")
        .network(&net)
        .cmd(["sleep", "600"])
        .start();
    assert_eq!(container.inspect("{{.State.Status}}"), "running");
    let (containers, networks) = labelled(&id);
    assert_eq!(
        (containers.lines().count(), networks.lines().count()),
        (1, 1)
    );
    drop(scope);
    assert_eq!(labelled(&id), (String::new(), String::new()));
}

#[test]
fn scope_removes_its_objects_when_the_test_panics() {
    // The scope under test is the one the failing thread opens.
    let Some(_guard) = docker_scope() else { return };
    let (id_tx, id_rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let scope = Scope::new();
        id_tx.send(scope.id().to_owned()).unwrap();
        scope.network("net", &[]);
        scope
            .container(debian_image(), "sleeper")
            .cmd(["sleep", "600"])
            .start();
        panic!("a failing test");
    })
    .join();
    assert!(failed.is_err());
    let id = id_rx.recv().unwrap();
    assert_eq!(labelled(&id), (String::new(), String::new()));
}
