//! The sidecar image against the real engine: built from a static host
//! binary without pulls, started read-only, without capabilities, as a non-root UID,
//! between a client network and an egress network with test upstreams.
//!
//! Topology of a [`World`]: the client sits alone with the proxy on an `--internal`
//! network (it cannot reach the upstreams but through the proxy); the proxy and the
//! upstreams `allowed.test` and `denied.test` share an egress network, where the proxy
//! resolves their names through Docker's embedded DNS (which also proves DNS works in
//! the scratch image). As the launcher runs it, the proxy also listens on a Unix
//! socket in a volume on /run/sandbox, and its binary volume is shared read-only with
//! an agent-like container without network, whose PID 1 is `sandbox-proxy relay`.

use std::net::SocketAddr;
use std::time::Duration;

use agent_sandbox_e2e::{
    Container, Outcome, Scope, Upstream, debian_image, docker_ok, docker_scope, proxy_image,
    wait_healthy, wait_tcp,
};
use sandbox_policy::protocol::{
    self, ADMIN_ADDRESS, ALLOWLIST_PATH, BIN_DIR, DENY_HEADER, DeniedReport, ListenAddr,
    PROXY_BINARY, PROXY_PORT, RUN_DIR,
};

/// The allowlist of most tests: only the `allowed.test` upstream, default ports.
const ALLOWLIST: &str = "# sidecar test allowlist\nallowed.test\n";

/// The proxy's name on the client's network.
const PROXY_HOST: &str = "proxy.test";

