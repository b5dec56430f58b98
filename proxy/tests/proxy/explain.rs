//! The real binary's `explain`, and lint warnings from `check`, `explain` and the server.

use crate::support::proxy::Running;
use crate::support::{Scratch, run};

#[test]
fn explain_walks_the_server_path_and_exits_by_verdict() {
    let scratch = Scratch::new();
    let file = scratch.file(
        "allow.txt",
        "*.corp.test\nhost.docker.internal:8080\n10.1.2.3:22\n",
    );
    let path = file.to_str().unwrap();
    let explain = |targets: &[&str]| {
        let mut args = vec![
            "explain",
            "--allowlist",
            path,
            "--resolve",
            "db.corp.test=10.0.0.3",
            "--resolve",
            "web.corp.test=93.184.216.34",
            "--resolve",
            "host.docker.internal=172.17.0.1",
        ];
        args.extend_from_slice(targets);
        run(&args)
    };
    let (code, stdout, stderr) =
        explain(&["web.corp.test", "host.docker.internal:8080", "10.1.2.3:22"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("web.corp.test:443  allowed"), "{stdout}");
    assert!(
        stdout.contains("\"*.corp.test\" (line 1, wildcard)"),
        "{stdout}"
    );
    assert!(stdout.contains("address  93.184.216.34 public"), "{stdout}");
    assert!(stdout.contains("172.17.0.1 private (allowed: exact entries may reach it)"));
    assert!(stdout.contains("10.1.2.3:22  allowed"), "{stdout}");

    let (code, stdout, _) = explain(&["web.corp.test", "db.corp.test:80", "evil.test"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("db.corp.test:80  denied (private-address)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("address  10.0.0.3 private (refused)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("evil.test:443  denied (not-allowlisted)"),
        "{stdout}"
    );

    let bad = scratch.file("bad.txt", "*.com\n");
    let (code, _, stderr) = run(&["explain", "--allowlist", bad.to_str().unwrap(), "a.com"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.txt:1:"), "{stderr}");
}

#[test]
fn check_and_explain_print_lint_warnings_without_failing() {
    let scratch = Scratch::new();
    let file = scratch.file(
        "allow.txt",
        "*.github.io\n*.github.com\napi.github.com\nexample.com\nexample.com\n93.184.216.34\n",
    );
    let path = file.to_str().unwrap();
    for command in ["check", "explain"] {
        // An IP literal: explain resolves names, and tests never ask real DNS.
        let (code, _, stderr) = run(&[command, "--allowlist", path, "93.184.216.34"]);
        assert_eq!(code, 0, "{command}: {stderr}");
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("sandbox-proxy: warning: "))
            .collect();
        assert_eq!(warnings.len(), 3, "{command}: {stderr}");
        assert!(warnings[0].contains(&format!("{path}:1:1: '*.github.io' covers github.io")));
        assert!(warnings[1].contains(&format!("{path}:3:1: 'api.github.com' is already allowed")));
        assert!(warnings[2].contains(&format!("{path}:5:1: 'example.com' duplicates line 4")));
    }
}

#[test]
fn the_server_logs_lint_findings_when_it_loads_a_policy() {
    let scratch = Scratch::new();
    let file = scratch.file("allow.txt", "*.herokuapp.com\na.test\na.test\n");
    let proxy = Running::start(&file, &[]);
    let is_lint = |event: &serde_json::Value| event["level"] == "WARN" && event["lint"].is_string();
    let events = proxy.events_once("two lint lines", |events| {
        events.iter().filter(|event| is_lint(event)).count() >= 2
    });
    let lints: Vec<&serde_json::Value> = events.iter().filter(|event| is_lint(event)).collect();
    assert_eq!(lints.len(), 2, "lint lines: {lints:?}");
    assert_eq!(lints[0]["lint"], "public-suffix-wildcard");
    assert_eq!(lints[0]["line"], 1);
    assert_eq!(lints[1]["lint"], "duplicate");
    assert_eq!(lints[1]["line"], 3);
}
