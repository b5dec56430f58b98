//! What runs in the agent container, as its PID 1: [`relay`] forwards a loopback port
//! to the sidecar's socket while [`init`] runs the agent. It makes no decisions; the
//! proxy on the other side of the socket does. [`pipe`] is run by the launcher (an exec
//! with attached streams) to carry a login callback into the container's loopback.

mod init;
pub(crate) mod pipe;
pub(crate) mod relay;
