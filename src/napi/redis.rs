//! The Socket.IO handle's Redis link (#12), as `lib/socketio/redis-adapter.js`
//! drives it: connect, one subscription set per namespace, publish (JSON,
//! or MessagePack when a message holds binaries), `PUBSUB NUMSUB`, state
//! and counters. Broadcasts from other nodes never come here: they are
//! delivered in Rust and flushed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use napi::bindgen_prelude::Buffer;
use napi::Result;
use napi_derive::napi;
use parking_lot::RwLock;

use super::core::err;
use super::events::EventSink;
use super::socketio::NativeSocketIo;
use crate::adapter::redis::link::{LinkState, RedisLink};
use crate::adapter::redis::sharded::Mode;
use crate::adapter::redis::wire::{self, Broadcast};
use crate::adapter::redis::{self as fleet, Fleet, Protocol, RemoteHandler};
use crate::socketio::server::SioServer;
use crate::ws::ServerCore;

/// What arrives from the link: broadcasts delivered here, the rest to JS.
struct Inbound {
    sio: Weak<SioServer>,
    served_by: Arc<RwLock<Arc<ServerCore>>>,
    sink: Arc<EventSink>,
}

impl RemoteHandler for Inbound {
    fn broadcast(&self, b: Broadcast) {
        if let Some(sio) = self.sio.upgrade() {
            sio.deliver_remote(&b);
        }
    }

    /// The server knows which sockets have frames queued: nothing to track here.
    fn drained(&self) {
        self.served_by.read().flush();
    }

    fn message(&self, channel: &str, json: String, attachments: Vec<Bytes>) {
        self.sink.redis_message(channel, &json, &attachments);
    }

    fn state(&self, state: LinkState, error: Option<String>) {
        self.sink.redis_state(state as u8, error.as_deref().unwrap_or(""));
    }
}

/// TLS to Redis (a `rediss://` URL), as Node's `tls.connect` options: PEM.
#[napi(object)]
pub struct RedisTls {
    /// Trusted CAs, instead of the system's.
    pub ca: Option<Buffer>,
    /// A client certificate chain and its key, together.
    pub cert: Option<Buffer>,
    pub key: Option<Buffer>,
    /// false: any server certificate is accepted (Node's option).
    pub reject_unauthorized: Option<bool>,
}

impl RedisTls {
    /// The rustls config, or None when nothing is given (the URL's scheme
    /// alone decides, with the system's CA store).
    pub(super) fn config(tls: Option<&RedisTls>) -> Result<Option<Arc<rustls::ClientConfig>>> {
        let verify = tls.and_then(|t| t.reject_unauthorized).unwrap_or(true);
        let Some(t) = tls.filter(|t| t.ca.is_some() || t.cert.is_some() || t.key.is_some() || !verify) else {
            return Ok(None);
        };
        let bytes = |b: &Option<Buffer>| b.as_ref().map(|b| b.to_vec());
        let (ca, cert, key) = (bytes(&t.ca), bytes(&t.cert), bytes(&t.key));
        crate::net::tls::load_client_config(ca.as_deref(), cert.as_deref(), key.as_deref(), verify)
            .map(Some)
            .map_err(|e| err(format!("ferrosocket: Redis TLS options: {e}")))
    }
}

#[napi(object)]
pub struct RedisStats {
    pub state: String,
    pub published: f64,
    pub dropped_publishes: f64,
    pub received: f64,
    pub lost_messages: f64,
    pub malformed: f64,
}

impl RedisStats {
    pub(super) fn of(link: &RedisLink) -> Self {
        let s = &link.stats;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        RedisStats {
            state: link.state().name().to_string(),
            published: n(&s.published),
            dropped_publishes: n(&s.dropped_publishes),
            received: n(&s.received),
            lost_messages: n(&s.lost_messages),
            malformed: n(&s.malformed),
        }
    }
}

