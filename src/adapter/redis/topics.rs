//! The core API's topics across nodes (`App({ scaleOut })`): a publish goes
//! to Redis channel `{prefix}#{topic}` as `[flags][uid length][uid][payload]`
//! (flags bit 0: binary), every node pattern-subscribes `{prefix}#*` and
//! publishes what others sent to its own subscribers, framed once. Not a
//! socket.io format: only ferrosocket nodes read it.

use std::sync::Arc;

use super::link::{LinkHandler, LinkState, RedisLink};

/// Where a topic message from another node goes (the N-API layer: the
/// App's own publish, then a flush).
pub(crate) trait TopicHandler: Send + Sync + 'static {
    fn deliver(&self, topic: &str, payload: &[u8], binary: bool);
    /// What arrived so far is delivered: write what it queued.
    fn drained(&self) {}
    fn state(&self, state: LinkState, error: Option<String>);
}

/// `[flags][uid length][uid][payload]`.
pub(crate) fn encode(uid: &str, binary: bool, payload: &[u8]) -> Vec<u8> {
    let uid = &uid.as_bytes()[..uid.len().min(255)];
    let mut out = Vec::with_capacity(2 + uid.len() + payload.len());
    out.push(u8::from(binary));
    out.push(uid.len() as u8);
    out.extend_from_slice(uid);
    out.extend_from_slice(payload);
    out
}

/// (uid, binary, payload), or None for anything else.
pub(crate) fn decode(msg: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    let (&flags, rest) = msg.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if flags > 1 || rest.len() < usize::from(n) {
        return None;
    }
    let (uid, payload) = rest.split_at(usize::from(n));
    Some((uid, flags == 1, payload))
}

struct Router {
    prefix: String,
    uid: String,
    handler: Arc<dyn TopicHandler>,
}

impl LinkHandler for Router {
    fn message(&self, channel: &str, payload: &[u8]) -> bool {
        let Some(topic) = channel.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('#')) else {
            return true;
        };
        match decode(payload) {
            Some((uid, _, _)) if uid == self.uid.as_bytes() => true,
            // A text message must be UTF-8, as a WebSocket text frame.
            Some((_, binary, data)) if binary || std::str::from_utf8(data).is_ok() => {
                self.handler.deliver(topic, data, binary);
                true
            }
            _ => false,
        }
    }

    fn drained(&self) {
        self.handler.drained();
    }

    fn state(&self, state: LinkState, error: Option<String>) {
        self.handler.state(state, error);
    }
}

/// One App's node among the others publishing under `prefix`.
pub(crate) struct Topics {
    prefix: String,
    uid: String,
    pub(crate) link: Arc<RedisLink>,
}

impl Topics {
    /// Connects and subscribes to every topic under `prefix` (inside the runtime).
    pub(crate) fn connect(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        prefix: String,
        uid: String,
        handler: Arc<dyn TopicHandler>,
    ) -> Result<Self, String> {
        let router = Arc::new(Router { prefix: prefix.clone(), uid: uid.clone(), handler });
        let link = RedisLink::connect(url, tls, router, false)?;
        link.subscribe(Vec::new(), vec![format!("{prefix}#*")]);
        Ok(Self { prefix, uid, link })
    }

    /// A local publish for the other nodes. False: dropped (counted).
    pub(crate) fn publish(&self, topic: &str, payload: &[u8], binary: bool) -> bool {
        self.link.publish(format!("{}#{topic}", self.prefix), encode(&self.uid, binary, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let m = encode("node01", true, &[1, 2, 3]);
        assert_eq!(decode(&m), Some((&b"node01"[..], true, &[1u8, 2, 3][..])));
        assert_eq!(decode(&encode("", false, b"")), Some((&b""[..], false, &b""[..])));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[2, 0]), None);
        assert_eq!(decode(&[0, 9, b'a']), None);
    }
}
