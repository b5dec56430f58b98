//! A test upstream: an HTTP server in a container of the Debian test image, reachable
//! under a DNS alias on a network, which answers every GET with 200 and its alias, and
//! records every TCP connection it accepts, so tests can prove that a denied request
//! never reached it.

use std::time::Duration;

use crate::debian::debian_image;
use crate::scope::{Container, Scope};
use crate::wait::wait_log;

/// The server: one thread per port, each connection logged (`connection <peer>`)
/// before any byte is read.
const SERVER: &str = r#"
import http.server, sys, threading
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (sys.argv[1] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        print("request", self.requestline, flush=True)
class Server(http.server.ThreadingHTTPServer):
    def verify_request(self, request, client_address):
        print("connection", client_address[0], flush=True)
        return True
servers = [Server(("", int(port)), Handler) for port in sys.argv[2:]]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// A running test upstream; see the module documentation.
#[derive(Debug)]
pub struct Upstream {
    container: Container,
    alias: String,
}

impl Upstream {
    /// Starts an upstream on `network`, reachable as `alias`, listening on `ports`,
    /// and waits until it listens.
    pub fn start(scope: &Scope, network: &str, alias: &str, ports: &[u16]) -> Self {
        let mut cmd = vec![
            "python3".to_owned(),
            "-c".to_owned(),
            SERVER.to_owned(),
            alias.to_owned(),
        ];
        cmd.extend(ports.iter().map(u16::to_string));
        let container = scope
            .container(debian_image(), &format!("upstream-{alias}"))
            .network(network)
            .alias(alias)
            .cmd(cmd)
            .start();
        wait_log(&container, "ready", Duration::from_secs(30));
        Self {
            container,
            alias: alias.to_owned(),
        }
    }

    /// The body every GET gets: the alias and a newline.
    pub fn body(&self) -> String {
        format!("{}\n", self.alias)
    }

    /// How many TCP connections the upstream has accepted so far.
    pub fn connections(&self) -> usize {
        self.container
            .logs()
            .stdout
            .lines()
            .filter(|line| line.starts_with("connection "))
            .count()
    }

    /// The upstream's container.
    pub fn container(&self) -> &Container {
        &self.container
    }
}
