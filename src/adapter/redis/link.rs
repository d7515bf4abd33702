//! The Redis connections of one server: a publisher and a subscriber (fred,
//! on the core's runtime), subscriptions, bounded fire-and-forget publishes,
//! and what arrives handed to a [`LinkHandler`] (the classic Socket.IO
//! adapter's router, or the core API's topics). Reconnecting and
//! resubscribing are fred's (`ReconnectPolicy`, `manage_subscriptions`);
//! this watches the state and reports it.
//!
//! A link speaks classic pub/sub (SUBSCRIBE, PSUBSCRIBE, PUBLISH) or, for
//! the sharded adapter, sharded pub/sub (SSUBSCRIBE, SPUBLISH, Redis 7),
//! never both. Either works on one Redis or a cluster
//! (`redis-cluster://host:port?node=host:port`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, ClientLike, ClusterInterface, Config, Error as FredError, EventInterface, PubsubInterface,
    ReconnectPolicy, Value as FredValue,
};
use parking_lot::Mutex;

/// Publishes not yet acknowledged by Redis beyond this are dropped (and
/// counted): a slow or absent Redis must not grow memory without bound.
const MAX_PENDING_PUBLISHES: usize = 10_000;
/// Messages the subscriber can hold before the router reads them; a router
/// that falls further behind loses the oldest, and counts them.
const MESSAGE_BUFFER: usize = 8192;

/// What the link reports of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LinkState {
    Connecting = 0,
    Connected = 1,
    Disconnected = 2,
    Closed = 3,
}

impl LinkState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
            LinkState::Closed => "closed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => LinkState::Connected,
            2 => LinkState::Disconnected,
            3 => LinkState::Closed,
            _ => LinkState::Connecting,
        }
    }
}

/// What the link hands on.
pub(crate) trait LinkHandler: Send + Sync + 'static {
    /// A message on a subscribed channel; false when it could not be read
    /// (counted as malformed).
    fn message(&self, channel: &str, payload: &[u8]) -> bool;
    /// No more messages are waiting (after one or a burst): the time to
    /// write what they queued.
    fn drained(&self) {}
    /// The link's state changed (`error`: why, when it went down).
    fn state(&self, state: LinkState, error: Option<String>);
}

/// Counters for `adapter.stats` (JS).
#[derive(Default)]
pub(crate) struct LinkStats {
    pub published: AtomicU64,
    pub dropped_publishes: AtomicU64,
    pub received: AtomicU64,
    pub lost_messages: AtomicU64,
    pub malformed: AtomicU64,
}

pub(crate) struct RedisLink {
    publisher: fred::clients::Client,
    subscriber: SubscriberClient,
    state: AtomicU8,
    pending: Arc<AtomicUsize>,
    /// What this link subscribes to (channels, patterns): subscribed again
    /// each time it connects, so one that failed while Redis was away is
    /// not lost.
    wanted: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
    pub(crate) stats: Arc<LinkStats>,
    handler: Arc<dyn LinkHandler>,
    /// Sharded pub/sub: SSUBSCRIBE, SPUBLISH, SHARDNUMSUB (no patterns).
    sharded: bool,
    /// Subscription changes, carried out by one task in the order they
    /// were made (a room left and joined again at once ends subscribed).
    ops: tokio::sync::mpsc::UnboundedSender<SubOp>,
    /// The core's runtime (publishes come from the JS thread).
    rt: tokio::runtime::Handle,
}

/// A subscription change for the link's one subscription task.
enum SubOp {
    Subscribe(Vec<String>, Vec<String>),
    Unsubscribe(Vec<String>, Vec<String>),
    /// After a (re)connection: everything wanted again, and what Redis
    /// may still hold that is no longer wanted (an unsubscribe that failed
    /// while it was away) dropped.
    Resubscribe,
}

