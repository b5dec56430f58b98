//! The error type of the load generator library.

use std::{io, path::PathBuf};

/// What can go wrong while serving upstreams, generating load or reading results.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("{op} failed")]
    Io {
        /// The operation that failed, e.g. "connect to proxy".
        op: &'static str,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A response head could not be parsed.
    #[error("malformed response head: {reason}")]
    BadHead {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The proxy answered with another status than the test expects.
    #[error("proxy answered status {got}, expected {expected}")]
    Status {
        /// The status the test expects.
        expected: u16,
        /// The status received.
        got: u16,
    },
    /// Echoed data differed from what was sent.
    #[error("echoed data differs from what was sent at byte {offset}")]
    Corrupt {
        /// Offset of the first differing chunk in the stream.
        offset: u64,
    },
    /// The peer closed the connection before the exchange was complete.
    #[error("connection closed early during {op}")]
    Closed {
        /// The exchange that was cut short.
        op: &'static str,
    },
    /// An operation did not finish within its time bound.
    #[error("operation timed out")]
    Timeout,
    /// The HTTP client or server failed.
    #[error("http exchange failed")]
    Http(#[from] hyper::Error),
    /// The HTTP upstream answered with a non-success status.
    #[error("upstream answered status {0}")]
    HttpStatus(u16),
    /// An HTTP request could not be built.
    #[error("cannot build request")]
    Request(#[from] http::Error),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A /proc file did not have the expected shape.
    #[error("cannot parse {path}: {reason}")]
    ProcParse {
        /// The file.
        path: PathBuf,
        /// What was missing or malformed.
        reason: &'static str,
    },
    /// A line of a results file is not a valid record.
    #[error("{path}:{line}: invalid result record")]
    Record {
        /// The results file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// An address given to the load generator is not a loopback address.
    #[error("{addr} is not a loopback address; the load generator only targets loopback")]
    NotLoopback {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// A background task failed to complete.
    #[error("worker task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    /// Returns a closure that wraps an I/O error with the operation that failed.
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { op, source }
    }
}
