//! The sharded `@socket.io/redis-adapter` protocol (`createShardedAdapter`,
//! sharded pub/sub of Redis 7) over a [`RedisLink`]: per namespace, channel
//! `{key}#{nsp}#` for its messages and `{key}#{nsp}#{uid}#` for the
//! responses meant for this node; in the dynamic modes one more per room
//! while the room has members here, so a broadcast to one room reaches only
//! the nodes that hold it. Messages are socket.io-adapter's
//! `ClusterAdapter` ones: broadcasts without acks go to
//! [`RemoteHandler::broadcast`] (no JS), the rest to
//! [`RemoteHandler::message`] as JSON.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::link::{LinkHandler, LinkState, RedisLink};
use super::wire::{self, Broadcast, ClusterMessage};
use super::{Fleet, RemoteHandler};

/// The sharded adapter's `subscriptionMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Two channels per namespace.
    Static,
    /// Plus one per public room (not a socket's own).
    Dynamic,
    /// Plus one per room, sockets' own rooms included.
    DynamicPrivate,
}

/// socket.io's `looksLikeASocketId`: a room of 20 characters (JS counts
/// UTF-16 units) is taken for a socket id, whose room has no channel in the
/// dynamic mode.
fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// The channel a broadcast without acks goes to: its room's, when it
/// targets exactly one room that has a channel in this mode; otherwise the
/// namespace's. (A broadcast with acks always goes to the namespace's: its
/// answers are counted against every node.)
pub(crate) fn broadcast_channel(key: &str, mode: Mode, b: &Broadcast) -> String {
    match (mode, b.rooms.as_slice()) {
        (Mode::Dynamic, [room]) if !looks_like_a_socket_id(room) => room_channel(key, &b.nsp, room),
        (Mode::DynamicPrivate, [room]) => room_channel(key, &b.nsp, room),
        _ => namespace_channel(key, &b.nsp),
    }
}

fn namespace_channel(key: &str, nsp: &str) -> String {
    format!("{key}#{nsp}#")
}

fn room_channel(key: &str, nsp: &str, room: &str) -> String {
    format!("{key}#{nsp}#{room}#")
}

struct Router {
    uid: String,
    handler: Arc<dyn RemoteHandler>,
}

impl LinkHandler for Router {
    fn message(&self, channel: &str, payload: &[u8]) -> bool {
        match wire::decode_cluster(payload) {
            // This node's own messages, echoed by Redis: it applied them
            // before publishing.
            Ok(ClusterMessage::Broadcast(b)) if b.uid == self.uid => true,
            Ok(ClusterMessage::Other { uid, .. }) if uid == self.uid => true,
            Ok(ClusterMessage::Broadcast(b)) => {
                self.handler.broadcast(b);
                true
            }
            Ok(ClusterMessage::Other { json, attachments, .. }) => {
                self.handler.message(channel, json, attachments);
                true
            }
            Err(_) => false,
        }
    }

    fn drained(&self) {
        self.handler.drained();
    }

    fn state(&self, state: LinkState, error: Option<String>) {
        self.handler.state(state, error);
    }
}

/// One Socket.IO server's node in a sharded Redis fleet.
pub(crate) struct Sharded {
    key: String,
    uid: String,
    mode: Mode,
    link: Arc<RedisLink>,
    namespaces: Mutex<HashSet<String>>,
}

impl Sharded {
    /// Connects (inside the runtime): `key` is the channel prefix, `uid`
    /// this node.
    pub(crate) fn connect(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        key: String,
        uid: String,
        mode: Mode,
        handler: Arc<dyn RemoteHandler>,
    ) -> Result<Self, String> {
        let router = Arc::new(Router { uid: uid.clone(), handler });
        let link = RedisLink::connect(url, tls, router, true)?;
        Ok(Self { key, uid, mode, link, namespaces: Mutex::new(HashSet::new()) })
    }

    fn channels_of(&self, nsp: &str) -> Vec<String> {
        let channel = namespace_channel(&self.key, nsp);
        let response = format!("{channel}{}#", self.uid);
        vec![channel, response]
    }
}

impl Fleet for Sharded {
    fn uid(&self) -> &str {
        &self.uid
    }

    fn link(&self) -> &Arc<RedisLink> {
        &self.link
    }

    fn add_namespace(&self, nsp: &str) {
        if self.namespaces.lock().insert(nsp.to_string()) {
            self.link.subscribe(self.channels_of(nsp), Vec::new());
        }
    }

    fn remove_namespace(&self, nsp: &str) {
        if self.namespaces.lock().remove(nsp) {
            self.link.unsubscribe(self.channels_of(nsp), Vec::new());
        }
    }

    /// The caller (JS, which knows a public room from a socket's own)
    /// asks only for the rooms the mode gives a channel.
    fn add_room(&self, nsp: &str, room: &str) {
        if self.mode != Mode::Static {
            self.link.subscribe(vec![room_channel(&self.key, nsp, room)], Vec::new());
        }
    }

    /// A room named as this node's uid shares the response channel's name:
    /// that channel stays.
    fn remove_room(&self, nsp: &str, room: &str) {
        if self.mode != Mode::Static && room != self.uid {
            self.link.unsubscribe(vec![room_channel(&self.key, nsp, room)], Vec::new());
        }
    }

    fn publish_broadcast(&self, b: &Broadcast) -> bool {
        match wire::encode_cluster_broadcast(b) {
            Ok(bytes) => self.link.publish(broadcast_channel(&self.key, self.mode, b), bytes),
            // Not encodable (cannot happen for what the codec wrote): dropped, counted.
            Err(_) => {
                self.link.stats.dropped_publishes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::redis::wire::Flags;

    fn to(rooms: &[&str]) -> Broadcast {
        Broadcast {
            uid: "u".into(),
            nsp: "/n".into(),
            data: "[\"e\"]".into(),
            attachments: vec![],
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            except: vec![],
            flags: Flags::default(),
        }
    }

    #[test]
    fn broadcasts_go_to_the_channel_socket_io_computes() {
        let sid = "abcdefghij0123456789";
        assert_eq!(broadcast_channel("k", Mode::Dynamic, &to(&["r"])), "k#/n#r#");
        assert_eq!(broadcast_channel("k", Mode::Dynamic, &to(&[sid])), "k#/n#");
        assert_eq!(broadcast_channel("k", Mode::DynamicPrivate, &to(&[sid])), format!("k#/n#{sid}#"));
        assert_eq!(broadcast_channel("k", Mode::Dynamic, &to(&["a", "b"])), "k#/n#");
        assert_eq!(broadcast_channel("k", Mode::Dynamic, &to(&[])), "k#/n#");
        assert_eq!(broadcast_channel("k", Mode::Static, &to(&["r"])), "k#/n#");
        // 20 UTF-16 units, 40 bytes: JS's length, not Rust's.
        assert!(looks_like_a_socket_id(&"é".repeat(20)));
        assert!(!looks_like_a_socket_id(&"a".repeat(19)));
    }
}
