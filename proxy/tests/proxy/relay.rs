//! `sandbox-proxy relay`: the agent container's init and proxy relay, run for real.

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::cli::{BIN, Scratch, run};
use crate::support::{send_signal, wait_exit};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn relays_a_loopback_port_to_the_unix_socket_while_the_command_runs() {
    let scratch = Scratch::new("relay");
    let socket = scratch.0.join("proxy.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let _ = stream.write_all(b"proxy says: ").await;
                let _ = stream.write_all(&buf[..n]).await;
            });
        }
    });
    let port = free_port();
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/{port}; printf hello >&3; head -c 17 <&3; exit 3");
    let output = tokio::process::Command::new(BIN)
        .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--connect")
        .arg(format!("unix:{}", socket.display()))
        .args(["--", "bash", "-c", &script])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "proxy says: hello");
    assert_eq!(
        output.status.code(),
        Some(3),
        "the command's exit code passes through"
    );
}

#[test]
fn exit_codes_follow_docker_conventions() {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let relay = |command: &[&str]| {
        let mut args = vec![
            "relay",
            "--listen",
            &listen,
            "--connect",
            "unix:/nonexistent.sock",
            "--",
        ];
        args.extend_from_slice(command);
        run(&args).0
    };
    assert_eq!(relay(&["sh", "-c", "exit 0"]), 0);
    assert_eq!(relay(&["sh", "-c", "kill -TERM $$"]), 143);
    assert_eq!(relay(&["/nonexistent/agent"]), 127);
    assert_eq!(relay(&["/etc/hostname"]), 126);
}

#[test]
fn signals_are_forwarded_and_orphans_reaped() {
    let port = free_port().to_string();
    // The command leaves an orphan behind, then waits for SIGTERM.
    let mut child = Command::new(BIN)
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--connect",
            "unix:/x.sock",
        ])
        .args([
            "--",
            "sh",
            "-c",
            "(sleep 0.1 &) ; trap 'exit 42' TERM; echo armed; while :; do sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal only once the trap is installed.
    let mut armed = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut armed,
    )
    .unwrap();
    assert_eq!(armed.trim(), "armed");
    send_signal(&child, Signal::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(42));
}