/// The image's default arguments (its `CMD`).
fn default_args() -> Vec<String> {
    [
        "--listen",
        &format!("0.0.0.0:{PROXY_PORT}"),
        "--admin",
        ADMIN_ADDRESS,
        "--allowlist",
        ALLOWLIST_PATH,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The image's non-root user.
const UID: &str = "65532";

/// A proxy sidecar with a client and two upstreams; see the module documentation.
struct World {
    /// `docker run` arguments mounting the volumes the launcher shares with the agent:
    /// the binary (read-only) and the proxy's socket directory.
    shared_mounts: [String; 4],
    proxy: Container,
    client: Container,
    allowed: Upstream,
    denied: Upstream,
    /// Last: dropped after the fields above, removes everything.
    scope: Scope,
}

impl World {
    /// Starts the world with the image's default command and [`ALLOWLIST`], and waits
    /// until the proxy accepts connections; `None` (after a loud skip) without Docker.
    fn start() -> Option<Self> {
        let scope = docker_scope()?;
        let egress = scope.network("egress", &[]);
        let inner = scope.network("inner", &["--internal"]);
        let allowed = Upstream::start(&scope, &egress, "allowed.test", &[80, 8000]);
        let denied = Upstream::start(&scope, &egress, "denied.test", &[80]);
        let allowlist = scope.file("allowed_domains.txt", ALLOWLIST);
        let shared_mounts = [
            "--volume".to_owned(),
            format!("{}:{BIN_DIR}:ro", scope.volume("bin")),
            "--volume".to_owned(),
            format!("{}:{RUN_DIR}", scope.volume("run")),
        ];
        let proxy = scope
            .container(proxy_image(), "proxy")
            .network(&egress)
            .args([
                "--read-only",
                "--cap-drop=ALL",
                "--security-opt=no-new-privileges",
            ])
            .args([
                "--volume",
                &format!("{}:{ALLOWLIST_PATH}:ro", allowlist.display()),
            ])
            .args(shared_mounts.iter().cloned())
            // The image's default command plus the Unix socket, as the launcher runs it.
            .cmd(default_args())
            .cmd(["--listen".to_owned(), ListenAddr::socket().to_string()])
            .start();
        proxy.connect(&inner, Some(PROXY_HOST));
        let client = scope
            .container(debian_image(), "client")
            .network(&inner)
            .cmd(["sleep", "infinity"])
            .start();
        wait_tcp(
            SocketAddr::new(proxy.ip(&egress), PROXY_PORT),
            Duration::from_secs(20),
        );
        Some(Self {
            shared_mounts,
            proxy,
            client,
            allowed,
            denied,
            scope,
        })
    }

    /// Runs curl in the client container through the proxy (`-p`: tunnel with CONNECT)
    /// and returns what came back.
    fn curl(&self, args: &[&str]) -> Response {
        let proxy = format!("http://{PROXY_HOST}:{PROXY_PORT}");
        let mut cmd = vec!["curl", "--silent", "--show-error", "--include"];
        cmd.extend(["--max-time", "10", "--proxy", &proxy]);
        cmd.extend(args);
        Response::parse(self.client.exec(&cmd))
    }

    /// Runs `script` (bash) in an agent-like container: no network, an unprivileged
    /// UID other than the proxy's, the shared volumes mounted, and the relay from the
    /// binary volume as PID 1 forwarding 127.0.0.1:8888 to the proxy's socket.
    fn agent(&self, script: &str) -> Outcome {
        let mut args = vec!["--network", "none", "--user", "1000:1000"];
        args.extend(self.shared_mounts.iter().map(String::as_str));
        let command = ["bash", "-c", script].map(str::to_owned);
        let entrypoint = protocol::relay_entrypoint(&command);
        let entrypoint: Vec<&str> = entrypoint.iter().map(String::as_str).collect();
        self.scope.run(debian_image(), &args, &entrypoint)
    }
}

/// What curl printed with `--include`: the last header block and the body.
#[derive(Debug)]
struct Response {
    outcome: Outcome,
    status: u16,
    headers: String,
    body: String,
}

impl Response {
    fn parse(outcome: Outcome) -> Self {
        let (headers, body) = match outcome.stdout.rfind("\r\n\r\n") {
            Some(end) => (&outcome.stdout[..end], &outcome.stdout[end + 4..]),
            None => (outcome.stdout.as_str(), ""),
        };
        let last_block = headers.rsplit("\r\n\r\n").next().unwrap_or_default();
        let status = last_block
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Self {
            status,
            headers: last_block.to_ascii_lowercase(),
            body: body.to_owned(),
            outcome,
        }
    }

    /// The value of the deny header, if present.
    fn deny_reason(&self) -> Option<&str> {
        self.headers
            .lines()
            .find_map(|line| line.strip_prefix(DENY_HEADER)?.strip_prefix(':'))
            .map(str::trim)
    }
}

#[test]
fn image_is_small_static_and_runs_as_non_root() {
    let Some(_scope) = docker_scope() else { return };
    let image = proxy_image();
    let size: u64 = docker_ok(["image", "inspect", "--format", "{{.Size}}", image])
        .parse()
        .unwrap();
    assert!(size < 8 * 1024 * 1024, "image is {size} bytes");
    let config = |f: &str| docker_ok(["image", "inspect", "--format", f, image]);
    assert_eq!(config("{{.Config.User}}"), format!("{UID}:{UID}"));
    let json = |f: &str| serde_json::from_str::<serde_json::Value>(&config(f)).unwrap();
    assert_eq!(
        json("{{json .Config.ExposedPorts}}"),
        serde_json::json!({ format!("{PROXY_PORT}/tcp"): {} })
    );
    assert_eq!(
        json("{{json .Config.Entrypoint}}"),
        serde_json::json!([PROXY_BINARY])
    );
    assert_eq!(
        json("{{json .Config.Cmd}}"),
        serde_json::json!(default_args())
    );
    let mut healthcheck = vec!["CMD".to_owned()];
    healthcheck.extend(protocol::healthcheck_command());
    assert_eq!(
        json("{{json .Config.Healthcheck.Test}}"),
        serde_json::json!(healthcheck)
    );
    assert_eq!(config("{{.Os}}/{{len .RootFS.Layers}}"), "linux/2");
}

#[test]
fn volumes_share_the_binary_read_only_and_give_the_run_dir_to_the_proxy_user() {
    let Some(scope) = docker_scope() else { return };
    let mounts = [
        "--volume".to_owned(),
        format!("{}:{BIN_DIR}:ro", scope.volume("bin")),
        "--volume".to_owned(),
        format!("{}:{RUN_DIR}", scope.volume("run")),
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
            &format!(
                "stat -c '%u %a' {PROXY_BINARY} {RUN_DIR} \
                 && {PROXY_BINARY} --help >/dev/null \
                 && ! touch {PROXY_BINARY} 2>/dev/null && echo read-only"
            ),
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("0 755\n{UID} 755\nread-only\n").as_str()),
        "{}",
        out.stderr
    );
}

#[test]
fn allows_a_listed_host_over_plain_http_and_connect() {
    let Some(world) = World::start() else { return };
    let plain = world.curl(&["http://allowed.test/"]);
    assert_eq!(
        (plain.outcome.code, plain.status, plain.body.as_str()),
        (0, 200, "allowed.test\n"),
        "{plain:?}"
    );
    let tunnel = world.curl(&["--proxytunnel", "http://allowed.test/"]);
    assert_eq!(
        (tunnel.status, tunnel.body.as_str()),
        (200, "allowed.test\n"),
        "{tunnel:?}"
    );
    assert_eq!(world.allowed.connections(), 2);
}

#[test]
fn denies_an_unlisted_host_with_the_deny_header_and_never_contacts_it() {
    let Some(world) = World::start() else { return };
    for args in [
        &["http://denied.test/"][..],
        &["--proxytunnel", "http://denied.test/"][..],
    ] {
        let denied = world.curl(args);
        assert_eq!(denied.status, 403, "{args:?}: {denied:?}");
        assert!(
            denied.deny_reason().is_some_and(|r| !r.is_empty()),
            "{denied:?}"
        );
    }
    assert_eq!(
        world.denied.connections(),
        0,
        "{:?}",
        world.denied.container().logs()
    );
}

#[test]
fn refuses_a_listed_host_on_an_unlisted_port() {
    let Some(world) = World::start() else { return };
    for args in [
        &["http://allowed.test:8000/"][..],
        &["--proxytunnel", "http://allowed.test:8000/"][..],
    ] {
        let refused = world.curl(args);
        assert_eq!(refused.status, 403, "{args:?}: {refused:?}");
        assert!(refused.deny_reason().is_some(), "{refused:?}");
    }
    assert_eq!(world.allowed.connections(), 0);
}

#[test]
fn serves_read_only_without_capabilities_as_non_root() {
    let Some(world) = World::start() else { return };
    assert_eq!(
        world.proxy.inspect("{{.HostConfig.ReadonlyRootfs}}"),
        "true"
    );
    let pid = world.proxy.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), format!("{UID} {UID} {UID} {UID}"));
    for caps in ["CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(caps), "0000000000000000", "{caps}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    let served = world.curl(&["http://allowed.test/"]);
    assert_eq!(served.status, 200, "{served:?}");
}