#[napi]
impl NativeSocketIo {
    /// Connects to Redis at `url` (this node's `uid`, the channels' `key`)
    /// speaking `protocol`: "classic", or "sharded:static",
    /// "sharded:dynamic", "sharded:dynamic-private". The state arrives as
    /// REDIS_STATE events. Once per handle.
    #[napi]
    pub fn redis_connect(
        &self,
        url: String,
        key: String,
        uid: String,
        protocol: String,
        tls: Option<RedisTls>,
    ) -> Result<()> {
        let tls = RedisTls::config(tls.as_ref())?;
        let protocol = match protocol.as_str() {
            "classic" => Protocol::Classic,
            "sharded:static" => Protocol::Sharded(Mode::Static),
            "sharded:dynamic" => Protocol::Sharded(Mode::Dynamic),
            "sharded:dynamic-private" => Protocol::Sharded(Mode::DynamicPrivate),
            other => return Err(err(format!("ferrosocket: unknown Redis adapter protocol {other:?}"))),
        };
        if self.sio().remote().is_some() {
            return Err(err("ferrosocket: this server is already linked to Redis"));
        }
        let inbound = Arc::new(Inbound {
            sio: Arc::downgrade(self.sio()),
            served_by: self.served_by.clone(),
            sink: self.core().sink.clone(),
        });
        let fleet = self.core().enter(|| fleet::connect(&url, tls, key, uid, protocol, inbound))?.map_err(err)?;
        self.sio().set_remote(Some(fleet));
        Ok(())
    }

    /// The protocol's subscriptions for namespace `nsp`.
    #[napi]
    pub fn redis_add_namespace(&self, nsp: String) -> Result<()> {
        let fleet = self.fleet()?;
        self.core().enter(|| fleet.add_namespace(&nsp))
    }

    /// Room `room` of `nsp` has members here now (`joined`) or no more: the
    /// sharded dynamic modes follow it with a subscription.
    #[napi]
    pub fn redis_room(&self, nsp: String, room: String, joined: bool) -> Result<()> {
        let fleet = self.fleet()?;
        self.core().enter(|| if joined { fleet.add_room(&nsp, &room) } else { fleet.remove_room(&nsp, &room) })
    }

    /// Publishes `json` on `channel`: as it is, or (`msgpack`) as
    /// MessagePack with `attachments` in place of its placeholders. False
    /// when dropped (Redis away, or too many publishes waiting).
    #[napi]
    pub fn redis_publish(
        &self,
        channel: String,
        json: String,
        attachments: Option<Vec<Buffer>>,
        msgpack: bool,
    ) -> Result<bool> {
        let link = self.fleet()?.link().clone();
        let bytes = if msgpack {
            let att: Vec<Bytes> = attachments.unwrap_or_default().iter().map(|b| Bytes::copy_from_slice(b)).collect();
            wire::json_to_message(&json, &att).map_err(err)?
        } else {
            json.into_bytes()
        };
        self.core().enter(|| link.publish(channel, bytes))
    }

    /// The namespace `nsp` is gone: its subscriptions go too.
    #[napi]
    pub fn redis_remove_namespace(&self, nsp: String) -> Result<()> {
        let fleet = self.fleet()?;
        self.core().enter(|| fleet.remove_namespace(&nsp))
    }

    /// `PUBSUB NUMSUB channel` (SHARDNUMSUB when sharded; at most `timeout_ms`); the count arrives as
    /// REDIS_REPLY `req`.
    #[napi]
    pub fn redis_numsub(&self, req: i64, channel: String, timeout_ms: u32) -> Result<()> {
        let link = self.fleet()?.link().clone();
        let sink = self.core().sink.clone();
        let within = std::time::Duration::from_millis(u64::from(timeout_ms.max(1)));
        self.core().enter(|| {
            tokio::spawn(async move {
                let r = link.numsub(channel, within).await.map(|n| n.to_string());
                sink.redis_reply(req as u64, r);
            });
        })
    }

    #[napi]
    pub fn redis_stats(&self) -> Result<RedisStats> {
        Ok(RedisStats::of(self.fleet()?.link()))
    }

    /// Unsubscribes and disconnects; broadcasts stay local from now on.
    #[napi]
    pub fn redis_close(&self) {
        if let Some(fleet) = self.sio().remote() {
            self.sio().set_remote(None);
            let _ = self.core().enter(|| fleet.link().close());
        }
    }

    fn fleet(&self) -> Result<Arc<dyn Fleet>> {
        self.sio().remote().ok_or_else(|| err("ferrosocket: this server is not linked to Redis"))
    }
}
