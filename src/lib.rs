//! ferrosocket: a WebSocket (and, later, Socket.IO) server core for Node.js.
//!
//! Layers, each depending only on those below it:
//!
//! | module          | job                                                               |
//! |-----------------|-------------------------------------------------------------------|
//! | [`napi`]        | the only N-API code: `NativeApp`, options, batched events to JS    |
//! | [`socketio`]    | Socket.IO v5 packet codec (pure); namespaces, acks: #3            |
//! | [`engineio`]    | Engine.IO v4 packet codec (pure); sessions and transports: #3     |
//! | [`ws`]          | handshake + frame codecs (pure), connections, server, fan-out     |
//! | [`pubsub`]      | the topic tree (topic <-> subscribers), beside `ws`               |
//! | [`net`]         | runtime, listeners (SO_REUSEPORT, IPv4/IPv6), rustls config       |
//!
//! `cargo test` runs without Node: nothing below `napi` knows N-API exists.
//! The `node` feature (default) builds that layer; fuzzing builds without it,
//! when only the `fuzzing` entry points use the core.
#![cfg_attr(not(feature = "node"), allow(dead_code, unused_imports))]

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
