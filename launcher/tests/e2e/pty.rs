//! A pseudo-terminal for running the launcher as on a user's terminal.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_sandbox_e2e::eventually;
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// A pseudo-terminal: the master side the test types into and reads from, the slave
/// side the launcher gets as its stdin, stdout and stderr.
pub struct Pty {
    master: File,
    pub slave: OwnedFd,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    pub fn open(columns: u16, rows: u16) -> Self {
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

    pub fn resize(&self, columns: u16, rows: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&self.master, size).unwrap();
    }

    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }

    pub fn type_in(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Waits until the screen shows `needle` after position `from`; returns the position
    /// after it.
    pub fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> usize {
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
    pub fn screen_after(&self, from: usize) -> String {
        let screen = self.screen.lock().unwrap().clone();
        String::from_utf8_lossy(&screen[from.min(screen.len())..]).into_owned()
    }
}
