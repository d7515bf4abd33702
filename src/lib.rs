//! ferrosocket: the Rust core of a WebSocket, Engine.IO and Socket.IO server
//! for Node.js.
//!
//! Layers, each depending only on those below it:
//!
//! | module          | job                                                               |
//! |-----------------|-------------------------------------------------------------------|
//! | [`napi`]        | the only N-API code: `NativeApp`, `NativeSocketIo`, `NativeEngineIo`, options, batched events to JS, polling requests and fd hand-over |
//! | [`socketio`]    | Socket.IO v5: packet codec (pure), namespaces, binary attachments, rooms, broadcast framed once |
//! | [`adapter`]     | rooms and the selection of a broadcast (socket.io's adapter; local membership), the recovery log, and the Redis adapter (`adapter::redis`: MessagePack and message codecs, pure; the link) |
//! | [`engineio`]    | Engine.IO v4: packet codec (pure), sessions over polling or WebSocket, upgrade, heartbeat |
//! | [`ws`]          | handshake + frame codecs (pure), connections (reporting to a `ConnHost`) in epoll groups, routes, registry, accept, fan-out |
//! | [`pubsub`]      | the topic tree (topic <-> subscribers), beside `ws`               |
//! | [`net`]         | runtime, listeners (SO_REUSEPORT, IPv4/IPv6), rustls config       |
//! | [`json`]        | the one JSON string writer the codecs share                       |
//!
//! `cargo test` runs without Node: nothing below `napi` knows N-API exists.
//! The `node` feature (default) builds that layer; fuzzing builds without it,
//! when only the `fuzzing` entry points use the core.
#![cfg_attr(not(feature = "node"), allow(dead_code, unused_imports))]

pub(crate) mod adapter;
pub(crate) mod engineio;
pub(crate) mod json;
#[cfg(feature = "node")]
pub mod napi;
pub(crate) mod net;
pub(crate) mod pubsub;
pub(crate) mod socketio;
pub(crate) mod ws;

#[cfg(any(fuzzing, test))]
pub mod fuzzing;
#[cfg(test)]
mod test_support;
