//! The network below the server: [`listen`]ing sockets, [`resolve`] (pinned names, then
//! DNS), [`dial`] (classify every resolved address, connect to the checked one) and the
//! [`tunnel`]'s byte relay.

pub mod dial;
pub mod listen;
pub mod resolve;
pub(crate) mod tunnel;
