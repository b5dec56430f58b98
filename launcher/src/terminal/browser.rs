//! The browser hand-off: logins started inside the container (OAuth) must open in the
//! user's browser on the host. The image's `xdg-open`, `x-www-browser` and `www-browser`
//! append the URL to a file in a per-run directory that only the user can read (mounted
//! into the container, which runs as the user); the launcher follows that file and opens
//! each line that is an `http`/`https` URL of bounded length with the platform's opener
//! (the `opener` crate: `open` on macOS, `xdg-open` on Linux, `wslview` on WSL; `$BROWSER`
//! when set), printing it too. Anything else is refused and reported, never run. The
//! directory is a [`RunDir`].

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::notice;
use crate::sandbox::labels::Owner;
use crate::sandbox::run_dir::RunDir;

/// Where the channel directory is mounted in the container.
pub(crate) const CONTAINER_DIR: &str = "/run/agent-sandbox/browser";
/// The variable telling the image's shim which file to append URLs to.
pub(crate) const ENV_VAR: &str = "AGENT_SANDBOX_BROWSER";
/// The file, inside the channel directory.
const FILE_NAME: &str = "urls";
/// The longest URL accepted (OAuth URLs with PKCE parameters stay well below this).
const MAX_URL: usize = 4096;
/// How often the file is checked for new lines.
const POLL: Duration = Duration::from_millis(200);

/// Why a line from the container was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Not an `http://` or `https://` URL.
    #[error("not an http or https URL")]
    Scheme,
    /// Longer than the limit (4096 bytes).
    #[error("longer than {MAX_URL} bytes")]
    TooLong,
    /// Spaces, control characters or non-ASCII (which a URL never needs, percent-encoded).
    #[error("contains spaces, control or non-ASCII characters")]
    Characters,
    /// No host after the scheme.
    #[error("has no host")]
    NoHost,
}

/// Checks a line written by the container: an absolute `http`/`https` URL with a host,
/// of printable ASCII without spaces, at most 4096 bytes.
///
/// # Errors
///
/// The reason it is refused.
pub(crate) fn check_url(line: &str) -> Result<&str, Refusal> {
    if line.len() > MAX_URL {
        return Err(Refusal::TooLong);
    }
    if !line.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::Characters);
    }
    let lower = line.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or(Refusal::Scheme)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(Refusal::NoHost);
    }
    Ok(line)
}

/// The per-run channel: a private directory holding the file the container appends to.
/// The directory is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Channel {
    dir: RunDir,
}

impl Channel {
    /// Creates the channel directory under `parent` (see [`RunDir::create`]) with its
    /// empty file (0600).
    ///
    /// # Errors
    ///
    /// The directory or its files cannot be created.
    pub(crate) fn create(parent: &Path, session: &str, owner: &Owner) -> std::io::Result<Self> {
        let channel = Self {
            dir: RunDir::create(parent, session, owner)?,
        };
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(channel.file())?;
        Ok(channel)
    }

    /// The directory to mount at [`CONTAINER_DIR`].
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self) -> PathBuf {
        self.dir().join(FILE_NAME)
    }

    /// A reader of the lines the container appends.
    ///
    /// # Errors
    ///
    /// The file cannot be opened.
    pub(crate) fn follower(&self) -> std::io::Result<Follower> {
        Ok(Follower {
            file: File::open(self.file())?,
            pending: Vec::new(),
        })
    }
}

/// Reads the channel file's new lines (see [`Channel::follower`]).
#[derive(Debug)]
pub(crate) struct Follower {
    file: File,
    pending: Vec<u8>,
}

impl Follower {
    /// Follows the file, handing every complete line to `open` when it is an acceptable
    /// URL and reporting it otherwise; never returns (drop it to stop).
    pub(crate) async fn follow(&mut self, open: impl Fn(&str)) {
        let mut interval = tokio::time::interval(POLL);
        loop {
            interval.tick().await;
            self.read_lines(&open);
        }
    }

