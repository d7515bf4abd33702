//! The classic `@socket.io/redis-adapter` protocol over a [`RedisLink`]:
//! per namespace, a pattern subscription for its broadcasts (every room)
//! and channels for requests, responses and the responses meant for this
//! node; broadcasts from other nodes go to [`RemoteHandler::broadcast`] (no
//! JS), requests and responses to [`RemoteHandler::message`] as JSON.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::link::{LinkHandler, LinkState, RedisLink};
use super::wire::{self, Broadcast};

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

/// Reads what arrives on the classic channels of `key`.
struct Router {
    key: String,
    uid: String,
    handler: Arc<dyn RemoteHandler>,
}

impl LinkHandler for Router {
    fn message(&self, channel: &str, payload: &[u8]) -> bool {
        let rest = channel.strip_prefix(self.key.as_str()).unwrap_or("");
        if rest.starts_with('#') {
            match wire::decode_broadcast(payload) {
                Ok(b) if b.uid == self.uid => true,
                Ok(b) => {
                    self.handler.broadcast(b);
                    true
                }
                Err(_) => false,
            }
        } else if rest.starts_with("-request#") || rest.starts_with("-response#") {
            match wire::message_to_json(payload) {
                Ok((json, attachments)) => {
                    self.handler.message(channel, json, attachments);
                    true
                }
                Err(_) => false,
            }
        } else {
            true
        }
    }

    fn drained(&self) {
        self.handler.drained();
    }

    fn state(&self, state: LinkState, error: Option<String>) {
        self.handler.state(state, error);
    }
}

/// One Socket.IO server's node in a classic Redis fleet.
pub(crate) struct Classic {
    key: String,
    uid: String,
    pub(crate) link: Arc<RedisLink>,
    namespaces: Mutex<HashSet<String>>,
}

impl Classic {
    /// Connects (inside the runtime): `key` names the channels, `uid` this node.
    pub(crate) fn connect(
        url: &str,
        key: String,
        uid: String,
        handler: Arc<dyn RemoteHandler>,
    ) -> Result<Self, String> {
        let router = Arc::new(Router { key: key.clone(), uid: uid.clone(), handler });
        let link = RedisLink::connect(url, router)?;
        Ok(Self { key, uid, link, namespaces: Mutex::new(HashSet::new()) })
    }

    pub(crate) fn uid(&self) -> &str {
        &self.uid
    }

    /// The subscriptions for `nsp`: its broadcasts (every room), its
    /// requests, its responses, and the responses meant for this node.
    /// Once per namespace.
    pub(crate) fn add_namespace(&self, nsp: &str) {
        if self.namespaces.lock().insert(nsp.to_string()) {
            let (channels, patterns) = self.channels_of(nsp);
            self.link.subscribe(channels, patterns);
        }
    }

    /// The subscriptions of `nsp` dropped (its namespace is gone).
    pub(crate) fn remove_namespace(&self, nsp: &str) {
        if self.namespaces.lock().remove(nsp) {
            let (channels, patterns) = self.channels_of(nsp);
            self.link.unsubscribe(channels, patterns);
        }
    }

    /// A namespace's channels and pattern, as the classic adapter names them.
    fn channels_of(&self, nsp: &str) -> (Vec<String>, Vec<String>) {
        let key = &self.key;
        let channels = vec![
            format!("{key}-request#{nsp}#"),
            format!("{key}-response#{nsp}#"),
            format!("{key}-response#{nsp}#{}#", self.uid),
        ];
        (channels, vec![format!("{key}#{nsp}#*")])
    }

    /// A local broadcast for the other nodes (not `local`). False: dropped.
    pub(crate) fn publish_broadcast(&self, b: &Broadcast) -> bool {
        match wire::encode_broadcast(b) {
            Ok(bytes) => self.link.publish(wire::broadcast_channel(&self.key, &b.nsp, &b.rooms), bytes),
            Err(_) => false,
        }
    }
}
