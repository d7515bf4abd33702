//! RFC 6455: the upgrade handshake, the frame codec, connections and the
//! server that routes, accepts, sweeps and fans out.
//!
//! `frame` and `handshake` are pure codecs (bytes in, values out) for unit
//! tests and fuzzers; `conn` owns a socket; `server` owns them all.

pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod group;
pub(crate) mod handshake;
pub(crate) mod inflow;
pub(crate) mod server;
#[cfg(test)]
mod tests;

pub(crate) use conn::{Behavior, Conn, SendStatus};
pub(crate) use handshake::Request;
pub(crate) use inflow::{Inflow, DEFAULT_INFLOW_LIMIT};
pub(crate) use server::{Decision, HttpRoute, Pattern, RequestKind, ServerCore, ServerOptions, WsHandler, WsRoute};
