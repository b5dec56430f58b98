//! The real binary: exit codes, error reports, and real `curl` through it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::{HttpUpstream, send_signal, wait_exit};
use crate::tls::tls_upstream;

pub const BIN: &str = env!("CARGO_BIN_EXE_sandbox-proxy");

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("sandbox-proxy-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary running as a server; killed when dropped.
pub struct Running {
    pub child: Child,
    pub address: String,
    pub admin: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(allowlist: &Path, extra: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .arg("--allowlist")
            .arg(allowlist)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let reader = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        assert_eq!(ready.trim_end(), sandbox_policy::protocol::READY_LINE);
        let address = wait_for_address(&stderr, "listening");
        let admin = wait_for_address(&stderr, "management listening");
        Running {
            child,
            address,
            admin,
            stderr,
        }
    }

    /// Every line the server has written to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Every JSON log line so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .collect()
    }

    /// The decision lines, once `complete` says all expected ones are there (at most 5 s:
    /// a tunnel's line is written when the tunnel ends, just after the client sees it end).
    pub fn decisions_once(
        &self,
        complete: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let decisions = self.decisions();
            if complete(&decisions) || Instant::now() >= deadline {
                return decisions;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn decisions(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|event| event["message"] == "decision")
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the first JSON log line with `message`; the stderr reader may lag
/// behind stdout, so wait for it.
fn wait_for_address(stderr: &Mutex<Vec<String>>, message: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|event| event["message"] == message)
            .and_then(|event| event["address"].as_str().map(str::to_owned));
        if let Some(address) = found {
            return address;
        }
        assert!(Instant::now() < deadline, "no {message:?} line");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub async fn curl(args: &[&str]) -> String {
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl is installed");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test]
async fn curl_through_the_binary_http_https_and_denials_with_json_decision_logs() {
    let upstream = HttpUpstream::start().await;
    let (tls, pem, _) = tls_upstream("tls.test").await;
    let scratch = Scratch::new("curl");
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
    let scratch = Scratch::new("sigterm");
    let allowlist = scratch.file("allow.txt", "a.test\n");
    let mut proxy = Running::start(&allowlist, &[]);
    send_signal(&proxy.child, Signal::SIGTERM);
    let status = wait_exit(&mut proxy.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

pub fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn an_invalid_allowlist_is_reported_whole_and_the_proxy_does_not_start() {
    let scratch = Scratch::new("invalid");
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
    let scratch = Scratch::new("check");
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
