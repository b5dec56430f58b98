//! Sandboxed runs: the hardening seen from inside the agent container, proxy mode
//! against test upstreams (allowed, refused and never contacted; no direct TCP, no DNS,
//! no host services), and teardown on every way out (normal exit, failing agent,
//! SIGTERM, SIGINT; SIGKILL leftovers removed by `gc` and by the next run).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::process::Stdio;

use agent_sandbox::ExitStatus;
use agent_sandbox_e2e::{Upstream, debian_image, docker_ok};

use crate::support::{
    Launcher, USER, field, launcher_binary, launcher_objects, run, stdout, wait_for_agent,
};

/// No launcher options.
const NO_OPTIONS: &[&str] = &[];

impl Launcher {
    /// Runs `sleep 60` in the sandbox, sends the launcher signal `name` once the agent
    /// container runs, and returns how the launcher ended.
    fn signalled(&self, options: &[String], name: &str) -> std::process::ExitStatus {
        let mut child = self
            .shell(options, &["sleep", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_agent(&self.scope);
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap()
    }

    /// How many browser hand-off channels and allowlist copies exist.
    fn channels(&self) -> usize {
        std::fs::read_dir(&self.runtime).unwrap().count()
    }
}

#[test]
fn the_agent_container_is_hardened_and_sees_only_what_it_should() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let scope = &launcher.scope;
    let probe = r#"
        grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs):' /proc/self/status
        echo "uid: $(id -u):$(id -g)"
        echo "pid1: $(cat /proc/1/comm)"
        echo "cwd: $(pwd)"
        test -e /var/run/docker.sock && echo "socket: present" || echo "socket: absent"
        test -d /dev/shm && echo "shm: present" || echo "shm: absent"
        echo "key: ${OPENAI_API_KEY:-unset}"
        echo "unlisted: ${AGENT_SANDBOX_TEST_UNLISTED:-unset}"
        echo "telemetry: ${PI_TELEMETRY:-unset}"
        touch written-inside && echo "write: ok"
    "#;
    let mut command = launcher.shell_as_user(NO_OPTIONS, &["bash", "-c", probe]);
    command
        .env("OPENAI_API_KEY", "sk-test-forwarded")
        .env("AGENT_SANDBOX_TEST_UNLISTED", "1");
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(field(&text, "CapEff:"), "0000000000000000");
    assert_eq!(field(&text, "CapBnd:"), "0000000000000000");
    assert_eq!(field(&text, "CapPrm:"), "0000000000000000");
    assert_eq!(field(&text, "NoNewPrivs:"), "1");
    assert_eq!(field(&text, "uid:"), format!("{USER}:{USER}"));
    assert_eq!(field(&text, "pid1:"), "docker-init");
    assert_eq!(field(&text, "cwd:"), launcher.work.display().to_string());
    assert_eq!(field(&text, "socket:"), "absent");
    assert_eq!(field(&text, "shm:"), "present");
    assert_eq!(field(&text, "key:"), "sk-test-forwarded");
    assert_eq!(field(&text, "unlisted:"), "unset");
    assert_eq!(field(&text, "telemetry:"), "false");
    assert_eq!(field(&text, "write:"), "ok");
    let written = std::fs::metadata(launcher.work.join("written-inside")).unwrap();
    assert_eq!((written.uid(), written.gid()), (USER, USER));
    // pi's profile mounts: missing sources are created by (and owned by) the user.
    let created = std::fs::metadata(launcher.home.join(".pi/agent")).unwrap();
    assert_eq!(created.uid(), USER);
    assert!(launcher_objects(scope).is_empty());
}

#[test]
fn exit_codes_pass_through() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    for (command, code) in [
        (&["true"][..], ExitStatus::SUCCESS),
        (&["sh", "-c", "exit 3"], ExitStatus(3)),
        (&["no-such-command"], ExitStatus::NOT_FOUND),
        (&["/etc/hostname"], ExitStatus::CANNOT_EXECUTE),
    ] {
        assert_eq!(
            run(launcher.shell(NO_OPTIONS, command)).status.code(),
            Some(i32::from(code.0)),
            "{command:?}"
        );
    }
    let refused = run(launcher.shell(
        &["--image", "agent-sandbox-test/no-such-image:0"],
        &["true"],
    ));
    let failed = i32::from(ExitStatus::LAUNCHER_FAILED.0);
    assert_eq!(refused.status.code(), Some(failed));
    assert!(launcher_objects(scope).is_empty());
}

#[test]
fn a_missing_allowlist_fails_before_anything_starts() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    let output = run(launcher.shell(
        &["--proxy", "--allowed-domains", "/nonexistent/allow.txt"],
        &["true"],
    ));
    assert_eq!(output.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/allow.txt"));
    assert!(launcher_objects(scope).is_empty());
}

