//! What runs in the agent container, as its PID 1: [`relay`] forwards a loopback port
//! to the sidecar's socket while [`init`] runs the agent. It makes no decisions; the
//! proxy on the other side of the socket does.

mod init;
pub(crate) mod relay;
