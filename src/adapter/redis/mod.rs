//! The Redis adapter (#12): ferrosocket as a node of a socket.io fleet
//! running `@socket.io/redis-adapter` (classic protocol), reached by
//! `@socket.io/redis-emitter` too. Broadcasts cross nodes here, in Rust;
//! requests (fetchSockets, serverSideEmit, remote join/leave/disconnect)
//! are answered in JS, which holds what they ask about.
//!
//! - `msgpack`: notepack.io's MessagePack (pure).
//! - `wire`: the adapter's messages (pure).
//! - `link`: the connections, subscriptions and publishes (fred), generic.
//! - `classic`: the classic adapter's channels and routing over a link.
//! - `topics`: the core API's topics across nodes over a link.

pub(crate) mod classic;
pub(crate) mod link;
pub(crate) mod msgpack;
pub(crate) mod topics;
pub(crate) mod wire;
