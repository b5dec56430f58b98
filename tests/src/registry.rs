//! A real image registry on loopback: Debian's `docker-registry` (the CNCF distribution
//! registry) on a free port of 127.0.0.1, its storage in a temporary directory, stopped
//! by its PID when dropped. The engine pulls from and pushes to registries on
//! 127.0.0.0/8 over plain HTTP without any daemon configuration.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::engine::skip;
use crate::wait::wait_tcp;

/// Where Debian's package installs the registry.
const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; see the module documentation.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    address: SocketAddr,
    _storage: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry and waits until it accepts connections, or returns `None` after
    /// a loud skip (a failure under CI) when `docker-registry` is not installed.
    pub fn start() -> Option<Self> {
        if !Path::new(BINARY).exists() {
            skip("docker-registry is not installed (apt-get install docker-registry)");
            return None;
        }
        let storage = tempfile::tempdir().unwrap();
        // A free port: bound and released just before the registry binds it.
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
        let registry = Self {
            child: Some(child),
            address,
            _storage: storage,
        };
        wait_tcp(address, Duration::from_secs(20));
        Some(registry)
    }

    /// `127.0.0.1:PORT`, the registry part of image names pushed to it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the registry: kills its process by PID and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
