//! The interactive terminal through the real binary under a pseudo-terminal: typed input
//! reaches the container and its output comes back, the container's TTY has the
//! terminal's size and follows a resize (SIGWINCH), Ctrl-P reaches the program (the
//! detach keys are not docker's default), the exit code passes through, and the
//! terminal's settings are restored afterwards.

use std::process::Command;
use std::time::Duration;

use agent_sandbox_e2e::eventually;
use rustix::termios::{LocalModes, tcgetattr};

use crate::pty::Pty;
use crate::support::Launcher;

#[test]
fn an_interactive_session_works_like_a_local_terminal() {
    let Some(launcher) = Launcher::start() else {
        return;
    };
    let mut pty = Pty::open(80, 24);
    let before = tcgetattr(&pty.slave).unwrap();
    let mut child = launcher
        .shell(&[] as &[&str], &["bash", "--norc", "--noprofile"])
        .stdin(pty.stdio())
        .stdout(pty.stdio())
        .stderr(pty.stdio())
        .spawn()
        .unwrap();
    let wait = Duration::from_secs(30);

    // Typed input reaches the container, its output comes back, at the terminal's size.
    pty.type_in("echo \"size:$(stty size)\"\r");
    let mut seen = pty.wait_for("size:24 80", 0, wait);
    let raw = tcgetattr(&pty.slave).unwrap();
    assert!(
        !raw.local_modes
            .contains(LocalModes::ECHO | LocalModes::ICANON),
        "not in raw mode"
    );

    // A resize reaches the container's TTY.
    pty.resize(100, 30);
    let _ = Command::new("kill")
        .args(["-WINCH", &child.id().to_string()])
        .status();
    seen = eventually(wait, "the container's terminal being resized", || {
        pty.type_in("echo \"size:$(stty size)\"\r");
        let next = pty.wait_for("size:", seen + 1, wait);
        seen = next;
        let size = pty.screen_after(next);
        match size.starts_with("30 100") {
            true => Ok(next),
            false => Err(size),
        }
    });

    // Ctrl-P reaches the program instead of starting docker's detach sequence. It is
    // typed once bash has run the command line (the marker is the echo's output, not the
    // echoed input): from then on the line discipline holds it for `cat`, where before
    // readline would take Ctrl-P as "previous line".
    pty.type_in("echo \"cat-$((6 * 7))\"; cat -v\r");
    seen = pty.wait_for("cat-42", seen, wait);
    pty.type_in("\x10z\r\x04");
    seen = pty.wait_for("^Pz", seen, wait);

    // The exit code passes through, and the terminal is restored.
    pty.type_in("exit 3\r");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "screen after {seen}");
    let after = tcgetattr(&pty.slave).unwrap();
    assert_eq!(after.local_modes, before.local_modes);
    assert_eq!(after.input_modes, before.input_modes);
    assert_eq!(after.output_modes, before.output_modes);
}
