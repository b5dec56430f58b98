//! The sidecar image against the real engine (issue 3 §5): built from a static host
//! binary without pulls (`scripts/build-proxy-image.sh`), small, non-root, and shaped
//! the way the launcher uses it (volumes populated from the image).

use agent_sandbox_e2e::{Scope, debian_image, docker_ok, proxy_image, require_docker};

/// The image's non-root user.
const UID: &str = "65532";

#[test]
fn image_is_small_static_and_runs_as_non_root() {
    require_docker!();
    let image = proxy_image();
    let size: u64 = docker_ok(["image", "inspect", "--format", "{{.Size}}", image])
        .parse()
        .unwrap();
    assert!(size < 8 * 1024 * 1024, "image is {size} bytes");
    let config = |f: &str| docker_ok(["image", "inspect", "--format", f, image]);
    assert_eq!(config("{{.Config.User}}"), format!("{UID}:{UID}"));
    assert_eq!(
        config("{{json .Config.ExposedPorts}}"),
        r#"{"8888/tcp":{}}"#
    );
    assert_eq!(
        config("{{json .Config.Entrypoint}}"),
        r#"["/opt/sandbox/bin/sandbox-proxy"]"#
    );
    assert_eq!(
        config("{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","/opt/sandbox/bin/sandbox-proxy","healthcheck"]"#
    );
    assert_eq!(config("{{.Os}}/{{len .RootFS.Layers}}"), "linux/2");
}

/// Creates a named volume of the scope and returns its name.
fn volume(scope: &Scope, what: &str) -> String {
    let name = scope.name(what);
    let mut args = vec!["volume".to_owned(), "create".to_owned()];
    args.extend(scope.label_args());
    args.push(name.clone());
    docker_ok(&args);
    name
}

#[test]
fn volumes_share_the_binary_read_only_and_give_the_run_dir_to_the_proxy_user() {
    require_docker!();
    let scope = Scope::new();
    let bin = volume(&scope, "bin");
    let run = volume(&scope, "run");
    let mounts = [
        "--volume".to_owned(),
        format!("{bin}:/opt/sandbox/bin:ro"),
        "--volume".to_owned(),
        format!("{run}:/run/sandbox"),
    ];
    // Creating a container populates empty named volumes from the image: what the
    // launcher relies on to hand the binary and the socket directory to the agent.
    docker_ok(
        ["create".to_owned()]
            .into_iter()
            .chain(scope.label_args())
            .chain(mounts.iter().cloned())
            .chain([proxy_image().to_owned()]),
    );
    let out = scope.run(
        debian_image(),
        &mounts.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            "bash",
            "-c",
            "stat -c '%u %a' /opt/sandbox/bin/sandbox-proxy /run/sandbox \
             && /opt/sandbox/bin/sandbox-proxy --help >/dev/null \
             && ! touch /opt/sandbox/bin/sandbox-proxy 2>/dev/null && echo read-only",
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("0 755\n{UID} 755\nread-only\n").as_str()),
        "{}",
        out.stderr
    );
}
