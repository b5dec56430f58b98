//! The network without `--proxy`: a per-run bridge with unrestricted egress, from which
//! the host's loopback services and abstract Unix sockets are out of reach; `--network
//! host` as the explicit opt-in that reaches them, with a warning.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixListener};

use crate::support::{Launcher, field, run, stdout};

#[test]
fn without_proxy_the_host_loopback_is_out_of_reach_and_egress_works() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let launcher = launcher.owned_by_user();
    // A service on the host's loopback only, an abstract Unix socket (like an X
    // server's), and an upstream on all the host's addresses, reached through the
    // bridge's gateway: egress beyond the container.
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let loopback_port = loopback.local_addr().unwrap().port();
    let abstract_name = format!("agent-sandbox-test-{}", launcher.scope.id());
    let _abstract =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(&abstract_name).unwrap()).unwrap();
    let upstream = TcpListener::bind("0.0.0.0:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in upstream.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 8\r\n\r\nupstream");
        }
    });
    let host_services = format!(
        r#"
        timeout 3 bash -c 'echo > /dev/tcp/127.0.0.1/{loopback_port}' 2>/dev/null && echo "loopback: open" || echo "loopback: closed"
        python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect("\0{abstract_name}")' 2>/dev/null && echo "abstract: open" || echo "abstract: closed"
        "#
    );
    let egress = format!(
        r#"
        gateway=$(ip route | awk '/^default/ {{print $3}}')
        echo "egress: $(curl -s -m 10 http://$gateway:{upstream_port}/)"
        echo "interfaces: $(ip -o link | grep -vc ': lo:')"
        "#
    );
    let probe = format!("{host_services}{egress}");
    let output = run(launcher.shell_as_user(&[] as &[&str], &["bash", "-c", &probe]));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(field(&text, "loopback:"), "closed");
    assert_eq!(field(&text, "abstract:"), "closed");
    assert_eq!(field(&text, "egress:"), "upstream");
    assert_eq!(field(&text, "interfaces:"), "1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");

    // (Only the host's own services: on the host's network the gateway is outside.)
    let output =
        run(launcher.shell_as_user(&["--network", "host"], &["bash", "-c", &host_services]));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(field(&text, "loopback:"), "open");
    assert_eq!(field(&text, "abstract:"), "open");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("warning: --network host").count(),
        1,
        "{stderr}"
    );
    drop(loopback);
}
