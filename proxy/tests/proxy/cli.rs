//! The real binary: exit codes, error reports, and real `curl` through it.

use rustix::process::Signal;

use crate::support::proxy::Running;
use crate::support::tls::tls_upstream;
use crate::support::upstream::HttpUpstream;
use crate::support::{Scratch, curl, run, send_signal, wait_exit};

#[tokio::test]
async fn curl_through_the_binary_http_https_and_denials_with_json_decision_logs() {
    let upstream = HttpUpstream::start().await;
    let (tls, pem, _) = tls_upstream("tls.test").await;
    let scratch = Scratch::new();
    let allowlist = scratch.file(
        "allow.txt",
        &format!("web.test:{}\n*.tls.test:{}\n", upstream.port(), tls.port()),
    );
    let ca = scratch.file("ca.pem", &pem);
    let proxy = Running::start(
        &allowlist,
        &[
            "--resolve",
            "web.test=127.0.0.1",
            "--resolve",
            "tls.test=127.0.0.1",
            "--allow-private",
        ],
    );
    let via = format!("http://{}", proxy.address);
    let code = |extra: Vec<String>| {
        let via = via.clone();
        async move {
            let mut args = vec![
                "-o".to_owned(),
                "/dev/null".to_owned(),
                "-w".to_owned(),
                "%{http_code}".to_owned(),
                "-x".to_owned(),
                via,
            ];
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args).await
        }
    };
    let web = format!("http://web.test:{}/", upstream.port());
    assert_eq!(code(vec![web.clone()]).await, "200");
    // Node-style clients tunnel plain-HTTP origins with CONNECT.
    assert_eq!(code(vec!["-p".into(), web.clone()]).await, "200");
    assert_eq!(
        code(vec![format!("http://evil.test:{}/", upstream.port())]).await,
        "403"
    );
    let https = format!("https://tls.test:{}/", tls.port());
    let body = curl(&["-x", &via, "--cacert", ca.to_str().unwrap(), &https]).await;
    assert_eq!(body, "hello over tls");

    let decisions = proxy.decisions_once(|all| {
        ["evil.test", "tls.test"]
            .iter()
            .all(|host| all.iter().any(|event| event["host"] == *host))
    });
    let denied = decisions
        .iter()
        .find(|event| event["host"] == "evil.test")
        .expect("a decision line for the denied host");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["reason"], "not-allowlisted");
    assert_eq!(denied["policy_sha256"].as_str().map(str::len), Some(64));
    let tunnel = decisions
        .iter()
        .find(|event| event["host"] == "tls.test")
        .expect("a decision line for the tunnel");
    assert_eq!(tunnel["decision"], "allow");
    assert_eq!(tunnel["entry"], format!("*.tls.test:{}", tls.port()));
    assert_eq!(tunnel["line"], 2);
    assert!(tunnel["bytes_down"].as_u64().unwrap() > 0);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", "a.test\n");
    let mut proxy = Running::start(&allowlist, &[]);
    send_signal(&proxy.child, Signal::TERM);
    let status = wait_exit(&mut proxy.child);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn an_invalid_allowlist_is_reported_whole_and_the_proxy_does_not_start() {
    let scratch = Scratch::new();
    let file = scratch.file(
        "allow.txt",
        "github.com\n*\nhttps://github.com/x\n*.com\nok.example\nbad:0\n",
    );
    let path = file.to_str().unwrap();
    let (code, _, stderr) = run(&["--allowlist", path, "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{stderr}");
    for line in [2, 3, 4, 6] {
        assert!(
            stderr.contains(&format!("{path}:{line}:")),
            "line {line} missing: {stderr}"
        );
    }
    assert!(stderr.contains("github.com"), "{stderr}");
    let (code, _, stderr) = run(&["check", "--allowlist", path, "github.com"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_missing_allowlist_is_a_clear_error() {
    let (code, _, stderr) = run(&["--allowlist", "/nonexistent/allow.txt"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/allow.txt"), "{stderr}");
}

#[test]
fn check_prints_a_line_per_target_and_exits_by_verdict() {
    let scratch = Scratch::new();
    let file = scratch.file("allow.txt", "# tools\n*.github.com\nexample.com:8443\n");
    let path = file.to_str().unwrap();
    let (code, stdout, _) = run(&[
        "check",
        "--allowlist",
        path,
        "api.github.com",
        "example.com:8443",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.lines().count(), 2);
    assert!(
        stdout.contains("line 2") && stdout.contains("line 3"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&[
        "check",
        "--allowlist",
        path,
        "github.com",
        "evil.com",
        "example.com",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("allowed"), "{stdout}");
    assert!(lines[1].starts_with("denied") && lines[1].contains("not in the allowlist"));
    assert!(lines[2].starts_with("denied") && lines[2].contains("port 443"));
}

#[test]
fn help_documents_examples_format_and_exit_codes() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "Examples:",
        "*.example.com",
        "Exit codes:",
        "--allowlist",
        "check",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from --help");
    }
    let (code, _, _) = run(&["--no-such-flag"]);
    assert_eq!(code, 64);
}

/// The README's first command: the proxy on the example allowlist starts without a
/// single lint warning, and the example allows what its comments say and no wider.
#[test]
fn the_example_allowlist_loads_cleanly_and_allows_only_what_it_says() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/allowed_domains.txt");
    let proxy = Running::start(&example, &[]);
    let loaded = proxy.events();
    assert!(
        loaded
            .iter()
            .any(|event| event["message"] == "policy loaded"),
        "{loaded:?}"
    );
    let warnings: Vec<_> = loaded
        .iter()
        .filter(|event| event["level"] != "INFO")
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let path = example.to_str().unwrap();
    let (code, stdout, stderr) = run(&[
        "check",
        "--allowlist",
        path,
        "github.com",
        "api.github.com",
        "raw.githubusercontent.com",
        "api.atlassian.com",
        "gist.github.com",
        "gist.githubusercontent.com",
        "attacker.atlassian.net",
        "host.docker.internal",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let verdicts: Vec<&str> = stdout
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        verdicts,
        [
            "allowed", "allowed", "allowed", "allowed", "denied", "denied", "denied", "denied"
        ],
        "{stdout}"
    );
}