#[test]
fn proxy_mode_reaches_allowed_upstreams_only_and_nothing_else() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    let egress = scope.network("egress", &[]);
    let allowed = Upstream::start(scope, &egress, "allowed.test", &[80]);
    let denied = Upstream::start(scope, &egress, "denied.test", &[80]);
    let upstream_ip = allowed.container().ip(&egress);
    let host_service = TcpListener::bind("0.0.0.0:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    let gateway = docker_ok([
        "network",
        "inspect",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    let probe = format!(
        r#"
        echo "allowed: $(curl -s -m 10 http://allowed.test/)"
        echo "denied: $(curl -s -m 10 -o /dev/null -w '%{{http_code}}' http://denied.test/)"
        echo "denied-tls: $(curl -s -m 10 -o /dev/null -w '%{{http_code}}' https://denied.test/ || true)"
        timeout 3 bash -c 'echo > /dev/tcp/{upstream_ip}/80' 2>/dev/null && echo "direct: open" || echo "direct: closed"
        timeout 3 bash -c 'echo > /dev/tcp/{gateway}/{host_port}' 2>/dev/null && echo "host: open" || echo "host: closed"
        getent hosts allowed.test >/dev/null && echo "dns: resolves" || echo "dns: fails"
        echo "interfaces: $(ip -o link | grep -vc ': lo:')"
        "#
    );
    let options = launcher.proxy_options("allowed.test\n", Some(&egress));
    let output = run(launcher.shell(&options, &["bash", "-c", &probe]));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(field(&text, "allowed:"), allowed.body().trim());
    assert_eq!(field(&text, "denied:"), "403");
    assert_ne!(field(&text, "denied-tls:"), "200");
    assert_eq!(field(&text, "direct:"), "closed");
    assert_eq!(field(&text, "host:"), "closed");
    assert_eq!(field(&text, "dns:"), "fails");
    assert_eq!(field(&text, "interfaces:"), "0");
    assert_eq!(
        denied.connections(),
        0,
        "the refused upstream was contacted"
    );
    assert!(
        host_service.accept().is_err(),
        "the host service was contacted"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("denied.test:80"),
        "no blocked summary:\n{stderr}"
    );
    assert!(launcher_objects(scope).is_empty());
    // The user's egress network is theirs: it stays.
    docker_ok(["network", "inspect", &egress]);
}

#[test]
fn nothing_is_left_after_normal_exit_failure_sigterm_and_sigint() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    let options = launcher.proxy_options("allowed.test\n", None);
    for (command, code) in [(&["true"][..], 0), (&["sh", "-c", "exit 4"], 4)] {
        assert_eq!(
            run(launcher.shell(&options, command)).status.code(),
            Some(code)
        );
        assert_eq!(
            launcher_objects(scope),
            Vec::<String>::new(),
            "after {command:?}"
        );
    }
    for (name, code) in [("TERM", 143), ("INT", 130)] {
        let status = launcher.signalled(&options, name);
        assert_eq!(status.code(), Some(code), "after SIG{name}");
        assert_eq!(
            launcher_objects(scope),
            Vec::<String>::new(),
            "after SIG{name}"
        );
        assert_eq!(
            launcher.channels(),
            0,
            "browser channel left after SIG{name}"
        );
    }
}

#[test]
fn sigkill_leftovers_are_removed_by_gc_and_by_the_next_run() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    let options = launcher.proxy_options("allowed.test\n", None);
    for cleaner in ["gc", "next run"] {
        launcher.signalled(&options, "KILL");
        let left = launcher_objects(scope);
        // Two containers, the egress network and two volumes.
        assert_eq!(left.len(), 5, "leftovers after SIGKILL: {left:?}");
        assert_eq!(
            launcher.channels(),
            2,
            "no browser channel and allowlist copy left after SIGKILL"
        );
        let cleaned = match cleaner {
            "gc" => run(launcher.launcher(&["gc"])),
            _ => run(launcher.shell(NO_OPTIONS, &["true"])),
        };
        assert_eq!(cleaned.status.code(), Some(0));
        assert_eq!(
            launcher_objects(scope),
            Vec::<String>::new(),
            "after {cleaner}"
        );
        assert_eq!(
            launcher.channels(),
            0,
            "browser channels left after {cleaner}"
        );
    }
}

#[test]
fn piped_stdin_reaches_the_command_and_is_closed_at_its_end() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let mut child = launcher
        .shell(NO_OPTIONS, &["sh", "-c", "wc -l; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output).trim(), "3");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .any(|line| line == "err")
    );
}

#[test]
fn invoked_as_pi_it_runs_the_pi_agent_with_unknown_arguments_passed_on() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let scope = &launcher.scope;
    // A `pi` that prints its arguments, declared as the pi profile in the settings file
    // (which wins over the built-in profile): the test image has no real pi.
    let fake = launcher.work.join("fake-pi");
    std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let settings = launcher.home.join(".config/agent-sandbox");
    std::fs::create_dir_all(&settings).unwrap();
    let profile = format!(
        "[agents.pi]\ncommand = [\"{}\"]\nhome = \"/tmp\"\n",
        fake.display()
    );
    std::fs::write(settings.join("config.toml"), profile).unwrap();
    let pi = launcher.home.join("pi");
    std::os::unix::fs::symlink(launcher_binary(), &pi).unwrap();
    let pi_command = |args: &[&str]| {
        let mut command = launcher.command(&pi);
        command
            .args(["--image", debian_image()])
            .args(scope.label_args())
            .args(args);
        command
    };
    let output = run(pi_command(&[
        "--model", "m1", "-c", "--", "--help", "--proxy",
    ]));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "--model\nm1\n-c\n--help\n--proxy\n");
    let unknown_lang = run(pi_command(&["--lang", "cobol"]));
    assert_eq!(unknown_lang.status.code(), Some(125));
    assert!(launcher_objects(scope).is_empty());
}
