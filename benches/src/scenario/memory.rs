//! Test 6: the proxy's resident memory idle and with many idle tunnels open.

use std::time::Duration;

use tokio::{net::TcpStream, task::JoinSet};

use super::{Context, exchange::open_and_ping};
use crate::{Error, Process, Record, TestName, runner::Tally};

/// Tunnels opened at once while filling up to the next step.
const OPENING_CONCURRENCY: usize = 64;

/// Time given to the proxy to settle before its RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Reads the RSS with no tunnel, then opens idle tunnels (each proven by one echo) up to
/// each of `ctx.idle_tunnels` and reads it again; all tunnels are closed at the end.
pub(super) async fn run(ctx: &Context) -> Result<Vec<Record>, Error> {
    let Some(process) = ctx.process else {
        return Ok(Vec::new());
    };
    let mut open: Vec<TcpStream> = Vec::new();
    let mut tally = Tally::default();
    let mut records = vec![sample(ctx, process, 0, &tally)?];
    for &step in &ctx.idle_tunnels {
        fill(ctx, &mut open, step as usize, &mut tally).await?;
        tokio::time::sleep(SETTLE).await;
        records.push(sample(ctx, process, open.len() as u32, &tally)?);
    }
    drop(open);
    // Let the proxy tear the tunnels down before the next test.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(records)
}

/// Opens tunnels until `target` are open; gives up on the step once
/// [`OPENING_CONCURRENCY`] opens have failed in it, so a proxy that refuses or stalls
/// them cannot keep the test running for long.
async fn fill(
    ctx: &Context,
    open: &mut Vec<TcpStream>,
    target: usize,
    tally: &mut Tally,
) -> Result<(), Error> {
    let mut set = JoinSet::new();
    let budget = tally.errors + OPENING_CONCURRENCY as u64;
    while open.len() < target && tally.errors < budget {
        while set.len() < OPENING_CONCURRENCY && open.len() + set.len() < target {
            let (route, echo, bound) = (ctx.route, ctx.echo.clone(), ctx.window.op_timeout);
            set.spawn(async move {
                tokio::time::timeout(bound, open_and_ping(route, &echo))
                    .await
                    .map_err(|_| Error::Timeout)?
            });
        }
        match set.join_next().await {
            Some(Ok(Ok(stream))) => open.push(stream),
            Some(Ok(Err(e))) => tally.fail(&e),
            Some(Err(join)) => return Err(join.into()),
            None => break,
        }
    }
    Ok(())
}

/// A record of the proxy's RSS with `tunnels` idle tunnels open.
fn sample(ctx: &Context, process: Process, tunnels: u32, tally: &Tally) -> Result<Record, Error> {
    let mut record = Record::new(&ctx.system, TestName::Memory, OPENING_CONCURRENCY as u32);
    record.tunnels = Some(tunnels);
    record.ops = u64::from(tunnels);
    record.errors = tally.errors;
    record.first_error.clone_from(&tally.first_error);
    let rss = process.rss_kib()?;
    record.rss_kib = Some(rss.total);
    record.anon_kib = Some(rss.anonymous);
    Ok(record)
}
