//! Relaying bytes both ways through an established CONNECT tunnel.
//!
//! Each direction reads into a buffer that exists only while bytes flow: an idle tunnel
//! holds no buffer at all, which keeps thousands of open, quiet tunnels (streaming model
//! responses waiting for the next token) cheap. End of stream in one direction is passed
//! on as a half-close (`shutdown(SHUT_WR)`) while the other direction keeps flowing.
//!
//! A direction whose reads keep filling the whole buffer (a bulk transfer) switches to
//! `splice(2)` through a kernel pipe, so its bytes no longer cross user space at all; it
//! switches back when reads get small again.

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

/// Bytes read per system call while data flows.
const CHUNK: usize = 64 * 1024;

/// A spliced read smaller than this ends bulk mode (the pipe is closed).
const BULK_END: usize = CHUNK / 4;

/// A non-blocking stream socket the relay can drive by readiness.
pub(crate) trait Socket: AsFd + Send + Sync + 'static {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads without blocking into the spare capacity of `buf` (no zeroing first).
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize>;
    /// Writes without blocking.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Runs a non-blocking operation `f` on the raw socket; a `WouldBlock` from it clears
    /// the readiness for `interest`.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

macro_rules! impl_socket {
    ($ty:ty) => {
        impl Socket for $ty {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$ty>::readable(self)
            }
            fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$ty>::writable(self)
            }
            fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
                <$ty>::try_read_buf(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$ty>::try_write(self, buf)
            }
            fn try_io<R>(
                &self,
                interest: Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                <$ty>::try_io(self, interest, f)
            }
        }
    };
}
impl_socket!(TcpStream);
impl_socket!(UnixStream);

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TunnelEnd {
    /// Both sides closed their direction.
    Closed,
    /// No byte moved either way for the idle timeout.
    IdleTimeout,
    /// A read or write failed (reset, broken pipe).
    Error,
    /// A policy reload revoked access to the destination.
    Revoked,
}

impl TunnelEnd {
    /// Lower-case name for logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TunnelEnd::Closed => "closed",
            TunnelEnd::IdleTimeout => "idle-timeout",
            TunnelEnd::Error => "error",
            TunnelEnd::Revoked => "revoked",
        }
    }
}

/// Byte counts of a tunnel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transferred {
    /// Bytes from the client to the upstream.
    pub(crate) up: u64,
    /// Bytes from the upstream to the client.
    pub(crate) down: u64,
}

/// Live byte counters of a tunnel, readable even if the relay is cut short.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    up: AtomicU64,
    down: AtomicU64,
}

impl Counters {
    /// Counts `bytes` moved from the client to the upstream.
    pub(crate) fn add_up(&self, bytes: u64) {
        self.up.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` moved from the upstream to the client.
    pub(crate) fn add_down(&self, bytes: u64) {
        self.down.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The bytes moved so far.
    pub(crate) fn snapshot(&self) -> Transferred {
        Transferred {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        }
    }
}

/// Relays until both directions are closed, an error occurs, or nothing moves for `idle`;
/// bytes are counted in `moved` as they go.
pub(crate) async fn relay<C: Socket, U: Socket>(
    client: &C,
    upstream: &U,
    idle: Duration,
    moved: &Counters,
) -> TunnelEnd {
    let started = Instant::now();
    let activity = Activity::default();
    let both = async {
        tokio::try_join!(
            pump(client, upstream, &activity, started, &moved.up),
            pump(upstream, client, &activity, started, &moved.down)
        )
    };
    tokio::select! {
        result = both => match result {
            Ok(_) => TunnelEnd::Closed,
            Err(_) => TunnelEnd::Error,
        },
        () = activity.idle_for(idle, started) => TunnelEnd::IdleTimeout,
    }
}

/// Writes all of `bytes` to `to`.
pub(crate) async fn write_all<S: Socket>(to: &S, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Copies `from` to `to` until end of stream, then half-closes `to`.
async fn pump<F: Socket, T: Socket>(
    from: &F,
    to: &T,
    activity: &Activity,
    started: Instant,
    total: &AtomicU64,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut bulk: Option<SplicePipe> = None;
    loop {
        from.readable().await?;
        let moved = match &bulk {
            Some(pipe) => pipe.splice_burst(from, to).await,
            None => copy_burst(from, to, &mut buf).await,
        };
        match moved {
            Ok(0) => {
                // Half-close: the peer may still be sending the other way.
                return match socket2::SockRef::from(to).shutdown(Shutdown::Write) {
                    Err(err) if err.kind() != io::ErrorKind::NotConnected => Err(err),
                    _ => Ok(()),
                };
            }
            Ok(moved) => {
                total.fetch_add(moved as u64, Ordering::Relaxed);
                activity.touch(started);
                bulk = match bulk {
                    Some(_) if moved < BULK_END => None,
                    None if moved == CHUNK => SplicePipe::new().ok(),
                    kept => kept,
                };
            }
            // Drained: give the buffer back so a quiet tunnel costs no buffer memory.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => buf = Vec::new(),
            Err(err) => return Err(err),
        }
    }
}

/// Reads one chunk from `from` through user space and writes it all to `to`.
async fn copy_burst<F: Socket, T: Socket>(
    from: &F,
    to: &T,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    if buf.capacity() == 0 {
        // Uninitialised: zeroing 64 KiB per burst showed up in profiles.
        *buf = Vec::with_capacity(CHUNK);
    }
    buf.clear();
    let read = from.try_read_buf(buf)?;
    write_all(to, &buf[..read]).await?;
    Ok(read)
}

/// A non-blocking kernel pipe for moving a bulk burst socket to socket with splice(2).
struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SplicePipe {
    fn new() -> io::Result<SplicePipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        Ok(SplicePipe { read, write })
    }

    /// Moves up to one chunk from `from` into the pipe, then all of it out to `to`.
    /// The pipe is empty before and after, so the read side never blocks on it.
    async fn splice_burst<F: Socket, T: Socket>(&self, from: &F, to: &T) -> io::Result<usize> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        let read = from.try_io(Interest::READABLE, || {
            Ok(splice(from.as_fd(), None, &self.write, None, CHUNK, flags)?)
        })?;
        let mut left = read;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, to.as_fd(), None, left, flags)?)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => left -= written,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        Ok(read)
    }
}

/// Milliseconds since the tunnel started at which a byte last moved.
#[derive(Default)]
struct Activity(AtomicU64);

impl Activity {
    fn touch(&self, started: Instant) {
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.store(millis, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration, started: Instant) {
        loop {
            let last = self.0.load(Ordering::Relaxed);
            tokio::time::sleep_until(started + Duration::from_millis(last) + idle).await;
            if self.0.load(Ordering::Relaxed) == last {
                return;
            }
        }
    }
}