impl RedisLink {
    /// Starts connecting (call inside the runtime, which the link keeps
    /// using whoever calls it); the state is reported as it
    /// changes. `sharded`: sharded pub/sub instead of the classic one.
    /// `tls`: the TLS settings of a `rediss://` URL (default: the system's
    /// CA store). Err: the URL or options are wrong.
    pub(crate) fn connect(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        handler: Arc<dyn LinkHandler>,
        sharded: bool,
    ) -> Result<Arc<Self>, String> {
        let secure = url.starts_with("rediss");
        if tls.is_some() && !secure {
            return Err(format!("TLS options given for {url:?}, which is not a rediss:// URL"));
        }
        // With TLS options of our own, fred's default TLS setup (the
        // system's CA store, which fails on any unreadable certificate
        // there) is not built: the URL is read as plain, then TLS set.
        let parse = if tls.is_some() { url.replacen("rediss", "redis", 1) } else { url.to_string() };
        let mut config = Config::from_url(&parse).map_err(|e| format!("invalid Redis URL {url:?}: {e}"))?;
        if let Some(tls) = tls {
            config.tls = Some(fred::types::config::TlsConnector::Rustls(tokio_rustls::TlsConnector::from(tls)).into());
        }
        // A cluster reports its nodes by IP address; with a host name in the
        // URL, their certificates are checked against that name instead.
        let named = config.server.hosts().first().is_some_and(|s| s.host.parse::<std::net::IpAddr>().is_err());
        if let (Some(t), true, true) = (config.tls.as_mut(), config.server.is_clustered(), named) {
            t.hostnames = fred::types::config::TlsHostMapping::DefaultHost;
        }
        // A node started while Redis is away keeps trying (fred's default
        // gives up when the first connection fails).
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            // Reconnect forever, 100 ms doubling to 5 s between attempts.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5000, 2))
            .with_performance_config(|p| p.broadcast_channel_capacity = MESSAGE_BUFFER)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(5);
                c.max_command_attempts = 1;
            });
        let publisher = builder.build().map_err(|e| e.to_string())?;
        let subscriber = builder.build_subscriber_client().map_err(|e| e.to_string())?;
        let (ops, ops_rx) = tokio::sync::mpsc::unbounded_channel();
        let link = Arc::new(Self {
            publisher,
            subscriber,
            state: AtomicU8::new(LinkState::Connecting as u8),
            pending: Arc::new(AtomicUsize::new(0)),
            wanted: Mutex::new((BTreeSet::new(), BTreeSet::new())),
            stats: Arc::new(LinkStats::default()),
            handler,
            sharded,
            ops,
            rt: tokio::runtime::Handle::current(),
        });
        link.start(ops_rx);
        Ok(link)
    }

    pub(crate) fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Changes the state (never out of Closed, whoever races with close).
    fn set_state(&self, s: LinkState, error: Option<String>) {
        let changed = self.state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
            (old != LinkState::Closed as u8 && old != s as u8).then_some(s as u8)
        });
        if changed.is_err() {
            return;
        }
        if s == LinkState::Connected {
            let _ = self.ops.send(SubOp::Resubscribe);
        }
        self.handler.state(s, error);
    }

    /// The subscription task: carries out `ops` one after the other.
    async fn run_ops(link: std::sync::Weak<Self>, mut ops: tokio::sync::mpsc::UnboundedReceiver<SubOp>) {
        while let Some(op) = ops.recv().await {
            let Some(link) = link.upgrade() else { return };
            match op {
                SubOp::Subscribe(channels, patterns) => link.send_subscribe(channels, patterns).await,
                SubOp::Unsubscribe(channels, patterns) => link.send_unsubscribe(channels, patterns).await,
                SubOp::Resubscribe => {
                    let (channels, patterns) = {
                        let w = link.wanted.lock();
                        (w.0.clone(), w.1.clone())
                    };
                    let tracked = if link.sharded {
                        link.subscriber.tracked_shard_channels()
                    } else {
                        link.subscriber.tracked_channels()
                    };
                    let stale_channels =
                        tracked.iter().map(|c| c.to_string()).filter(|c| !channels.contains(c)).collect::<Vec<_>>();
                    let stale_patterns = link
                        .subscriber
                        .tracked_patterns()
                        .iter()
                        .map(|p| p.to_string())
                        .filter(|p| !patterns.contains(p))
                        .collect::<Vec<_>>();
                    link.send_subscribe(channels.into_iter().collect(), patterns.into_iter().collect()).await;
                    link.send_unsubscribe(stale_channels, stale_patterns).await;
                }
            }
        }
    }

    /// SUBSCRIBE/PSUBSCRIBE, or SSUBSCRIBE once per hash slot (a cluster
    /// keeps each slot's channels on one node). Failures are left to the
    /// next resubscription: `wanted` holds them.
    async fn send_subscribe(&self, channels: Vec<String>, patterns: Vec<String>) {
        let sub = &self.subscriber;
        if !patterns.is_empty() {
            let _ = sub.psubscribe(patterns).await;
        }
        if channels.is_empty() {
            return;
        }
        if !self.sharded {
            let _ = sub.subscribe(channels).await;
            return;
        }
        if let Ok(groups) = fred::util::group_by_hash_slot(channels) {
            for (_, keys) in groups {
                let _ = sub.ssubscribe(keys.into_iter().collect::<Vec<_>>()).await;
            }
        }
    }

    async fn send_unsubscribe(&self, channels: Vec<String>, patterns: Vec<String>) {
        let sub = &self.subscriber;
        if !patterns.is_empty() {
            let _ = sub.punsubscribe(patterns).await;
        }
        if channels.is_empty() {
            return;
        }
        if !self.sharded {
            let _ = sub.unsubscribe(channels).await;
            return;
        }
        if let Ok(groups) = fred::util::group_by_hash_slot(channels) {
            for (_, keys) in groups {
                let _ = sub.sunsubscribe(keys.into_iter().collect::<Vec<_>>()).await;
            }
        }
    }

    fn start(self: &Arc<Self>, ops: tokio::sync::mpsc::UnboundedReceiver<SubOp>) {
        self.rt.spawn(Self::run_ops(Arc::downgrade(self), ops));
        // Listening for the state before connecting: a first attempt that
        // fails at once (connection refused) is reported too.
        let sub_errors = self.subscriber.error_rx();
        let pub_errors = self.publisher.error_rx();
        let sub_up = self.subscriber.reconnect_rx();
        let pub_up = self.publisher.reconnect_rx();
        // The connection and resubscription tasks run detached; their
        // handles are not needed.
        drop(self.publisher.connect());
        drop(self.subscriber.connect());
        drop(self.subscriber.manage_subscriptions());
        // Routing what arrives.
        let mut rx = self.subscriber.message_rx();
        let link = Arc::downgrade(self);
        self.rt.spawn(async move {
            use tokio::sync::broadcast::error::{RecvError, TryRecvError};
            loop {
                let first = rx.recv().await;
                let Some(link) = link.upgrade() else { return };
                match first {
                    Ok(m) => link.route(&m.channel, &m.value),
                    Err(RecvError::Lagged(n)) => {
                        link.stats.lost_messages.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                }
                // Whatever else already arrived, then one `drained`: a burst
                // of broadcasts is written to each socket in one go.
                loop {
                    match rx.try_recv() {
                        Ok(m) => link.route(&m.channel, &m.value),
                        Err(TryRecvError::Lagged(n)) => {
                            link.stats.lost_messages.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                link.handler.drained();
            }
        });
        // The state: connected once both are, disconnected (with the reason)
        // when either drops or a connection attempt fails, the first ones
        // included: a wrong address, password or certificate is reported,
        // not left as "connecting" forever.
        let weak = Arc::downgrade(self);
        let (publisher, subscriber) = (self.publisher.clone(), self.subscriber.clone());
        self.rt.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let (mut sub_errors, mut pub_errors, mut sub_up, mut pub_up) = (sub_errors, pub_errors, sub_up, pub_up);
            let first = async {
                let _ = tokio::join!(publisher.wait_for_connect(), subscriber.wait_for_connect());
            };
            tokio::pin!(first);
            let mut waiting_first = true;
            // What happened: an error (Some), a connection or a periodic look
            // (None); Err when the clients quit (their receivers close).
            fn seen<T>(
                r: Result<T, RecvError>,
                error: impl FnOnce(T) -> Option<FredError>,
            ) -> Result<Option<FredError>, ()> {
                match r {
                    Ok(v) => Ok(error(v)),
                    Err(RecvError::Lagged(_)) => Ok(None),
                    Err(RecvError::Closed) => Err(()),
                }
            }
            loop {
                let event = tokio::select! {
                    _ = &mut first, if waiting_first => {
                        waiting_first = false;
                        Ok(None)
                    }
                    e = sub_errors.recv() => seen(e, |(e, _)| Some(e)),
                    e = pub_errors.recv() => seen(e, |(e, _)| Some(e)),
                    e = sub_up.recv() => seen(e, |_| None),
                    e = pub_up.recv() => seen(e, |_| None),
                    _ = tokio::time::sleep(Duration::from_millis(500)) => Ok(None),
                };
                let Some(link) = weak.upgrade() else { return };
                if link.state() == LinkState::Closed {
                    return;
                }
                match event {
                    Err(()) => return,
                    Ok(Some(e)) => link.down(Some(e)),
                    Ok(None) => link.up(),
                }
            }
        });
    }

    fn down(&self, e: Option<FredError>) {
        if !(self.publisher.is_connected() && self.subscriber.is_connected()) {
            self.set_state(LinkState::Disconnected, e.map(|e| e.to_string()));
        }
    }

    fn up(&self) {
        if self.publisher.is_connected() && self.subscriber.is_connected() {
            self.set_state(LinkState::Connected, None);
        } else if self.state() == LinkState::Connected {
            self.set_state(LinkState::Disconnected, None);
        }
    }

    fn route(&self, channel: &str, value: &FredValue) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let read = value.as_bytes().is_some_and(|bytes| self.handler.message(channel, bytes));
        if !read {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Subscribes (and pattern-subscribes, classic only): now, and again
    /// each time the link connects.
    pub(crate) fn subscribe(&self, channels: Vec<String>, patterns: Vec<String>) {
        debug_assert!(!self.sharded || patterns.is_empty(), "sharded pub/sub has no patterns");
        {
            let mut w = self.wanted.lock();
            w.0.extend(channels.iter().cloned());
            w.1.extend(patterns.iter().cloned());
        }
        let _ = self.ops.send(SubOp::Subscribe(channels, patterns));
    }

    /// The opposite of [`subscribe`](Self::subscribe).
    pub(crate) fn unsubscribe(&self, channels: Vec<String>, patterns: Vec<String>) {
        {
            let mut w = self.wanted.lock();
            for c in &channels {
                w.0.remove(c);
            }
            for p in &patterns {
                w.1.remove(p);
            }
        }
        let _ = self.ops.send(SubOp::Unsubscribe(channels, patterns));
    }

    /// Fire and forget, bounded: while Redis is away, or when too many
    /// publishes wait for it, the message is dropped and counted.
    pub(crate) fn publish(&self, channel: String, bytes: Vec<u8>) -> bool {
        if self.state() != LinkState::Connected || self.pending.load(Ordering::Relaxed) >= MAX_PENDING_PUBLISHES {
            self.stats.dropped_publishes.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        let publisher = self.publisher.clone();
        let pending = self.pending.clone();
        let stats = self.stats.clone();
        let sharded = self.sharded;
        self.rt.spawn(async move {
            let r: Result<i64, _> = if sharded {
                publisher.spublish(channel, Bytes::from(bytes)).await
            } else {
                publisher.publish(channel, Bytes::from(bytes)).await
            };
            pending.fetch_sub(1, Ordering::Relaxed);
            match r {
                Ok(_) => stats.published.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.dropped_publishes.fetch_add(1, Ordering::Relaxed),
            };
        });
        true
    }

    /// `PUBSUB NUMSUB channel` (sharded: `PUBSUB SHARDNUMSUB`, asked of the
    /// channel's node): how many subscribe to it, the server count. In a
    /// cluster a classic channel's subscribers are counted by each primary
    /// for its own clients, so they are summed, as socket.io's adapter does.
    /// Bounded by `within`: a connection that hangs without failing must
    /// not leave the asker waiting forever.
    pub(crate) async fn numsub(&self, channel: String, within: Duration) -> Result<u64, String> {
        let ask = async {
            let count = |r: Vec<FredValue>| r.get(1).and_then(|v| v.as_u64()).unwrap_or(0);
            if self.sharded {
                return self.publisher.pubsub_shardnumsub::<Vec<FredValue>, _>(channel).await.map(count);
            }
            let primaries = match self.publisher.cached_cluster_state() {
                Some(state) if self.publisher.is_clustered() => state.unique_primary_nodes(),
                _ => return self.publisher.pubsub_numsub::<Vec<FredValue>, _>(channel).await.map(count),
            };
            let mut total = 0;
            for node in primaries {
                let node = self.publisher.with_cluster_node(node);
                total += count(node.pubsub_numsub::<Vec<FredValue>, _>(channel.clone()).await?);
            }
            Ok(total)
        };
        let r = tokio::time::timeout(within, ask).await.map_err(|_| "Redis did not answer in time".to_string())?;
        r.map_err(|e: FredError| e.to_string())
    }

    /// Unsubscribes and disconnects; nothing is reported after.
    pub(crate) fn close(&self) {
        self.state.store(LinkState::Closed as u8, Ordering::Relaxed);
        let (p, s) = (self.publisher.clone(), self.subscriber.clone());
        self.rt.spawn(async move {
            // Classic and sharded subscriptions alike.
            let _ = s.unsubscribe_all().await;
            let _ = tokio::join!(p.quit(), s.quit());
        });
    }
}
