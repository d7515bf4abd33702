//! The WebSocket server: what it owns and the jobs that span connections.
//! It holds the routes (routes.rs), the connection registry (registry.rs),
//! the epoll groups (group.rs), the sweeper and pub/sub fan-out, and is the
//! host its connections and groups report to. Accepting lives in accept.rs.
//!
//! Everything that needs a JavaScript decision (an `upgrade` handler, an
//! HTTP route) is handed to the [`RequestSink`] and answered with
//! [`ServerCore::decide`]; everything else is decided here.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use slab::Slab;
use tokio::task::JoinHandle;

use super::conn::{Conn, ConnHost, Queued, SendStatus};
use super::deflate;
use super::frame::{self, OpCode};
use super::group::{Group, GroupHost};
use super::handshake::Limits;
use super::registry::Registry;
use super::routes::{HttpRoute, Routes, WsRoute};
use super::sink::{Decision, RequestSink};
use crate::pubsub::TopicTree;

/// Sweeper resolution: idle timeouts and automatic pings are checked once per tick.
const TICK: Duration = Duration::from_secs(1);

pub(crate) struct ServerOptions {
    pub max_connections: usize,
    pub limits: Limits,
    /// Connection groups (one thread each); one per worker keeps every
    /// core busy without splitting sockets finer than needed.
    pub groups: usize,
    /// Backlog of events handed up and not yet consumed (see inflow.rs).
    pub inflow: Arc<super::inflow::Inflow>,
    /// From accept to a complete request head (TLS handshake included);
    /// heads handed to Node carry what is left of it (slow-loris).
    pub handshake_timeout: std::time::Duration,
    /// Largest request body an HTTP route is streamed (413 over it).
    pub max_body: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_connections: usize::MAX,
            limits: Limits::default(),
            groups: 2,
            inflow: Arc::new(super::inflow::Inflow::new(super::inflow::DEFAULT_INFLOW_LIMIT)),
            handshake_timeout: super::accept::HANDSHAKE_TIMEOUT,
            max_body: super::http1::DEFAULT_MAX_BODY,
        }
    }
}

/// Where a pending request's answer goes, and (HTTP) how much of its
/// response is queued and not yet written.
pub(super) struct Pending {
    pub tx: tokio::sync::mpsc::UnboundedSender<Decision>,
    pub out: Arc<super::http1::Outflow>,
}

pub(crate) struct ServerCore {
    pub(super) sink: Arc<dyn RequestSink>,
    pub(super) opts: ServerOptions,
    pub(super) routes: RwLock<Routes>,
    pub(super) registry: Registry,
    tick: AtomicU32,
    topics: Mutex<TopicTree<Arc<Conn>>>,
    /// Connections with published frames queued and not yet flushed.
    dirty: Mutex<Vec<Arc<Conn>>>,
    /// Requests waiting for a decision from above, or for their HTTP
    /// response's parts, by request id.
    pub(super) pending: Mutex<HashMap<u64, Pending>>,
    pub(super) listeners: Mutex<Slab<Listening>>,
    pub(super) shutting_down: AtomicBool,
    /// Plain-TCP listeners serve only WebSocket upgrades themselves (those
    /// their route's handler does not hand off, `WsHandler::hand_off_upgrade`)
    /// and hand every other connection to `RequestSink::handoff` (an HTTP
    /// server above, such as Socket.IO's Node one).
    pub(super) handoff_http: AtomicBool,
    /// Established connections live in these epoll groups (see group.rs).
    groups: Vec<Arc<Group>>,
    next_group: AtomicU32,
}

