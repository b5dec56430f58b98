//! `sandbox-proxy relay`: the agent container's init and proxy relay, run for real.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::process::Signal;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::support::{BIN, Scratch, free_port, run, send_signal, wait_exit};

#[tokio::test]
async fn relays_a_loopback_port_to_the_unix_socket_while_the_command_runs() {
    let scratch = Scratch::new();
    let socket = scratch.path().join("proxy.sock");
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
    send_signal(&child, Signal::TERM);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(42));
}

#[test]
fn the_agent_gets_the_terminal_it_runs_in() {
    // A pseudo-terminal whose session the relay leads (`setsid --ctty`), as the PID 1 of a
    // container with a terminal does.
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .unwrap();
    // The agent waits for a line from the terminal (reading it before the relay has
    // handed the terminal over stops it until the relay wakes it), then reports its
    // process group and the terminal's foreground group.
    let script = r#"read -r line; read -r _ _ _ _ pgrp _ _ tpgid _ < /proc/$$/stat; echo "pgrp=$pgrp tpgid=$tpgid""#;
    let child = Command::new("setsid")
        .args(["--ctty", BIN, "relay", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(["--connect", "unix:/x.sock", "--", "sh", "-c", script])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut relay = KillOnDrop(child);
    let mut master = File::from(master);
    master.write_all(b"go\n").unwrap();
    assert_eq!(wait_exit(&mut relay.0).code(), Some(0));
    // Everything is written once the relay has exited; the read ends with EIO when the
    // last slave descriptor is gone.
    let mut screen = Vec::new();
    let _ = master.read_to_end(&mut screen);
    let screen = String::from_utf8_lossy(&screen);
    let line = screen
        .lines()
        .find_map(|line| line.trim().strip_prefix("pgrp="))
        .unwrap_or_else(|| panic!("no answer from the agent: {screen:?}"));
    let (pgrp, tpgid) = line.split_once(" tpgid=").unwrap();
    assert_eq!(
        pgrp, tpgid,
        "the agent's group is not the terminal's foreground"
    );
}

/// A child process killed (with its relay's agent group left to the kernel) when the
/// test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn pipe_carries_stdin_to_the_first_address_that_accepts_and_the_answer_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        // Reads to the end: the pipe half-closes the connection at the end of its input.
        stream.read_to_end(&mut request).await.unwrap();
        stream.write_all(b"answer to ").await.unwrap();
        stream.write_all(&request).await.unwrap();
    });
    let closed = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "pipe",
            &format!("127.0.0.1:{closed}"),
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"GET /cb?code=1").await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    server.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "answer to GET /cb?code=1"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn pipe_with_nothing_listening_fails_at_once_and_says_where() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let (code, _, stderr) = run(&["pipe", &address]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("nothing accepts a connection at {address}")),
        "{stderr}"
    );
}
