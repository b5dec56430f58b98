//! The browser hand-off, tried from inside the sandbox as the user: what opens on the
//! host (an opener stub records it: `$BROWSER` is what the opener crate runs on Linux)
//! and what is refused and printed; the channel tampered with from inside and left
//! behind in bad shapes, followed by runs and `gc` that end promptly; and an OAuth-style
//! login whose callback on the host's loopback reaches a listener inside the sandbox.

use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use agent_sandbox_e2e::{as_user, proxy_image};

use crate::support::{Launcher, USER, field, run, stdout};

/// No launcher options.
const NO_OPTIONS: &[&str] = &[];
/// A public address to hand off (never contacted: the opener is a stub).
const PUBLIC: &str = "93.184.215.14";

impl Launcher {
    /// An opener stub that appends each URL it is given to a file; returns the file.
    fn browser_stub(&self) -> (PathBuf, PathBuf) {
        let opened = self.scope.dir().join("opened.txt");
        let stub = self.scope.file(
            "stub-browser.sh",
            &format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\n", opened.display()),
        );
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        (stub, opened)
    }

    /// `shell_as_user` running `script` (bash) with the image's real shim installed as
    /// `xdg-open` in front of PATH, and the host's opener a stub; returns the command
    /// and the file the stub records to.
    fn handing_off(&self, options: &[String], script: &str) -> (Command, PathBuf) {
        let shim = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/agent/browser-open.sh"),
        )
        .unwrap();
        let setup = format!(
            "mkdir -p /tmp/bin && cat > /tmp/bin/xdg-open <<'SHIM'\n{shim}SHIM\n\
             chmod +x /tmp/bin/xdg-open && export PATH=/tmp/bin:$PATH\n{script}"
        );
        let (stub, opened) = self.browser_stub();
        let mut command = self.shell_as_user(options, &["bash", "-c", &setup]);
        command.env("BROWSER", &stub);
        (command, opened)
    }
}

/// The lines the opener stub was given.
fn opened(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Its standard error, as text.
fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails unless a line of `stderr` names `url` and `why`.
fn assert_refused(stderr: &str, url: &str, why: &str) {
    assert!(
        stderr
            .lines()
            .any(|line| line.contains(url) && line.contains(why)),
        "refusal of {url} ({why}) not printed:\n{stderr}"
    );
}

/// What the launcher itself printed (the shim inside echoes what it hands over).
fn launcher_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| line.starts_with("agent-sandbox:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `command`, failing the test when it takes longer than `limit` (a hang).
fn run_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{:?} still ran after {limit:?}; stderr:\n{}",
                command.get_args().collect::<Vec<_>>(),
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    eprintln!(
        "--- {:?} exited {:?}\n--- stdout:\n{}--- stderr:\n{}",
        command.get_args().collect::<Vec<_>>(),
        output.status.code(),
        stdout(&output),
        stderr(&output)
    );
    output
}

#[test]
fn without_the_proxy_only_public_http_urls_open_and_the_rest_is_printed() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let oversized = format!("https://{PUBLIC}/{}", "x".repeat(10_000));
    let refused = [
        "file:///etc/passwd",
        "javascript:alert(1)",
        &oversized,
        "http://127.0.0.1:8080/admin",
        "http://localhost:3000/",
        "http://0.0.0.0:3000/",
        "http://2130706433/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
    ];
    let allowed = format!("https://{PUBLIC}/oauth?state=1");
    let urls: Vec<String> = std::iter::once(allowed.clone())
        .chain(refused.iter().map(|url| (*url).to_owned()))
        .map(|url| format!("'{url}'"))
        .collect();
    let script = format!(
        "for url in {}; do xdg-open \"$url\"; done; sleep 1",
        urls.join(" ")
    );
    let (command, opened_file) = launcher.handing_off(&[], &script);
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(opened(&opened_file), [allowed]);
    let stderr = stderr(&output);
    for (url, why) in [
        ("file:///etc/passwd", "not an http or https URL"),
        ("javascript:alert(1)", "not an http or https URL"),
        ("http://127.0.0.1:8080/admin", "loopback address"),
        ("http://localhost:3000/", "loopback address"),
        ("http://0.0.0.0:3000/", "unspecified address"),
        ("http://2130706433/", "loopback address"),
        ("http://192.168.1.1/", "private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "link-local address",
        ),
        ("http://100.64.0.1/", "shared-cgnat address"),
    ] {
        assert_refused(&stderr, url, why);
    }
    // The oversized line is refused without being printed.
    assert!(stderr.contains("longer than 4096 bytes"), "{stderr}");
    assert!(
        !launcher_lines(&stderr).contains(&"x".repeat(200)),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("agent-sandbox: refused to open").count(),
        refused.len(),
        "{stderr}"
    );
}

