//! Relaying bytes both ways through an established CONNECT tunnel.
//!
//! Each direction reads into a buffer that exists only while bytes flow: an idle tunnel
//! holds no buffer at all, which keeps thousands of open, quiet tunnels (streaming model
//! responses waiting for the next token) cheap. End of stream in one direction is passed
//! on as a half-close (`shutdown(SHUT_WR)`) while the other direction keeps flowing.

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

/// Bytes read per system call while data flows.
const CHUNK: usize = 64 * 1024;

/// A non-blocking stream socket the relay can drive by readiness.
pub trait Socket: AsFd + Send + Sync + 'static {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads without blocking into the spare capacity of `buf` (no zeroing first).
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize>;
    /// Writes without blocking.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
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
        }
    };
}
impl_socket!(TcpStream);
impl_socket!(UnixStream);

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelEnd {
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
    pub fn as_str(self) -> &'static str {
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
pub struct Transferred {
    /// Bytes from the client to the upstream.
    pub up: u64,
    /// Bytes from the upstream to the client.
    pub down: u64,
}

/// Live byte counters of a tunnel, readable even if the relay is cut short.
#[derive(Debug, Default)]
pub struct Counters {
    up: AtomicU64,
    down: AtomicU64,
}

impl Counters {
    /// The bytes moved so far.
    pub fn snapshot(&self) -> Transferred {
        Transferred {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        }
    }
}

/// Relays until both directions are closed, an error occurs, or nothing moves for `idle`;
/// bytes are counted in `moved` as they go.
pub async fn relay<C: Socket, U: Socket>(
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
pub async fn write_all<S: Socket>(to: &S, mut bytes: &[u8]) -> io::Result<()> {
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
    loop {
        from.readable().await?;
        if buf.capacity() == 0 {
            // Uninitialised: zeroing 64 KiB per burst showed up as 3-4% of the CPU of
            // a short tunnel.
            buf = Vec::with_capacity(CHUNK);
        }
        buf.clear();
        match from.try_read_buf(&mut buf) {
            Ok(0) => {
                // Half-close: the peer may still be sending the other way.
                return match socket2::SockRef::from(to).shutdown(Shutdown::Write) {
                    Err(err) if err.kind() != io::ErrorKind::NotConnected => Err(err),
                    _ => Ok(()),
                };
            }
            Ok(read) => {
                activity.touch(started);
                write_all(to, &buf[..read]).await?;
                total.fetch_add(read as u64, Ordering::Relaxed);
                activity.touch(started);
            }
            // Drained: give the buffer back so a quiet tunnel costs no buffer memory.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => buf = Vec::new(),
            Err(err) => return Err(err),
        }
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
