//! Test 1 (and 7): bulk data echoed through CONNECT tunnels, verified byte for byte.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
    sync::Semaphore,
    task::JoinSet,
};

use super::Context;
use crate::{Error, Pattern, Record, TestName, runner::CpuMeter, runner::Tally, wire};

/// Size of each write and of the read buffer.
const CHUNK: usize = 64 * 1024;

/// Chunks a tunnel may have sent but not yet received back. Bounded, so that a proxy
/// which stops reading one side while the other is blocked cannot pile up data without
/// end, and every system is measured with the same amount of data in flight.
const IN_FLIGHT_CHUNKS: usize = 16;

/// Opens `tunnels` tunnels to the echo upstream, streams the pattern through all of them
/// for the window, and records the bytes that came back verified.
pub(super) async fn run(ctx: &Context, tunnels: u32) -> Result<Record, Error> {
    let pattern = Arc::new(Pattern::new(CHUNK));
    let received = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for _ in 0..tunnels {
        let open = wire::open_tunnel(ctx.route, &ctx.echo);
        streams.push(
            tokio::time::timeout(ctx.window.op_timeout, open)
                .await
                .map_err(|_| Error::Timeout)??,
        );
    }
    let mut set = JoinSet::new();
    let meter = CpuMeter::start(ctx.process)?;
    for stream in streams {
        let (reader, writer) = stream.into_split();
        let credit = Arc::new(Semaphore::new(IN_FLIGHT_CHUNKS));
        set.spawn(write_pattern(
            writer,
            Arc::clone(&pattern),
            Arc::clone(&credit),
        ));
        let received = Arc::clone(&received);
        set.spawn(read_and_verify(
            reader,
            Arc::clone(&pattern),
            received,
            credit,
        ));
    }
    tokio::time::sleep(ctx.window.duration).await;
    let bytes = received.load(Ordering::Relaxed);
    let (elapsed, cpu) = meter.stop()?;
    // A task that ended inside the window failed; the rest are stopped here.
    let mut tally = Tally::default();
    while let Some(done) = set.try_join_next() {
        if let Err(e) = done? {
            tally.fail(&e);
        }
    }
    set.shutdown().await;
    let mut record = Record::new(&ctx.system, TestName::Tunnel, tunnels);
    record.window_s = elapsed.as_secs_f64();
    record.ops = u64::from(tunnels);
    record.errors = tally.errors;
    record.first_error = tally.first_error;
    record.bytes = Some(bytes);
    record.proxy_cpu_s = cpu.map(|c| c.as_secs_f64());
    // Let the proxy and the upstream close the tunnels before the next test.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(record)
}

/// Writes the pattern chunk after chunk, each once a chunk of credit is available.
async fn write_pattern(
    mut writer: OwnedWriteHalf,
    pattern: Arc<Pattern>,
    credit: Arc<Semaphore>,
) -> Result<(), Error> {
    let mut offset = 0u64;
    loop {
        credit
            .acquire()
            .await
            .map_err(|_| Error::Closed { op: "bulk echo" })?
            .forget();
        writer
            .write_all(pattern.at(offset, CHUNK))
            .await
            .map_err(Error::io("tunnel write"))?;
        offset += CHUNK as u64;
    }
}

/// Reads the echo, verifies it, and gives a chunk of credit back per chunk received.
async fn read_and_verify(
    mut reader: OwnedReadHalf,
    pattern: Arc<Pattern>,
    received: Arc<AtomicU64>,
    credit: Arc<Semaphore>,
) -> Result<(), Error> {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(Error::io("tunnel read"))?;
        if n == 0 {
            return Err(Error::Closed { op: "bulk echo" });
        }
        pattern.verify(offset, &buf[..n])?;
        let chunks_before = offset / CHUNK as u64;
        offset += n as u64;
        credit.add_permits((offset / CHUNK as u64 - chunks_before) as usize);
        received.fetch_add(n as u64, Ordering::Relaxed);
    }
}
