//! The tests of the comparison, each run against one system at a time.

mod bulk;
mod exchange;
mod http_get;
mod memory;

use crate::{
    Error, Process, Record, Route, Target, TestName, Window,
    runner::{Operation, Outcome, closed_loop},
};

/// Everything a test needs to know about the system under test and its upstreams.
#[derive(Clone, Debug)]
pub struct Context {
    /// Label of the system in the results.
    pub system: String,
    /// Direct, or through the proxy.
    pub route: Route,
    /// The proxy process, for CPU and memory; `None` for the direct path.
    pub process: Option<Process>,
    /// The echo upstream, under a name the proxy allows.
    pub echo: Target,
    /// The HTTP upstream, under a name the proxy allows.
    pub http: Target,
    /// A name the proxy must refuse.
    pub denied: Target,
    /// Test window and per-operation bound.
    pub window: Window,
    /// Allowlist size the proxy was started with (label of the filter test).
    pub entries: u32,
    /// Numbers of idle tunnels at which the memory test reads the RSS.
    pub idle_tunnels: Vec<u32>,
}

/// Runs one test (at each of its concurrency levels) and returns its records.
///
/// Tests that make no sense without a proxy (denial, memory, filter) return nothing on
/// the direct path.
pub async fn run(ctx: &Context, test: TestName) -> Result<Vec<Record>, Error> {
    let proxy = match ctx.route {
        Route::Proxy(addr) => Some(addr),
        Route::Direct => None,
    };
    Ok(match (test, proxy) {
        (TestName::Tunnel, _) => vec![bulk::run(ctx, 1).await?, bulk::run(ctx, 64).await?],
        (TestName::Setup, _) => vec![
            looped(ctx, test, 1, |_| Ok(exchange::Setup::new(ctx))).await?,
            looped(ctx, test, 64, |_| Ok(exchange::Setup::new(ctx))).await?,
        ],
        (TestName::HttpKeepalive, _) => {
            vec![looped(ctx, test, 64, |_| http_get::HttpGet::new(ctx, true)).await?]
        }
        (TestName::HttpClose, _) => {
            vec![looped(ctx, test, 64, |_| http_get::HttpGet::new(ctx, false)).await?]
        }
        (TestName::Deny, Some(proxy)) => {
            vec![looped(ctx, test, 64, |_| Ok(exchange::Deny::new(proxy, ctx))).await?]
        }
        (TestName::Filter, Some(_)) => {
            let mut record = looped(ctx, test, 64, |_| Ok(exchange::Setup::new(ctx))).await?;
            record.entries = Some(ctx.entries);
            vec![record]
        }
        (TestName::Memory, Some(_)) => memory::run(ctx).await?,
        (TestName::Deny | TestName::Filter | TestName::Memory, None) => Vec::new(),
    })
}

/// Runs `concurrency` workers made by `make` in a closed loop and records the outcome.
async fn looped<O: Operation>(
    ctx: &Context,
    test: TestName,
    concurrency: u32,
    make: impl FnMut(u32) -> Result<O, Error>,
) -> Result<Record, Error> {
    let workers = (0..concurrency).map(make).collect::<Result<_, _>>()?;
    let outcome = closed_loop(workers, ctx.window, ctx.process).await?;
    Ok(record(ctx, test, concurrency, outcome))
}

/// A record of `outcome`.
fn record(ctx: &Context, test: TestName, concurrency: u32, outcome: Outcome) -> Record {
    let Outcome {
        tally,
        elapsed,
        cpu,
    } = outcome;
    let mut record = Record::new(&ctx.system, test, concurrency);
    record.window_s = elapsed.as_secs_f64();
    record.ops = tally.ops;
    record.errors = tally.errors;
    record.first_error = tally.first_error;
    record.proxy_cpu_s = cpu.map(|c| c.as_secs_f64());
    if let Some(summary) = tally.latencies.summary() {
        record.p50_us = Some(summary.p50.as_secs_f64() * 1e6);
        record.p99_us = Some(summary.p99.as_secs_f64() * 1e6);
    }
    record
}
