//! The hand-off channel: a private directory of the launcher's holding the file the
//! sandbox appends URLs to. Only that file is mounted into the container (never the
//! directory), so the agent can write to it and nothing else: it cannot replace it with
//! a FIFO or a symlink, add files, or change the directory's modes. Its own `chmod` on
//! the file changes nothing for the launcher, which reads through the descriptor it
//! opened at creation, a bounded amount per poll, and empties the file when the sandbox
//! floods it.
//!
//! A channel appears complete (built under a hidden name, then renamed), so a directory
//! with the prefix but without a readable owner record is no channel of a running
//! launcher, and [`remove_stale`] removes it. Every read of a directory's contents opens
//! without following symlinks and without blocking (a FIFO, `/dev/zero`), bounded in
//! size; removal first gives the launcher back the rights on every directory inside.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use super::destination::MAX_URL;
use crate::sandbox::labels::Owner;
use crate::sandbox::private_dirs;

/// Where the channel file is mounted in the container.
pub(crate) const CONTAINER_FILE: &str = "/run/agent-sandbox/browser/urls";
/// The variable telling the image's shim which file to append URLs to.
pub(crate) const ENV_VAR: &str = "AGENT_SANDBOX_BROWSER";
/// The file the container appends to, inside the channel directory.
const FILE_NAME: &str = "urls";
/// The channel directories' name prefix (the session id follows).
const PREFIX: &str = "agent-sandbox-";
/// The file in a channel directory naming the launcher that owns it.
const OWNER_FILE: &str = "owner";
/// The most read of an owner record.
const MAX_OWNER: u64 = 1024;
/// The most read from the channel per poll.
const READ_CHUNK: usize = 64 * 1024;
/// Unread bytes beyond which the file is emptied instead of read (a flood).
const MAX_BACKLOG: u64 = 1024 * 1024;
/// How deep removal descends into a directory left by something else than a launcher.
const MAX_DEPTH: usize = 16;

/// What the sandbox wrote, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line (without its end).
    Text(String),
    /// A line longer than the longest URL, dropped unread.
    Oversized,
    /// More than [`MAX_BACKLOG`] bytes arrived at once: they were dropped.
    Flood(u64),
}

/// The per-run channel, removed when dropped.
#[derive(Debug)]
pub(crate) struct Channel {
    dir: PathBuf,
    file: File,
    offset: u64,
    pending: Vec<u8>,
    /// Inside a line longer than [`MAX_URL`]: skipping to its end.
    skipping: bool,
}

impl Channel {
    /// Creates the channel directory (0700) under `parent`, with its empty file (0600)
    /// and a record of the launcher that owns it (for [`remove_stale`]).
    ///
    /// # Errors
    ///
    /// The directory or its files cannot be created.
    pub(crate) fn create(parent: &Path, session: &str, owner: &Owner) -> io::Result<Self> {
        let building = parent.join(format!(".{PREFIX}{session}"));
        DirBuilder::new().mode(0o700).create(&building)?;
        let made = (|| {
            let record = format!("{}\n{}\n{}\n", owner.pid, owner.start, owner.host);
            std::io::Write::write_all(
                &mut new_file(&building.join(OWNER_FILE))?,
                record.as_bytes(),
            )?;
            let file = new_file(&building.join(FILE_NAME))?;
            let dir = parent.join(format!("{PREFIX}{session}"));
            std::fs::rename(&building, &dir)?;
            Ok(Self {
                dir,
                file,
                offset: 0,
                pending: Vec::new(),
                skipping: false,
            })
        })();
        if made.is_err() {
            let _ = remove_tree(&building);
        }
        made
    }

