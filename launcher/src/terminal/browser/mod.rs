//! The browser hand-off: logins started inside the container (OAuth) open in the user's
//! browser on the host. The image's `xdg-open`, `x-www-browser` and `www-browser` append
//! the URL to the one file of the launcher's [`Channel`] mounted into the container;
//! the launcher follows it and opens a URL only when [`destination`] allows it (the
//! policy in force with the proxy, public addresses without), at most
//! [`OPENED_PER_MINUTE`] a minute, with the platform's opener (the `opener` crate:
//! `open` on macOS, `xdg-open` on Linux, `wslview` on WSL; `$BROWSER` when set). Every
//! refusal is printed (the line shortened, and why), never opened. A URL that opens and
//! names a loopback redirect gets its port carried into the sandbox ([`callback`]).

pub(crate) mod callback;
mod channel;
mod destination;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use channel::{CONTAINER_FILE, Channel, ENV_VAR, remove_stale_everywhere};
pub(crate) use destination::Rules;

use callback::Callbacks;
use channel::Line;
use destination::{Destination, Refusal};

use crate::report::notice;

/// How often the channel is checked for new lines.
const POLL: Duration = Duration::from_millis(200);
/// The most URLs opened in a minute; more are printed, not opened.
pub(crate) const OPENED_PER_MINUTE: usize = 3;
/// The most refusals printed in a minute; more are counted in one line.
const SHOWN_PER_MINUTE: usize = 10;
/// How much of a refused line is printed.
const SHOWN_CHARS: usize = 100;

/// At most `max` events in any minute.
#[derive(Debug)]
struct Window {
    max: usize,
    recent: VecDeque<Instant>,
}

impl Window {
    fn new(max: usize) -> Self {
        Self {
            max,
            recent: VecDeque::new(),
        }
    }

    /// Whether one more event fits at `now`.
    fn has_room(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&at| now.duration_since(at) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
        self.recent.len() < self.max
    }

    /// Counts an event at `now`, if it fits.
    fn take(&mut self, now: Instant) -> bool {
        let room = self.has_room(now);
        if room {
            self.recent.push_back(now);
        }
        room
    }
}

/// Why a line was not opened: a refused destination or too many URLs.
#[derive(Debug, thiserror::Error)]
enum NotOpened {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("more than {OPENED_PER_MINUTE} URLs in a minute (open it yourself if you trust it)")]
    TooMany,
}

/// The hand-off of one run: the channel, the rules, the limits and the login callbacks.
pub(crate) struct HandOff {
    channel: Channel,
    rules: Rules,
    callbacks: Callbacks,
    opened: Window,
    shown: Window,
    /// Refusals not printed since the last one printed.
    hidden: u64,
}

impl HandOff {
    pub(crate) fn new(channel: Channel, rules: Rules, callbacks: Callbacks) -> Self {
        Self {
            channel,
            rules,
            callbacks,
            opened: Window::new(OPENED_PER_MINUTE),
            shown: Window::new(SHOWN_PER_MINUTE),
            hidden: 0,
        }
    }

    /// Follows the channel, never returns (drop it to stop); `agent` names the agent
    /// container, where login callbacks are carried.
    pub(crate) async fn follow(&mut self, agent: impl Fn() -> Option<String>) {
        let mut interval = tokio::time::interval(POLL);
        loop {
            interval.tick().await;
            self.handle_new(&agent).await;
        }
    }

    /// Handles the lines appended since the last call.
    pub(crate) async fn handle_new(&mut self, agent: &impl Fn() -> Option<String>) {
        for line in self.channel.lines() {
            match line {
                Line::Text(text) => self.handle(&text, agent).await,
                Line::Oversized => self.refused("a line", &Refusal::TooLong.to_string()),
                Line::Flood(bytes) => self.refused(
                    &format!("{bytes} bytes written at once"),
                    "far more than URLs; dropped",
                ),
            }
        }
    }

    async fn handle(&mut self, line: &str, agent: &impl Fn() -> Option<String>) {
        match self.decide(line).await {
            Ok(destination) => {
                open_in_browser(destination.url.as_str());
                if let Some(port) = callback::redirect_port(&destination.url) {
                    self.forward(port, agent());
                }
            }
            Err(why) => self.refused(&format!("{:?}", shorten(line)), &why.to_string()),
        }
    }

    async fn decide(&mut self, line: &str) -> Result<Destination, NotOpened> {
        let destination = Destination::parse(line)?;
        // Checked before resolving: a flood costs no lookups.
        if !self.opened.has_room(Instant::now()) {
            return Err(NotOpened::TooMany);
        }
        self.rules
            .check(&destination, self.callbacks.ports())
            .await?;
        if !self.opened.take(Instant::now()) {
            return Err(NotOpened::TooMany);
        }
        Ok(destination)
    }

    fn forward(&mut self, port: u16, container: Option<String>) {
        match self.callbacks.forward(port, container) {
            Ok(true) => notice(&format!(
                "localhost:{port} on this machine now leads into the sandbox (the login's \
                 redirect), until the run ends"
            )),
            Ok(false) => {}
            Err(error) => notice(&format!("login callback: {error}")),
        }
    }

    /// Prints a refusal, or counts it when too many were printed this minute.
    fn refused(&mut self, what: &str, why: &str) {
        if !self.shown.take(Instant::now()) {
            self.hidden += 1;
            return;
        }
        let hidden = std::mem::take(&mut self.hidden);
        if hidden > 0 {
            notice(&format!(
                "refused {hidden} more lines from the sandbox (not shown)"
            ));
        }
        notice(&format!("refused to open {what} for the sandbox: {why}"));
    }
}

/// At most [`SHOWN_CHARS`] of `line`, marked when cut.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// Opens `url` in the user's browser, on a blocking thread, and prints it.
fn open_in_browser(url: &str) {
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

    #[test]
    fn a_window_admits_at_most_its_maximum_per_minute() {
        let start = Instant::now();
        let mut window = Window::new(3);
        for _ in 0..3 {
            assert!(window.take(start));
        }
        assert!(!window.take(start + Duration::from_secs(59)));
        // A minute on, the first three are out of the window.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(window.take(later));
        }
        assert!(!window.has_room(later));
    }

    #[test]
    fn long_lines_are_shortened_where_a_character_ends() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(SHOWN_CHARS + 5);
        let shown = shorten(&long);
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
