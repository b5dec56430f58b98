//! Whether the launcher process that created a session still runs: its PID exists and,
//! where the kernel tells (Linux), it started at the recorded time, so a reused PID does
//! not keep a dead session's leftovers alive.

use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

use crate::sandbox::labels::Owner;

/// This process, as [`Owner`] labels record it.
pub(crate) fn current_owner() -> Owner {
    let pid = std::process::id();
    Owner {
        pid,
        start: start_time(pid).unwrap_or_default(),
        host: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    }
}

/// Whether `owner` (a launcher on this host) is still running.
pub(crate) fn is_running(owner: &Owner) -> bool {
    let Some(pid) = i32::try_from(owner.pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    let exists = matches!(test_kill_process(pid), Ok(()) | Err(Errno::PERM));
    if !exists {
        return false;
    }
    match start_time(owner.pid) {
        Some(now) if !owner.start.is_empty() => now == owner.start,
        _ => true,
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`).
#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(not(target_os = "linux"))]
use ps_start_time as start_time;

/// The start time of process `pid` as `ps` prints it (to the second), where there is
/// no `/proc` (macOS).
#[cfg(any(not(target_os = "linux"), test))]
fn ps_start_time(pid: u32) -> Option<String> {
    let output = std::process::Command::new("ps")
        .args(["-o", "lstart=", "-p", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_a_changed_start_time_is_not() {
        let me = current_owner();
        assert!(is_running(&me));
        assert!(!me.start.is_empty(), "no start time for this process");
        let reused = Owner {
            start: format!("{}0", me.start),
            ..me.clone()
        };
        assert!(!is_running(&reused));
    }

    #[test]
    fn ps_gives_a_stable_start_time_for_a_running_process_and_none_for_a_finished_one() {
        let me = std::process::id();
        let first = ps_start_time(me).expect("ps knows this process");
        assert_eq!(ps_start_time(me), Some(first));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(ps_start_time(pid), None);
    }

    #[test]
    fn a_finished_process_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_running(&Owner {
            pid,
            start: String::new(),
            host: String::new()
        }));
    }
}