#[test]
fn in_proxy_mode_a_url_opens_only_when_the_policy_in_force_allows_it() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // The host's loopback, even when listed, is not the sandbox's to open.
    let options = launcher.proxy_options(&format!("{PUBLIC}\n127.0.0.1\n"), None);
    let allowed = format!("https://{PUBLIC}/login");
    let script = format!(
        "for url in '{allowed}' 'https://8.8.8.8/?k=secret' 'https://{PUBLIC}:8443/' \
         'http://127.0.0.1/'; do xdg-open \"$url\"; done; sleep 1"
    );
    let (command, opened_file) = launcher.handing_off(&options, &script);
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(opened(&opened_file), [allowed]);
    let stderr = stderr(&output);
    for (url, why) in [
        (
            "https://8.8.8.8/?k=secret",
            "8.8.8.8:443 is not in the allowlist",
        ),
        (
            &format!("https://{PUBLIC}:8443/"),
            "port 8443 is not allowed",
        ),
        ("http://127.0.0.1/", "loopback address"),
    ] {
        assert_refused(&stderr, url, why);
    }
}

#[test]
fn a_flood_of_urls_opens_a_few_and_prints_the_rest() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let script = format!(
        "for i in $(seq 1 12); do xdg-open \"https://{PUBLIC}/flood/$i\"; done; sleep 1; \
         head -c 3000000 /dev/zero | tr '\\0' a >> \"$AGENT_SANDBOX_BROWSER\"; sleep 1"
    );
    let (command, opened_file) = launcher.handing_off(&[], &script);
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    let opened = opened(&opened_file);
    assert_eq!(opened.len(), 3, "{opened:?}");
    let stderr = stderr(&output);
    assert!(
        stderr.contains("more than 3 URLs in a minute"),
        "rate limit not printed:\n{stderr}"
    );
    assert!(
        !launcher_lines(&stderr).contains(&"a".repeat(200)),
        "the flood was printed:\n{stderr}"
    );
}

/// Makes the directory `name` in `parent` a channel left behind in a bad shape by
/// `shape`, owned by [`USER`] (as the channels of their launcher are).
fn stale_channel(parent: &Path, name: &str, shape: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let owner = dir.join("owner");
    match shape {
        "fifo" => {
            rustix::fs::mkfifoat(rustix::fs::CWD, &owner, rustix::fs::Mode::RUSR).unwrap();
        }
        "zero" => std::os::unix::fs::symlink("/dev/zero", &owner).unwrap(),
        _ => std::fs::write(&owner, "1\n1\nh\n").unwrap(),
    }
    for path in [dir.join("sub"), owner.clone(), dir.clone()] {
        std::os::unix::fs::lchown(&path, Some(USER), Some(USER)).unwrap();
    }
    if shape == "locked" {
        std::fs::set_permissions(dir.join("sub"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o300)).unwrap();
    }
    dir
}

#[test]
fn a_tampered_channel_hangs_nothing_and_nothing_of_it_is_left() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // From inside: everything but appending to the one file is refused; chmod of the
    // file itself only locks the agent out.
    let script = r#"
        f="$AGENT_SANDBOX_BROWSER"; d=$(dirname "$f")
        chmod 0300 "$d" 2>/dev/null && echo "chmod dir: done" || echo "chmod dir: refused"
        rm -f "$f" 2>/dev/null && echo "remove: done" || echo "remove: refused"
        (mv "$f" "$d/old" || ln -sf /dev/zero "$f") 2>/dev/null && echo "replace: done" || echo "replace: refused"
        mkfifo "$d/fifo" 2>/dev/null && echo "fifo: done" || echo "fifo: refused"
        touch "$d/owner" 2>/dev/null && echo "owner: done" || echo "owner: refused"
        chmod 0000 "$f" && echo "chmod file: done"
    "#;
    let (command, _) = launcher.handing_off(&[], script);
    let output = run_within(command, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for attempt in ["chmod dir:", "remove:", "replace:", "fifo:", "owner:"] {
        assert_eq!(field(&text, attempt), "refused", "{attempt}");
    }
    assert_eq!(field(&text, "chmod file:"), "done");
    let left: Vec<_> = std::fs::read_dir(&launcher.runtime).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Left behind in bad shapes (as an agent could with the directory mounted): a run
    // and `gc` end promptly and remove them all.
    let runtime = &launcher.runtime;
    for cleaner in ["run", "gc"] {
        let stale: Vec<PathBuf> = ["fifo", "zero", "locked"]
            .iter()
            .map(|shape| stale_channel(runtime, &format!("agent-sandbox-{shape}"), shape))
            .collect();
        let command = match cleaner {
            "run" => launcher.shell_as_user(NO_OPTIONS, &["true"]),
            _ => as_user(&launcher.launcher(&["gc"]), USER),
        };
        let output = run_within(command, Duration::from_secs(120));
        assert_eq!(output.status.code(), Some(0), "{cleaner}");
        for dir in &stale {
            assert!(
                std::fs::symlink_metadata(dir).is_err(),
                "{} left by {cleaner}",
                dir.display()
            );
        }
        let left: Vec<_> = std::fs::read_dir(runtime).unwrap().collect();
        assert!(left.is_empty(), "left behind by {cleaner}: {left:?}");
    }
}