impl ServerCore {
    pub(crate) fn new(sink: Arc<dyn RequestSink>, opts: ServerOptions) -> io::Result<Arc<Self>> {
        let groups = (0..opts.groups.max(1)).map(|_| Group::new().map(Arc::new)).collect::<io::Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            sink,
            opts,
            routes: RwLock::new(Routes::default()),
            registry: Registry::default(),
            tick: AtomicU32::new(0),
            topics: Mutex::new(TopicTree::default()),
            dirty: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Slab::new()),
            shutting_down: AtomicBool::new(false),
            handoff_http: AtomicBool::new(false),
            groups,
            next_group: AtomicU32::new(0),
        }))
    }

    pub(crate) fn add_ws_route(&self, route: WsRoute) -> u16 {
        self.routes.write().add_ws(route)
    }

    pub(crate) fn add_http_route(&self, route: HttpRoute) -> u16 {
        self.routes.write().add_http(route)
    }

    /// See `handoff_http`. Set before listening.
    pub(crate) fn set_handoff_http(&self, on: bool) {
        self.handoff_http.store(on, Ordering::Relaxed);
    }

    /// Starts the group threads and the sweeper; call once, inside the runtime.
    pub(crate) fn start(self: &Arc<Self>) -> io::Result<()> {
        let rt = tokio::runtime::Handle::current();
        for g in &self.groups {
            g.spawn(Arc::downgrade(self), self.opts.inflow.clone(), rt.clone())?;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut shrink = Shrink::default();
            loop {
                interval.tick().await;
                let Some(server) = weak.upgrade() else { return };
                let now = server.tick.fetch_add(1, Ordering::Relaxed) + 1;
                let unread = server.opts.inflow.is_far_over();
                let conns = server.registry.snapshot();
                for conn in &conns {
                    conn.on_tick(&*server, now, unread);
                }
                shrink.look(conns.len());
            }
        });
        Ok(())
    }

    /// Lends every connection group to a driver (see `Group::lend`): the
    /// epoll fds to watch, by group index for [`ServerCore::drive`].
    pub(crate) fn lend_groups(&self) -> Vec<std::os::fd::RawFd> {
        self.groups.iter().map(|g| g.lend()).collect()
    }

    /// A read round of group `index` for its driver.
    pub(crate) fn drive(&self, index: usize) {
        if let Some(g) = self.groups.get(index) {
            g.drive(self, &self.opts.inflow);
        }
    }

    /// The groups' own threads read again.
    pub(crate) fn reclaim_groups(&self) {
        for g in &self.groups {
            g.reclaim();
        }
    }

    /// Group `index`'s own thread reads again.
    pub(crate) fn reclaim_group(&self, index: usize) {
        if let Some(g) = self.groups.get(index) {
            g.reclaim();
        }
    }

    /// The group a new connection joins (round robin).
    pub(super) fn next_group(&self) -> u16 {
        (self.next_group.fetch_add(1, Ordering::Relaxed) as usize % self.groups.len()) as u16
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.registry.connection_count()
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<Conn>> {
        self.registry.get(id)
    }

    /// Takes a finished connection out of its group and the registry; the fd
    /// closes when the last reference (a pending flush, say) is dropped.
    pub(crate) fn retire(&self, conn: &Arc<Conn>) {
        if conn.retire(self) {
            self.groups[conn.group as usize].remove(conn.fd());
            self.registry.release(conn.id);
        }
    }

    /// Lock order: topic tree, then the connection's state. Checking
    /// `is_open` under the topic lock means a concurrent close (whose
    /// `unsubscribe_all` also takes it) cannot slip in between and leave a
    /// subscription, and with it the connection, behind.
    pub(crate) fn subscribe(&self, conn: &Arc<Conn>, topic: &str) -> bool {
        let mut topics = self.topics.lock();
        conn.is_open() && topics.subscribe(conn.id, conn, topic)
    }

    pub(crate) fn unsubscribe(&self, id: u64, topic: &str) -> bool {
        self.topics.lock().unsubscribe(id, topic)
    }

    pub(crate) fn is_subscribed(&self, id: u64, topic: &str) -> bool {
        self.topics.lock().is_subscribed(id, topic)
    }

    pub(crate) fn topics_of(&self, id: u64) -> Vec<Arc<str>> {
        self.topics.lock().topics_of(id)
    }

    pub(crate) fn num_subscribers(&self, topic: &str) -> usize {
        self.topics.lock().num_subscribers(topic)
    }

    /// Frames `payload` once and queues the shared bytes on every subscriber
    /// (except `skip`). Writing happens in [`Self::flush`], so a burst of
    /// publishes reaches each socket in one `writev`. Returns how many
    /// subscribers got it.
    /// `compress`: compressed for subscribers that negotiated
    /// permessage-deflate: once for all that keep no compression context,
    /// by each one's own compressor for the others.
    pub(crate) fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        binary: bool,
        skip: Option<u64>,
        compress: bool,
    ) -> usize {
        let opcode = if binary { OpCode::Binary } else { OpCode::Text };
        let framed: Bytes = frame::encode_frame(opcode, payload);
        let mut compressed: Option<Bytes> = None;
        let mut newly_dirty = Vec::new();
        let mut to_close = Vec::new();
        let mut delivered = 0;
        let mut queue = |conn: &Arc<Conn>| match conn.compression().filter(|_| compress) {
            None => conn.queue_published(&framed),
            Some(true) => {
                conn.queue_published(compressed.get_or_insert_with(|| deflate::shared_frame(opcode, payload)))
            }
            Some(false) => conn.queue_published_compressed(payload, binary),
        };
        self.topics.lock().for_each(topic, skip, |_, conn| match queue(conn) {
            Queued::NewlyDirty => {
                delivered += 1;
                newly_dirty.push(conn.clone());
            }
            Queued::Pending => delivered += 1,
            Queued::Skipped => {}
            Queued::MustClose => to_close.push(conn.clone()),
        });
        if !newly_dirty.is_empty() {
            self.dirty.lock().append(&mut newly_dirty);
        }
        for c in to_close {
            c.end(self, 1009, b"backpressure limit");
        }
        delivered
    }

    /// Queues one shared frame on `conn` as a publish does (written by the
    /// next `flush`, several per `writev`). False when skipped (closed, or
    /// over maxBackpressure; closed with 1009 under closeOnBackpressureLimit).
    pub(crate) fn queue_shared(&self, conn: &Arc<Conn>, framed: &Bytes) -> bool {
        self.settle_queued(conn, conn.queue_published(framed))
    }

    /// Queues `payload` on `conn` compressed by its own compressor (a
    /// connection that keeps context), as `queue_shared` does a frame.
    pub(crate) fn queue_compressed(&self, conn: &Arc<Conn>, payload: &[u8], binary: bool) -> bool {
        self.settle_queued(conn, conn.queue_published_compressed(payload, binary))
    }

    /// What a queueing outside a publish's topic lock leads to: the dirty
    /// list, or the close under closeOnBackpressureLimit. False when skipped.
    fn settle_queued(&self, conn: &Arc<Conn>, queued: Queued) -> bool {
        match queued {
            Queued::NewlyDirty => {
                self.dirty.lock().push(conn.clone());
                true
            }
            Queued::Pending => true,
            Queued::Skipped => false,
            Queued::MustClose => {
                conn.end(self, 1009, b"backpressure limit");
                false
            }
        }
    }

    /// Writes everything publishes queued. The JS layer calls this once per
    /// tick after publishing.
    pub(crate) fn flush(&self) {
        let dirty = std::mem::take(&mut *self.dirty.lock());
        for conn in dirty {
            conn.flush_dirty(self);
        }
    }

    /// `compress`: compressed where permessage-deflate was negotiated.
    pub(crate) fn send(&self, id: u64, payload: &[u8], binary: bool, compress: bool) -> Option<SendStatus> {
        let conn = self.get(id)?;
        if compress {
            conn.send_compressed(self, payload, binary)
        } else {
            conn.send(self, payload, binary)
        }
    }

    pub(crate) fn end(&self, id: u64, code: u16, reason: &[u8]) -> bool {
        match self.get(id) {
            Some(c) => {
                c.end(self, code, reason);
                true
            }
            None => false,
        }
    }

    pub(crate) fn terminate(&self, id: u64) -> bool {
        match self.get(id) {
            Some(c) => {
                c.terminate(self);
                true
            }
            None => false,
        }
    }

    /// `app.close()`: stop accepting, send every connection close 1001, and
    /// refuse pending requests. Close frames are written before this returns.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let listeners = std::mem::take(&mut *self.listeners.lock());
        for (_, l) in listeners {
            l.stop();
        }
        drop(std::mem::take(&mut *self.pending.lock()));
        self.flush();
        for conn in self.registry.snapshot() {
            conn.end(self, 1001, b"server shutting down");
        }
    }

    /// After the runtime has stopped: drop every connection (closing fds).
    pub(crate) fn clear(&self) {
        for conn in self.registry.snapshot() {
            self.retire(&conn);
        }
        for g in &self.groups {
            g.stop();
        }
    }
}

