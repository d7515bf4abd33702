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
//! - `sharded`: the sharded adapter's (`createShardedAdapter`, Redis 7).
//! - `topics`: the core API's topics across nodes over a link.

pub(crate) mod classic;
pub(crate) mod link;
pub(crate) mod msgpack;
pub(crate) mod sharded;
pub(crate) mod topics;
pub(crate) mod wire;

use std::sync::Arc;

use bytes::Bytes;

use link::{LinkState, RedisLink};
use wire::Broadcast;

/// Where what arrives goes (the Socket.IO layer implements it).
pub(crate) trait RemoteHandler: Send + Sync + 'static {
    /// A broadcast another node (or an emitter) published in `nsp`.
    fn broadcast(&self, b: Broadcast);
    /// What arrived so far is handled: write what it queued.
    fn drained(&self) {}
    /// A request or response for JS: the channel, the message as JSON text
    /// (binaries as placeholders for `attachments`).
    fn message(&self, channel: &str, json: String, attachments: Vec<Bytes>);
    /// The link's state changed (`error`: why, when it went down).
    fn state(&self, state: LinkState, error: Option<String>);
}

/// One Socket.IO server as a node of a Redis fleet, whichever protocol the
/// fleet speaks (classic or sharded).
pub(crate) trait Fleet: Send + Sync + 'static {
    /// This node's uid (its own messages, echoed by Redis, are skipped).
    fn uid(&self) -> &str;
    fn link(&self) -> &Arc<RedisLink>;
    /// The subscriptions of namespace `nsp`; once per namespace.
    fn add_namespace(&self, nsp: &str);
    /// Those of `nsp` dropped (its namespace is gone).
    fn remove_namespace(&self, nsp: &str);
    /// Room `room` of `nsp` now has members here: the sharded dynamic
    /// modes subscribe to its channel. Nothing for the others.
    fn add_room(&self, _nsp: &str, _room: &str) {}
    /// The room emptied here.
    fn remove_room(&self, _nsp: &str, _room: &str) {}
    /// A local broadcast for the other nodes (not `local`). False: dropped.
    fn publish_broadcast(&self, b: &Broadcast) -> bool;
}

/// Which protocol a fleet speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `createAdapter` of @socket.io/redis-adapter.
    Classic,
    /// `createShardedAdapter`, with its subscription mode.
    Sharded(sharded::Mode),
}

/// Connects (inside the runtime) as node `uid` of the fleet on `key`
/// (`tls`: settings for a `rediss://` URL).
pub(crate) fn connect(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    key: String,
    uid: String,
    protocol: Protocol,
    handler: Arc<dyn RemoteHandler>,
) -> Result<Arc<dyn Fleet>, String> {
    Ok(match protocol {
        Protocol::Classic => Arc::new(classic::Classic::connect(url, tls, key, uid, handler)?),
        Protocol::Sharded(mode) => Arc::new(sharded::Sharded::connect(url, tls, key, uid, mode, handler)?),
    })
}