/// A free port on the host's loopback (free when this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asks `http://localhost:PORT/cb?code=...` with curl until the answer comes (the
/// launcher listens once the hand-off is read, the listener inside once it started);
/// returns the body, or what the last try said.
fn callback(port: u16, limit: Duration) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        let output = Command::new("curl")
            .args(["-sS", "-m", "10"])
            .arg(format!("http://127.0.0.1:{port}/cb?code=the-code&state=s"))
            .output()
            .unwrap();
        if output.status.success() && !output.stdout.is_empty() {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        last = String::from_utf8_lossy(&output.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(300));
    }
    format!("no answer after {limit:?}: {last}")
}

/// The login flow inside: a one-request HTTP server on the container's 127.0.0.1:PORT
/// (as pi's providers listen), the authorization URL handed off with its
/// `redirect_uri` percent-encoded, then what the server was asked.
fn login_script(port: u16, authorize: &str) -> String {
    format!(
        r#"
        python3 - <<'PY' &
import http.server
class Login(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"login done, you can close this tab"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        open("/tmp/served", "w").write(self.path)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), Login).handle_request()
PY
        server=$!
        sleep 0.5
        xdg-open "{authorize}?client_id=x&redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2Fcb&state=s"
        wait $server
        echo "served: $(cat /tmp/served)"
        "#
    )
}

impl Launcher {
    /// A login inside a sandbox run with `options` (see [`login_script`]), answered by
    /// curl on the host's loopback: what curl got, how the run ended, what was opened.
    fn login(
        &self,
        options: &[String],
        port: u16,
        authorize: &str,
    ) -> (String, Output, Vec<String>) {
        let (mut command, opened_file) = self.handing_off(options, &login_script(port, authorize));
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let answer = callback(port, Duration::from_secs(90));
        let output = child.wait_with_output().unwrap();
        eprintln!(
            "--- stdout:\n{}--- stderr:\n{}",
            stdout(&output),
            stderr(&output)
        );
        (answer, output, opened(&opened_file))
    }
}

#[test]
fn an_oauth_callback_on_the_host_loopback_reaches_the_login_inside_a_proxy_sandbox() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let port = free_port();
    let options = launcher.proxy_options(&format!("{PUBLIC}\n"), None);
    let authorize = format!("https://{PUBLIC}/oauth/authorize");
    let (answer, output, opened) = launcher.login(&options, port, &authorize);
    assert_eq!(answer, "login done, you can close this tab");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        field(&stdout(&output), "served:"),
        "/cb?code=the-code&state=s"
    );
    assert!(
        opened.len() == 1 && opened[0].starts_with(&authorize),
        "{opened:?}"
    );
    let announced = format!("localhost:{port} on this machine now leads into the sandbox");
    assert!(stderr(&output).contains(&announced));
    // The run is over: the port is the host's again.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn an_oauth_callback_reaches_the_login_without_the_proxy_too() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let port = free_port();
    // The sidecar image is here (its binary carries the callback); no proxy runs.
    let options = vec!["--proxy-image".to_owned(), proxy_image().to_owned()];
    let authorize = format!("https://{PUBLIC}/oauth/authorize");
    let (answer, output, _) = launcher.login(&options, port, &authorize);
    assert_eq!(answer, "login done, you can close this tab");
    assert_eq!(
        field(&stdout(&output), "served:"),
        "/cb?code=the-code&state=s"
    );
}

#[test]
fn a_callback_port_in_use_on_the_host_is_said_and_nothing_hangs() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let script = format!(
        "xdg-open 'https://{PUBLIC}/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcb'; \
         sleep 1"
    );
    let (command, opened_file) = launcher.handing_off(&[], &script);
    let output = run_within(command, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(opened(&opened_file).len(), 1);
    let stderr = stderr(&output);
    assert!(
        stderr.contains(&format!("port {port} is already in use on this machine")),
        "{stderr}"
    );
    // Still the other program's.
    taken.set_nonblocking(true).unwrap();
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = probe.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = probe.read(&mut [0; 1]);
    assert!(taken.accept().is_ok());
}