    /// Creates the channel under the first of the private directories' parents
    /// ([`private_dirs::parents`]) where that works, making the parent (0700) when it is
    /// missing.
    ///
    /// # Errors
    ///
    /// The channel cannot be created anywhere (the last parent's error).
    pub(crate) fn create_in_private_dir(session: &str, owner: &Owner) -> io::Result<Self> {
        let mut failure = io::Error::other("no directory for the browser hand-off");
        for parent in private_dirs::parents() {
            let made = DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&parent)
                .and_then(|()| Self::create(&parent, session, owner));
            match made {
                Ok(channel) => return Ok(channel),
                Err(error) => failure = error,
            }
        }
        Err(failure)
    }

    /// The file to mount (alone) at [`CONTAINER_FILE`].
    pub(crate) fn file_path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The lines appended since the last call (at most [`READ_CHUNK`] bytes are read).
    pub(crate) fn lines(&mut self) -> Vec<Line> {
        let Ok(size) = self.file.metadata().map(|m| m.len()) else {
            return Vec::new();
        };
        if size < self.offset {
            // Truncated from inside: start over.
            self.offset = 0;
            self.pending.clear();
        }
        if size - self.offset > MAX_BACKLOG {
            let dropped = size - self.offset;
            self.empty();
            return vec![Line::Flood(dropped)];
        }
        let mut chunk = vec![0; READ_CHUNK];
        let Ok(read) = self.file.read_at(&mut chunk, self.offset) else {
            return Vec::new();
        };
        self.offset += read as u64;
        let mut lines = Vec::new();
        for &byte in &chunk[..read] {
            match byte {
                b'\n' if self.skipping => self.skipping = false,
                b'\n' => {
                    let line = String::from_utf8_lossy(&self.pending).into_owned();
                    lines.push(Line::Text(line.trim_end_matches('\r').to_owned()));
                    self.pending.clear();
                }
                _ if self.skipping => {}
                _ if self.pending.len() > MAX_URL => {
                    lines.push(Line::Oversized);
                    self.pending.clear();
                    self.skipping = true;
                }
                _ => self.pending.push(byte),
            }
        }
        if self.offset >= MAX_BACKLOG {
            // Everything up to here is read: start the file over, so that it stays small.
            self.empty();
        }
        lines
    }

    /// Empties the file; what the sandbox appends next starts at its beginning.
    fn empty(&mut self) {
        let _ = self.file.set_len(0);
        self.offset = 0;
        self.pending.clear();
        self.skipping = false;
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = remove_tree(&self.dir);
    }
}

/// Creates a file the launcher alone has made (never an existing one, never through a
/// symlink), readable and writable by the user.
fn new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// [`remove_stale`] in every one of the private directories' parents; returns how many
/// channels went.
pub(crate) fn remove_stale_everywhere(running: impl Fn(&Owner) -> bool) -> usize {
    private_dirs::sweep(|parent| remove_stale(parent, &running))
}

/// Removes the channel directories under `parent` that belong to no running launcher
/// (a launcher killed outright cannot remove its own), whatever was done to them, and
/// returns how many. A directory whose owner record runs is kept; one without a valid
/// record is no complete channel and goes too.
pub(crate) fn remove_stale(parent: &Path, running: impl Fn(&Owner) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let uid = rustix::process::getuid().as_raw();
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|entry| entry.path())
        // Ours, and a directory (not a symlink to one): nothing else is touched.
        .filter(|dir| std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid))
        .filter(|dir| !read_owner(dir).is_some_and(|owner| running(&owner)))
        .filter(|dir| remove_tree(dir).is_ok())
        .count()
}

/// The owner record of the channel `dir`, read without following a symlink or blocking
/// on a FIFO, at most [`MAX_OWNER`] bytes.
fn read_owner(dir: &Path) -> Option<Owner> {
    let record = read_regular(&dir.join(OWNER_FILE), MAX_OWNER).ok()?;
    let mut lines = record.lines();
    Some(Owner {
        pid: lines.next()?.parse().ok()?,
        start: lines.next()?.to_owned(),
        host: lines.next()?.to_owned(),
    })
}

/// At most `limit` bytes of the regular file at `path`, as text; a symlink, a FIFO, a
/// device or a directory is an error, found without blocking.
fn read_regular(path: &Path, limit: u64) -> io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::open(path, flags, Mode::empty())?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(limit).read_to_string(&mut text)?;
    Ok(text)
}

/// Removes `dir` and everything in it, after giving the user back read, write and
/// search rights on every directory inside (which `chmod` may have taken away).
/// Symlinks are removed, never followed.
fn remove_tree(dir: &Path) -> io::Result<()> {
    restore_rights(dir, 0)?;
    std::fs::remove_dir_all(dir)
}

