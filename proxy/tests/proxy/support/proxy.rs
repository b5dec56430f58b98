//! The proxy under test: [`ProxySpec`] builds one in this process (its names pinned to
//! addresses, its policy replaceable), [`Running`] runs the real binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandbox_policy::protocol::{self, ListenAddr};
use sandbox_policy::{DomainName, Host, Policy, PolicyOptions};
use sandbox_proxy::net::dial::{Dialer, OwnAddresses};
use sandbox_proxy::net::listen::Listener;
use sandbox_proxy::net::resolve::Resolver;
use sandbox_proxy::{Limits, PolicyStore, Server};
use tokio::sync::oneshot;

use super::{BIN, eventually_blocking};

/// How to build an in-process proxy.
pub struct ProxySpec {
    pub allowlist: String,
    pub pins: Vec<(&'static str, Vec<IpAddr>)>,
    pub options: PolicyOptions,
    pub limits: Limits,
}

/// A proxy running in this process on an ephemeral loopback port, until dropped.
pub struct TestProxy {
    pub addr: SocketAddr,
    store: PolicyStore,
    options: PolicyOptions,
    _stop: oneshot::Sender<()>,
}

impl ProxySpec {
    /// `allowlist` may say `{proxy_port}` for the port the proxy listens on.
    pub fn new(allowlist: &str) -> Self {
        ProxySpec {
            allowlist: allowlist.to_owned(),
            pins: Vec::new(),
            options: PolicyOptions::default(),
            limits: Limits {
                connect_timeout: Duration::from_secs(2),
                ..Limits::default()
            },
        }
    }

    /// Answers `name` with `addresses` (the only names the proxy can resolve).
    pub fn pin(mut self, name: &'static str, addresses: &[&str]) -> Self {
        self.pins
            .push((name, addresses.iter().map(|a| a.parse().unwrap()).collect()));
        self
    }

    pub fn allow_private(mut self) -> Self {
        self.options.allow_private = true;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub async fn start(self) -> TestProxy {
        let listener = Listener::bind(&ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_tcp_addr().unwrap();
        let allowlist = self
            .allowlist
            .replace("{proxy_port}", &addr.port().to_string());
        let policy = Policy::from_text("test-allowlist", &allowlist, &self.options, 1).unwrap();
        let pins: HashMap<DomainName, Vec<IpAddr>> = self
            .pins
            .into_iter()
            .map(|(name, addresses)| match Host::parse(name).unwrap() {
                Host::Name(name) => (name, addresses),
                Host::Ip(_) => panic!("pin an IP?"),
            })
            .collect();
        let dialer = Dialer::new(
            Resolver::pinned_only(pins),
            self.limits.connect_timeout,
            OwnAddresses::new(vec![addr]),
        );
        let store = PolicyStore::new(policy);
        let server = Server::new(store.clone(), dialer, self.limits, Default::default());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(vec![listener], async move {
            let _ = stopped.await;
        }));
        TestProxy {
            addr,
            store,
            options: self.options,
            _stop: stop,
        }
    }
}

impl TestProxy {
    /// Puts a policy compiled from `allowlist` in force, as a reload does.
    pub fn replace(&self, allowlist: &str) {
        let generation = self.store.current().generation() + 1;
        let policy = Policy::from_text("test-allowlist", allowlist, &self.options, generation);
        self.store.replace(policy.unwrap());
    }
}

/// The binary serving on ephemeral loopback ports, logging JSON; killed when dropped.
pub struct Running {
    pub child: Child,
    pub address: String,
    pub admin: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Collects the lines `stream` yields, in a thread, into the returned list.
fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    lines
}

impl Running {
    /// Starts it with `allowlist` and `extra` arguments; returns once it is ready.
    pub fn start(allowlist: &Path, extra: &[&str]) -> Running {
        Running::start_with_stdin(allowlist, extra, "")
    }

    /// [`Running::start`], with `stdin` written to its standard input, then closed.
    pub fn start_with_stdin(allowlist: &Path, extra: &[&str], stdin: &str) -> Running {
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        let stderr = collect_lines(child.stderr.take().unwrap());
        let stdout = collect_lines(child.stdout.take().unwrap());
        let mut running = Running {
            child,
            address: String::new(),
            admin: String::new(),
            stdout,
            stderr,
        };
        eventually_blocking("the ready line", || {
            let stdout = running.stdout.lock().unwrap();
            stdout
                .iter()
                .any(|line| line == protocol::READY_LINE)
                .then_some(())
        });
        // The stderr reader may lag behind stdout.
        running.address = running.logged_address("listening");
        running.admin = running.logged_address("management listening");
        running
    }

    /// Everything it printed so far, stdout then stderr.
    pub fn output(&self) -> String {
        let stdout = self.stdout.lock().unwrap().join("\n");
        let stderr = self.stderr.lock().unwrap().join("\n");
        format!("{stdout}\n{stderr}")
    }

    /// The run's CA certificate, as the launcher reads it from stdout.
    pub fn ca_pem(&self) -> String {
        let stdout = self.stdout.lock().unwrap().join("\n");
        protocol::ca_from_output(&format!("{stdout}\n")).expect("a CA before the ready line")
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

    /// The log lines, once `complete` says all expected ones are there (a tunnel's
    /// decision line is written when the tunnel ends, just after the client sees it end).
    pub fn events_once(
        &self,
        what: &str,
        complete: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        eventually_blocking(what, || {
            let events = self.events();
            complete(&events).then_some(events)
        })
    }

    /// The decision lines, once `complete` says all expected ones are there.
    pub fn decisions_once(
        &self,
        complete: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        eventually_blocking("the expected decision lines", || {
            let decisions: Vec<serde_json::Value> = self
                .events()
                .into_iter()
                .filter(|event| event["message"] == "decision")
                .collect();
            complete(&decisions).then_some(decisions)
        })
    }

    /// The address in the first log line with `message`.
    fn logged_address(&self, message: &str) -> String {
        eventually_blocking(&format!("a {message:?} line"), || {
            self.events()
                .into_iter()
                .find(|event| event["message"] == message)
                .and_then(|event| event["address"].as_str().map(str::to_owned))
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
