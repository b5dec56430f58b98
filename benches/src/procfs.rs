//! CPU time and resident memory of another process, read from /proc.

use std::{path::PathBuf, time::Duration};

use crate::Error;

/// Clock ticks per second in /proc/PID/stat (`USER_HZ`). The kernel exposes 100 to user
/// space on every architecture this runs on, whatever its internal `HZ`.
const USER_HZ: u64 = 100;

/// Resident memory of a process, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rss {
    /// All resident pages (`VmRSS`).
    pub total: u64,
    /// Resident anonymous pages (`RssAnon`).
    pub anonymous: u64,
}

/// A process whose CPU time and memory are sampled around each test window.
#[derive(Clone, Copy, Debug)]
pub struct Process {
    pid: u32,
}

impl Process {
    /// Refers to the process with this PID; nothing is read until a sample is taken.
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// User plus system CPU time consumed so far by all threads of the process.
    pub fn cpu_time(&self) -> Result<Duration, Error> {
        let path = self.path("stat");
        let text = read(&path)?;
        let ticks = parse_cpu_ticks(&text).ok_or(Error::ProcParse {
            path,
            reason: "no utime/stime fields",
        })?;
        Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
    }

    /// Resident memory in KiB: all of it (`VmRSS`), and the anonymous part (`RssAnon`:
    /// heap, stacks; without the pages of the executable and shared libraries).
    pub fn rss_kib(&self) -> Result<Rss, Error> {
        let path = self.path("status");
        let text = read(&path)?;
        let field = |name| {
            parse_status_kib(&text, name).ok_or_else(|| Error::ProcParse {
                path: path.clone(),
                reason: "no VmRSS or RssAnon line in kB",
            })
        };
        Ok(Rss {
            total: field("VmRSS")?,
            anonymous: field("RssAnon")?,
        })
    }

    fn path(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }
}

fn read(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.clone(),
        source,
    })
}

/// `utime + stime` in clock ticks from the text of /proc/PID/stat.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`: utime and stime are fields 14
/// and 15 of the line, the 12th and 13th after the name.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value in KiB of the field `name` (e.g. `VmRSS`) of /proc/PID/status.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let mut words = line[name.len() + 1..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let stat = "1234 (squid) S 1 1234 1234 0 -1 4194560 2130 0 0 0 17 5 0 0 20 0 1 0 \
                    2787 58720256 6572 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
    }

    #[test]
    fn cpu_ticks_survive_parentheses_and_spaces_in_the_name() {
        let stat = "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 300 45 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_cpu_ticks(stat), Some(345));
    }

    #[test]
    fn cpu_ticks_of_a_truncated_line_are_none() {
        assert_eq!(parse_cpu_ticks("7 (a) R 1 7 7"), None);
        assert_eq!(parse_cpu_ticks("no name here"), None);
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\ttinyproxy\nVmPeak:\t   12000 kB\nVmRSS:\t    3072 kB\n\
                      RssAnon:\t     420 kB\nThreads:\t2\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(3072));
        assert_eq!(parse_status_kib(status, "RssAnon"), Some(420));
        assert_eq!(parse_status_kib(status, "Rss"), None);
    }

    #[test]
    fn status_fields_missing_or_in_other_units_are_none() {
        assert_eq!(parse_status_kib("Name:\tx\n", "VmRSS"), None);
        assert_eq!(parse_status_kib("VmRSS:\t3 MB\n", "VmRSS"), None);
    }

    #[test]
    fn own_process_can_be_sampled() {
        let me = Process::new(std::process::id());
        let rss = me.rss_kib().unwrap();
        assert!(rss.total >= rss.anonymous && rss.anonymous > 0, "{rss:?}");
        me.cpu_time().unwrap();
    }
}