    /// Handles the complete lines appended since the last call.
    pub(crate) fn read_lines(&mut self, open: impl Fn(&str)) {
        let mut chunk = Vec::new();
        if self.file.read_to_end(&mut chunk).is_err() || chunk.is_empty() {
            return;
        }
        self.pending.extend_from_slice(&chunk);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.trim_end_matches('\r');
            match check_url(line) {
                Ok(url) => open(url),
                Err(refusal) => notice(&format!(
                    "refused to open {:?} for the sandbox: {refusal}",
                    line.chars().take(80).collect::<String>()
                )),
            }
        }
        if self.pending.len() > MAX_URL {
            notice(&format!(
                "refused to open a line from the sandbox: {}",
                Refusal::TooLong
            ));
            self.pending.clear();
            let _ = self.file.seek(SeekFrom::End(0));
        }
    }
}

/// Opens `url` in the user's browser, on a blocking thread, and prints it.
pub(crate) fn open_in_browser(url: &str) {
    notice(&format!("opening in your browser: {url}"));
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = opener::open_browser(&url) {
            notice(&format!(
                "cannot open a browser ({error}); open the URL above by hand"
            ));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::{Arc, Mutex};

    #[test]
    fn only_bounded_http_urls_with_a_host_pass() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        let cases: &[(&str, Result<(), Refusal>)] = &[
            (
                "https://github.com/login/oauth/authorize?client_id=x&state=y",
                Ok(()),
            ),
            ("http://localhost:8080/callback", Ok(())),
            ("HTTPS://EXAMPLE.COM", Ok(())),
            ("https://user@example.com/", Ok(())),
            ("file:///etc/passwd", Err(Refusal::Scheme)),
            ("/etc/passwd", Err(Refusal::Scheme)),
            ("javascript:alert(1)", Err(Refusal::Scheme)),
            ("ftp://example.com/", Err(Refusal::Scheme)),
            ("https://", Err(Refusal::NoHost)),
            ("https:///path", Err(Refusal::NoHost)),
            ("https://:443/", Err(Refusal::NoHost)),
            (
                "https://example.com/ --new-window",
                Err(Refusal::Characters),
            ),
            ("https://example.com/\u{7}", Err(Refusal::Characters)),
            ("https://exämple.com/", Err(Refusal::Characters)),
            (&long, Err(Refusal::TooLong)),
        ];
        for (line, expected) in cases {
            assert_eq!(check_url(line).map(drop), *expected, "{line:?}");
        }
    }

    #[tokio::test]
    async fn lines_appended_to_the_channel_reach_the_opener_and_bad_ones_do_not() {
        let parent = tempfile::tempdir().unwrap();
        let owner = crate::sandbox::liveness::current_owner();
        let channel = Channel::create(parent.path(), "test", &owner).unwrap();
        let mode = std::fs::metadata(channel.dir())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut writer = OpenOptions::new()
            .append(true)
            .open(channel.file())
            .unwrap();
        let oversized = format!("https://example.com/{}\n", "x".repeat(MAX_URL * 2));
        for line in [
            "https://example.com/login?x=1\n",
            "file:///etc/passwd\n",
            "javascript:alert(1)\n",
            &oversized,
            "/tmp/x\n",
            "http://localhost:1455/cb\n",
        ] {
            writer.write_all(line.as_bytes()).unwrap();
        }
        let opened = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&opened);
        let mut follower = channel.follower().unwrap();
        let _ = tokio::time::timeout(
            POLL * 3,
            follower.follow(|url| seen.lock().unwrap().push(url.to_owned())),
        )
        .await;
        writer.write_all(b"https://late.example/\n").unwrap();
        follower.read_lines(|url| seen.lock().unwrap().push(url.to_owned()));
        assert_eq!(
            *opened.lock().unwrap(),
            [
                "https://example.com/login?x=1",
                "http://localhost:1455/cb",
                "https://late.example/"
            ]
        );
        let dir = channel.dir().to_owned();
        drop(channel);
        assert!(!dir.exists());
    }
}
