//! ferrosocket: a WebSocket (and, later, Socket.IO) server core for Node.js.
//!
//! Layers, each depending only on those below it:
//!
//! | module          | job                                                               |
//! |-----------------|-------------------------------------------------------------------|
//! | [`napi`]        | the only N-API code: `NativeApp`, options, batched events to JS    |
//! | [`ws`]          | handshake + frame codecs (pure), connections, server, fan-out     |
//! | [`pubsub`]      | the topic tree (topic <-> subscribers), beside `ws`               |
//! | [`net`]         | runtime, listeners (SO_REUSEPORT, IPv4/IPv6), rustls config       |
//!
//! `cargo test` runs without Node: nothing below `napi` knows N-API exists.

pub mod napi;
pub(crate) mod net;
pub(crate) mod pubsub;
pub(crate) mod ws;

#[cfg(any(fuzzing, test))]
pub mod fuzzing;
