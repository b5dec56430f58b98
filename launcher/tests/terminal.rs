//! The interactive terminal through the real binary under a pseudo-terminal: typed input
//! reaches the container and its output comes back, the container's TTY has the
//! terminal's size and follows a resize (SIGWINCH), Ctrl-P reaches the program (the
//! detach keys are not docker's default), the exit code passes through, and the
//! terminal's settings are restored afterwards.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_sandbox_e2e::{Scope, debian_image, require_docker};
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, Winsize, tcgetattr, tcsetwinsize};

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
        let started = Instant::now();
        loop {
            let screen = self.screen.lock().unwrap().clone();
            let text = String::from_utf8_lossy(&screen[from.min(screen.len())..]).into_owned();
            if let Some(at) = text.find(needle) {
                return from + at + needle.len();
            }
            if started.elapsed() > timeout {
                panic!("{needle:?} did not appear; the screen after {from}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn an_interactive_session_works_like_a_local_terminal() {
    require_docker!();
    let scope = Scope::new();
    let root = std::env::temp_dir().join(scope.id());
    let (home, work) = (root.join("home"), root.join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let mut pty = Pty::open(80, 24);
    let before = tcgetattr(&pty.slave).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-sandbox"))
        .args(["shell", "--image", debian_image()])
        .args(scope.label_args())
        .args(["--", "bash", "--norc", "--noprofile"])
        .current_dir(&work)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
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
    let started = Instant::now();
    loop {
        pty.type_in("echo \"size:$(stty size)\"\r");
        let next = pty.wait_for("size:", seen + 1, wait);
        let screen = pty.screen.lock().unwrap().clone();
        if String::from_utf8_lossy(&screen[next..]).starts_with("30 100") {
            seen = next;
            break;
        }
        seen = next;
        assert!(
            started.elapsed() < wait,
            "the container's terminal was not resized"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Ctrl-P reaches the program instead of starting docker's detach sequence.
    pty.type_in("cat -v\r");
    std::thread::sleep(Duration::from_millis(300));
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