#[test]
fn agent_without_network_reaches_the_proxy_through_the_relay_from_the_shared_volumes() {
    let Some(world) = World::start() else { return };
    let codes = world.agent(&format!(
        "for url in http://allowed.test/ http://denied.test/; do \
           curl -s -o /dev/null -w '%{{http_code}} ' -x http://127.0.0.1:{PROXY_PORT} $url; \
           curl -s -o /dev/null -w '%{{http_code}} ' -p -x http://127.0.0.1:{PROXY_PORT} $url; \
         done; exit 7"
    ));
    // 000: curl reports no HTTP code for a CONNECT refused with 403.
    assert_eq!(
        (codes.code, codes.stdout.as_str()),
        (7, "200 200 403 000 "),
        "{codes:?}"
    );
    assert_eq!(world.allowed.connections(), 2);
    assert_eq!(world.denied.connections(), 0);
}

#[test]
fn becomes_healthy_and_reports_denied_destinations() {
    let Some(world) = World::start() else { return };
    wait_healthy(&world.proxy, Duration::from_secs(30));
    assert_eq!(world.curl(&["http://denied.test/"]).status, 403);
    let denied = world.proxy.exec(&[PROXY_BINARY, "denied"]);
    let report: DeniedReport = serde_json::from_str(&denied.stdout)
        .unwrap_or_else(|e| panic!("`denied` printed no report ({e}): {denied:?}"));
    assert!(
        report
            .destinations
            .iter()
            .any(|d| d.host == "denied.test" && d.port == 80),
        "{report:?}"
    );
}
