//! Short exchanges on fresh connections: a tunnel with one small echo (setup and filter
//! tests, and how the memory test opens its tunnels) and a refused CONNECT (denial test).

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::Context;
use crate::{
    Error, Route, Target,
    runner::Operation,
    wire::{self, drain_body, send_connect},
};

/// The message echoed through each new tunnel.
const PING: &[u8; 16] = b"sandbox-ping-16b";

/// Opens a tunnel to the echo upstream and echoes one 16-byte message through it.
pub(super) async fn open_and_ping(route: Route, echo: &Target) -> Result<TcpStream, Error> {
    let mut stream = wire::open_tunnel(route, echo).await?;
    stream
        .write_all(PING)
        .await
        .map_err(Error::io("send ping"))?;
    let mut back = [0u8; PING.len()];
    stream
        .read_exact(&mut back)
        .await
        .map_err(Error::io("read ping"))?;
    if &back != PING {
        return Err(Error::Corrupt { offset: 0 });
    }
    Ok(stream)
}

/// New connection + CONNECT + 16-byte echo + close.
pub(super) struct Setup {
    route: Route,
    echo: Arc<Target>,
}

impl Setup {
    pub(super) fn new(ctx: &Context) -> Self {
        Self {
            route: ctx.route,
            echo: Arc::new(ctx.echo.clone()),
        }
    }
}

impl Operation for Setup {
    async fn run(&mut self) -> Result<(), Error> {
        open_and_ping(self.route, &self.echo).await.map(drop)
    }
}

/// New connection + CONNECT to a name outside the allowlist, which must be refused with
/// 403; the body is read before closing so the proxy sees an orderly close.
pub(super) struct Deny {
    proxy: SocketAddr,
    denied: Arc<Target>,
}

impl Deny {
    pub(super) fn new(proxy: SocketAddr, ctx: &Context) -> Self {
        Self {
            proxy,
            denied: Arc::new(ctx.denied.clone()),
        }
    }
}

impl Operation for Deny {
    async fn run(&mut self) -> Result<(), Error> {
        let mut stream = wire::connect(self.proxy).await?;
        let (head, rest) = send_connect(&mut stream, &self.denied).await?;
        if head.status != 403 {
            return Err(Error::Status {
                expected: 403,
                got: head.status,
            });
        }
        drain_body(&mut stream, head.content_length, rest.len()).await
    }
}