fn restore_rights(dir: &Path, depth: usize) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(dir)?;
    if !metadata.is_dir() || depth > MAX_DEPTH {
        return Ok(());
    }
    if metadata.permissions().mode() & 0o700 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        restore_rights(&entry.path(), depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn channels_of_launchers_that_are_gone_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path();
        let keep = Channel::create(parent, "live", &Owner::test(1)).unwrap();
        let gone = Channel::create(parent, "dead", &Owner::test(2)).unwrap();
        let gone_dir = gone.dir.clone();
        std::mem::forget(gone); // as if its launcher had been killed
        let mode = std::fs::metadata(&keep.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::create_dir(parent.join("unrelated")).unwrap();
        assert_eq!(remove_stale(parent, |owner| owner.pid == 1), 1);
        assert!(!gone_dir.exists() && keep.dir.exists() && parent.join("unrelated").exists());
        let keep_dir = keep.dir.clone();
        drop(keep);
        assert!(!keep_dir.exists());
    }

    #[test]
    fn stale_channels_tampered_with_are_removed_without_blocking_or_following() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path();
        let outside = parent.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        // The owner record a FIFO (reading it would block), a symlink to /dev/zero
        // (reading it would never end), or a directory chmod 0300 with a locked
        // subdirectory and a symlink out.
        let fifo = parent.join("agent-sandbox-fifo");
        std::fs::create_dir(&fifo).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            fifo.join(OWNER_FILE),
            rustix::fs::Mode::RUSR,
        )
        .unwrap();
        let zero = parent.join("agent-sandbox-zero");
        std::fs::create_dir(&zero).unwrap();
        std::os::unix::fs::symlink("/dev/zero", zero.join(OWNER_FILE)).unwrap();
        let locked = parent.join("agent-sandbox-locked");
        std::fs::create_dir_all(locked.join("sub")).unwrap();
        std::fs::write(locked.join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, locked.join("out")).unwrap();
        std::fs::set_permissions(locked.join("sub"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o300)).unwrap();
        // A symlink named like a channel is not followed.
        std::os::unix::fs::symlink(&outside, parent.join("agent-sandbox-link")).unwrap();
        assert_eq!(remove_stale(parent, |_| true), 3);
        for gone in [&fifo, &zero, &locked] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        assert!(outside.join("keep").exists());
        assert!(std::fs::symlink_metadata(parent.join("agent-sandbox-link")).is_ok());
    }

    #[test]
    fn lines_are_read_bounded_and_a_flood_is_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let mut channel = Channel::create(parent.path(), "t", &Owner::test(1)).unwrap();
        let mut writer = OpenOptions::new()
            .append(true)
            .open(channel.file_path())
            .unwrap();
        let oversized = format!("https://example.com/{}\n", "x".repeat(MAX_URL * 2));
        for line in [
            "https://a.example/\r\n",
            &oversized,
            "https://b.example/\n",
            "partial",
        ] {
            writer.write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(
            channel.lines(),
            [
                Line::Text("https://a.example/".into()),
                Line::Oversized,
                Line::Text("https://b.example/".into())
            ]
        );
        writer.write_all(b" end\n").unwrap();
        assert_eq!(channel.lines(), [Line::Text("partial end".into())]);
        // A chmod from inside changes nothing: the launcher reads through its descriptor.
        std::fs::set_permissions(channel.file_path(), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        writer.write_all(b"https://c.example/\n").unwrap();
        assert_eq!(channel.lines(), [Line::Text("https://c.example/".into())]);
        // Truncated from inside: read from the start again.
        writer.set_len(0).unwrap();
        writer.write_all(b"https://d.example/\n").unwrap();
        assert_eq!(channel.lines(), [Line::Text("https://d.example/".into())]);
        let flood = vec![b'a'; MAX_BACKLOG as usize + 1];
        writer.write_all(&flood).unwrap();
        assert!(matches!(channel.lines()[..], [Line::Flood(_)]));
        assert_eq!(std::fs::metadata(channel.file_path()).unwrap().len(), 0);
        writer.write_all(b"https://e.example/\n").unwrap();
        assert_eq!(channel.lines(), [Line::Text("https://e.example/".into())]);
    }
}
