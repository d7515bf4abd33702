//! RFC 6455: the upgrade handshake, the frame codec, connections and the
//! server that routes, accepts, sweeps and fans out.
//!
//! Bottom up: `frame` and `handshake` are pure codecs (bytes in, values out)
//! for unit tests and fuzzers; `conn` owns one socket and states what it
//! needs of its host (`ConnHost`) and what its route's handler gets
//! (`WsHandler`); `group` drives many connections from one thread through
//! `GroupHost`; `routes`, `registry` and `sink` are the server's tables and
//! its requests upward; `server` owns them all and is the host; `accept`
//! turns listeners and handed-over sockets into connections; `http1` serves
//! HTTP routes (keep-alive, streamed bodies and responses) with `body`, the
//! pure HTTP body codec.

mod accept;
pub(crate) mod body;
pub(crate) mod conn;
pub(crate) mod deflate;
pub(crate) mod frame;
pub(crate) mod group;
pub(crate) mod handshake;
pub(crate) mod http1;
pub(crate) mod inflow;
mod registry;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod sink;
#[cfg(test)]
mod tests;

pub(crate) use conn::{Behavior, Conn, ConnHost, Forward, WsHandler};
pub(crate) use handshake::Request;
pub(crate) use inflow::{Inflow, DEFAULT_INFLOW_LIMIT};
pub(crate) use routes::{HttpRoute, HttpService, Pattern, ServiceFuture, WsRoute};
pub(crate) use server::{ServerCore, ServerOptions};
pub(crate) use sink::{Decision, RequestKind, RequestSink, ResponsePart};