impl Drop for ServerCore {
    fn drop(&mut self) {
        for g in &self.groups {
            g.stop();
        }
    }
}

/// A listening socket's accept task, and word of when its socket is closed.
pub(super) struct Listening {
    pub(super) task: JoinHandle<()>,
    pub(super) closed: std::sync::mpsc::Receiver<()>,
}

impl Listening {
    /// Stops accepting and waits (briefly) until the socket is closed, so the
    /// port can be bound again as soon as this returns.
    pub(super) fn stop(self) {
        self.task.abort();
        let _ = self.closed.recv_timeout(Duration::from_secs(1));
    }
}

impl ConnHost for ServerCore {
    fn tick(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }

    fn inflow_epoch(&self) -> u32 {
        self.opts.inflow.epoch()
    }

    fn is_unread(&self, conn: &Conn) -> bool {
        conn.is_paused() || self.opts.inflow.is_far_over()
    }

    fn watch(&self, conn: &Conn, want_write: bool) -> io::Result<()> {
        self.groups[conn.group as usize].add(conn.fd(), conn.id, want_write)
    }

    fn interest(&self, conn: &Conn, paused: bool, write: bool) {
        self.groups[conn.group as usize].interest(conn.fd(), conn.id, paused, write);
    }

    fn closed(&self, conn: &Conn, code: u16, reason: &[u8]) {
        self.topics.lock().unsubscribe_all(conn.id);
        conn.behavior.handler.close(self, conn, code, reason);
    }
}

