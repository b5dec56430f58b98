//! A mock OpenAI-compatible model server with TLS (`tests/fixtures/model_server.py`,
//! python3): every `POST .../chat/completions` gets a streamed chat completion whose
//! text is a marker unique to the server, and every connection and request is
//! recorded, so a test can prove the server was (or was never) contacted.
//!
//! It runs either in a container of the Debian test image under a DNS alias on a
//! network (what a sandboxed agent reaches through the proxy), or as a process on the
//! host's loopback (pi without the sandbox, for the start-up measurement).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::debian::debian_image;
use crate::scope::{Container, Scope};
use crate::test_ca::{TestCa, test_ca};
use crate::wait::wait_log;

/// The server's script.
const SCRIPT: &str = include_str!("../fixtures/model_server.py");

/// Where the certificate and key are mounted in the container.
const CERT_DIR: &str = "/etc/model-server";

/// A mock model server in a container; see the module documentation.
#[derive(Debug)]
pub struct ModelServer {
    container: Container,
    name: String,
    marker: String,
}

impl ModelServer {
    /// Starts the server on `network` as `name` (which its certificate, from the test
    /// CA, is issued for), serving HTTPS on port 443, and waits until it listens.
    pub fn start(scope: &Scope, network: &str, name: &str) -> Self {
        Self::start_with_ca(scope, network, name, test_ca())
    }

    /// [`ModelServer::start`] with a certificate from `ca`.
    pub fn start_with_ca(scope: &Scope, network: &str, name: &str, ca: &TestCa) -> Self {
        let marker = format!("{}-answers-{}", name.replace('.', "-"), scope.id());
        let leaf = ca.issue(&[name]);
        let cert = scope.file(&format!("{name}.crt"), &leaf.cert_pem);
        let key = scope.file(&format!("{name}.key"), &leaf.key_pem);
        let container = scope
            .container(debian_image(), &format!("model-{name}"))
            .network(network)
            .alias(name)
            .args([
                "--volume".to_owned(),
                format!("{}:{CERT_DIR}/cert.pem:ro", cert.display()),
                "--volume".to_owned(),
                format!("{}:{CERT_DIR}/key.pem:ro", key.display()),
            ])
            .cmd(["python3", "-c", SCRIPT, marker.as_str(), "443"])
            .cmd([
                format!("{CERT_DIR}/cert.pem"),
                format!("{CERT_DIR}/key.pem"),
            ])
            .start();
        wait_log(&container, "ready", Duration::from_secs(30));
        Self {
            container,
            name: name.to_owned(),
            marker,
        }
    }

    /// The text of every answer.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The OpenAI-compatible base URL pi is given (`https://NAME/v1`).
    pub fn base_url(&self) -> String {
        format!("https://{}/v1", self.name)
    }

    /// What the server recorded so far.
    pub fn log(&self) -> Log {
        Log(self.container.logs().stdout)
    }
}

/// A mock model server running on the host's loopback, stopped when dropped.
#[derive(Debug)]
pub struct LocalModelServer {
    child: Child,
    port: u16,
    marker: String,
    log: Arc<Mutex<String>>,
}

impl LocalModelServer {
    /// Starts the server on 127.0.0.1 on a port the system picks, with a certificate
    /// for `localhost` from the test CA (`scope` holds the files), and waits until it
    /// listens.
    pub fn start(scope: &Scope) -> Self {
        let marker = format!("localhost-answers-{}", scope.id());
        let leaf = test_ca().issue(&["localhost"]);
        let cert = scope.file("localhost.crt", &leaf.cert_pem);
        let key = scope.file("localhost.key", &leaf.key_pem);
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, &marker, "0"])
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 for the mock model server: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout);
        let mut ready = String::new();
        let _ = lines.read_line(&mut ready);
        let port = ready
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the mock model server did not start: {ready:?}"));
        let log = Arc::new(Mutex::new(String::new()));
        collect(lines, Arc::clone(&log));
        Self {
            child,
            port,
            marker,
            log,
        }
    }

    /// The text of every answer.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The OpenAI-compatible base URL pi is given (`https://localhost:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}/v1", self.port)
    }

    /// What the server recorded so far.
    pub fn log(&self) -> Log {
        Log(self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }
}

impl Drop for LocalModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends the server's output to `log` from a thread, until the server exits.
fn collect(mut lines: BufReader<ChildStdout>, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&line);
            line.clear();
        }
    });
}

/// A mock model server's record of what reached it.
#[derive(Debug, Clone)]
pub struct Log(String);

impl Log {
    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.0
            .lines()
            .filter(|l| l.starts_with("connection "))
            .count()
    }

    /// The API keys requests carried (`-` for none), in order.
    pub fn keys(&self) -> Vec<&str> {
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix("key "))
            .collect()
    }

    /// How many requests it received for `path`.
    pub fn requests_for(&self, path: &str) -> usize {
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix("request "))
            .filter(|l| l.split_whitespace().nth(1) == Some(path))
            .count()
    }

    /// How many chat completions it answered.
    pub fn completions(&self) -> usize {
        self.0
            .lines()
            .filter(|l| l.starts_with("request POST ") && l.ends_with("/chat/completions"))
            .count()
    }
}

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_counts_connections_and_completions_only() {
        let log = Log("ready 443\n\
                       connection 172.18.0.3\n\
                       request POST /v1/chat/completions\n\
                       key sk-1\n\
                       connection 172.18.0.3\n\
                       request GET /v1/models\n\
                       request POST /v1/chat/completions/extra\n"
            .to_owned());
        assert_eq!(log.connections(), 2);
        assert_eq!(log.completions(), 1);
        assert_eq!(log.keys(), ["sk-1"]);
        assert_eq!(log.requests_for("/v1/models"), 1);
        assert_eq!(Log(String::new()).connections(), 0);
    }
}
