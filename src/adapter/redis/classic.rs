//! The classic `@socket.io/redis-adapter` protocol over a [`RedisLink`]:
//! per namespace, a pattern subscription for its broadcasts (every room)
//! and channels for requests, responses and the responses meant for this
//! node; broadcasts from other nodes go to [`RemoteHandler::broadcast`] (no
//! JS), requests and responses to [`RemoteHandler::message`] as JSON.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::link::{LinkHandler, LinkState, RedisLink};
use super::wire::{self, Broadcast};
use super::{Fleet, RemoteHandler};

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
    link: Arc<RedisLink>,
    namespaces: Mutex<HashSet<String>>,
}

impl Classic {
    /// Connects (inside the runtime): `key` names the channels, `uid` this node.
    pub(crate) fn connect(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        key: String,
        uid: String,
        handler: Arc<dyn RemoteHandler>,
    ) -> Result<Self, String> {
        let router = Arc::new(Router { key: key.clone(), uid: uid.clone(), handler });
        let link = RedisLink::connect(url, tls, router, false)?;
        Ok(Self { key, uid, link, namespaces: Mutex::new(HashSet::new()) })
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
}

impl Fleet for Classic {
    fn uid(&self) -> &str {
        &self.uid
    }

    fn link(&self) -> &Arc<RedisLink> {
        &self.link
    }

    /// The subscriptions for `nsp`: its broadcasts (every room), its
    /// requests, its responses, and the responses meant for this node.
    /// Once per namespace.
    fn add_namespace(&self, nsp: &str) {
        if self.namespaces.lock().insert(nsp.to_string()) {
            let (channels, patterns) = self.channels_of(nsp);
            self.link.subscribe(channels, patterns);
        }
    }

    fn remove_namespace(&self, nsp: &str) {
        if self.namespaces.lock().remove(nsp) {
            let (channels, patterns) = self.channels_of(nsp);
            self.link.unsubscribe(channels, patterns);
        }
    }

    fn publish_broadcast(&self, b: &Broadcast) -> bool {
        match wire::encode_broadcast(b) {
            Ok(bytes) => self.link.publish(wire::broadcast_channel(&self.key, &b.nsp, &b.rooms), bytes),
            // Not encodable (cannot happen for what the codec wrote): dropped, counted.
            Err(_) => {
                self.link.stats.dropped_publishes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }
        }
    }
}