impl GroupHost for ServerCore {
    fn conn(&self, id: u64) -> Option<Arc<Conn>> {
        self.registry.get(id)
    }

    fn retire(&self, conn: &Arc<Conn>) {
        ServerCore::retire(self, conn)
    }
}

/// Gives the allocator's free memory back to the system after many
/// connections left. glibc keeps what freed connections used on its free
/// lists (per-thread arenas), so after 10k clients left a Socket.IO server
/// held 15 MiB more than `malloc_trim(0)` leaves (soak, 2026-12-04). At
/// most once per `SHRINK_EVERY` ticks, and only when the connections fell
/// to half of their peak since the last trim and by at least
/// `SHRINK_FROM`: a trim walks the arenas, cheap but not free.
///
/// Also once a storm of arrivals is over (at least `SHRINK_FROM` more
/// connections than at the last trim, and within 1% of the count a tick
/// earlier): each
/// handshake's transient allocations (TLS's most of all) leave holes the
/// connections that stay are scattered between. Measured with 2000 idle
/// TLS connections: 0.8 KB per connection back to the system.
#[derive(Default)]
struct Shrink {
    peak: usize,
    since: u32,
    /// Connections at the last trim, and at the previous tick.
    base: usize,
    last: usize,
}

const SHRINK_FROM: usize = 1000;
const SHRINK_EVERY: u32 = 10;

impl Shrink {
    /// One sweeper tick with `open` connections; true when it trimmed.
    fn look(&mut self, open: usize) -> bool {
        self.since = self.since.saturating_add(1);
        self.peak = self.peak.max(open);
        // Within 1% of the last tick: the storm is over, churn goes on.
        let settled = open.abs_diff(self.last) <= open / 100;
        self.last = open;
        let left = open * 2 <= self.peak && self.peak - open >= SHRINK_FROM;
        let arrived = settled && open >= self.base + SHRINK_FROM;
        if self.since >= SHRINK_EVERY && (left || arrived) {
            trim_allocator();
            self.peak = open;
            self.base = open;
            self.since = 0;
            return true;
        }
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    // SAFETY: malloc_trim only releases free memory; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}

#[cfg(test)]
mod shrink_tests {
    use super::Shrink;

    #[test]
    fn trims_once_after_many_connections_left_and_not_on_small_changes() {
        let mut s = Shrink::default();
        // 10k arrive: one trim once they stopped arriving, then nothing.
        assert!(!s.look(5_000));
        assert!(!s.look(10_000));
        assert_eq!((0..20).filter(|_| s.look(10_000)).count(), 1);
        // Most leave: one trim, then none until it happens again.
        assert!(s.look(100));
        assert!(!(0..30).any(|_| s.look(100)));
        // A small server's churn (500 -> 0) never trims.
        let mut small = Shrink::default();
        assert!(!(0..30).any(|i| small.look(if i % 2 == 0 { 500 } else { 0 })));
        // A steady trickle of arrivals is not a storm that ended.
        let mut trickle = Shrink::default();
        assert!(!(0..100).any(|i| trickle.look(i * 100)));
        // Not more often than every SHRINK_EVERY ticks.
        let mut busy = Shrink::default();
        let trims = (0..100).filter(|i| busy.look(if i % 2 == 0 { 5000 } else { 0 })).count();
        assert!(trims <= 100 / super::SHRINK_EVERY as usize, "{trims} trims");
    }
}
