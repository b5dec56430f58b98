//! The interactive terminal through the real binary under a pseudo-terminal: typed input
//! reaches the container and its output comes back, the container's TTY has the
//! terminal's size and follows a resize (SIGWINCH), Ctrl-P reaches the program (the
//! detach keys are not docker's default), the exit code passes through, and the
//! terminal's settings are restored afterwards.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_sandbox_e2e::eventually;
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, Winsize, tcgetattr, tcsetwinsize};

use crate::support::Launcher;

/// A pseudo-terminal: the master side the test types into and reads from, the slave
/// side the launcher gets as its stdin, stdout and stderr.
struct Pty {
    master: File,
    slave: OwnedFd,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open(columns: u16, rows: u16) -> Self {
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
        let pty = Self {
            master: File::from(master),
            slave,
            screen: Arc::default(),
        };
        pty.resize(columns, rows);
        let mut reader = pty.master.try_clone().unwrap();
        let screen = Arc::clone(&pty.screen);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        pty
    }

    fn resize(&self, columns: u16, rows: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&self.master, size).unwrap();
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }

    fn type_in(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Waits until the screen shows `needle` after position `from`; returns the position
    /// after it.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> usize {
        eventually(
            timeout,
            &format!("{needle:?} appearing on the screen"),
            || {
                let screen = self.screen.lock().unwrap().clone();
                let text = String::from_utf8_lossy(&screen[from.min(screen.len())..]).into_owned();
                match text.find(needle) {
                    Some(at) => Ok(from + at + needle.len()),
                    None => Err(format!("the screen after {from}:\n{text}")),
                }
            },
        )
    }

    /// The screen from `from` on, as text.
    fn screen_after(&self, from: usize) -> String {
        let screen = self.screen.lock().unwrap().clone();
        String::from_utf8_lossy(&screen[from.min(screen.len())..]).into_owned()
    }
}

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
