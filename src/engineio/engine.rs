//! Engine.IO v4 sessions over the WebSocket transport, with the server-driven
//! heartbeat, entirely in Rust: a million idle Socket.IO clients must cost
//! the JS thread nothing.
//!
//! The engine is the `WsHandler` of the Engine.IO route: it sees frames, not
//! JS. It hands the layer above (Socket.IO) whole messages through
//! [`EngineHandler`]. A session outlives its transport: it starts on HTTP
//! long-polling or WebSocket, and a polling session may upgrade
//! (`2probe`/`3probe`/noop/`5`). Polling requests are parsed by Node's HTTP
//! server and handed here as (method, url, headers, body) by
//! [`Engine::handle_poll`]; a held GET is answered later through
//! [`EngineHandler::poll_ready`] and [`Engine::poll_drain`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::packet::{self, HttpErrorCode, OpenInfo, Packet, Payload};
use super::v3;
use crate::json::push_json_string;
use crate::ws::deflate;
use crate::ws::frame::{self, OpCode};
use crate::ws::{Conn, ConnHost, HttpService, Request, ServerCore, ServiceFuture, WsHandler};

#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// maxHttpBufferSize: the largest message either transport accepts.
    pub max_payload: usize,
    /// How long a WebSocket probe may take to send `5` (upgradeTimeout).
    pub upgrade_timeout: Duration,
    pub allow_upgrades: bool,
    pub polling: bool,
    pub websocket: bool,
    /// Serve Engine.IO v3 clients (socket.io-client v2) too: engine.io's
    /// `allowEIO3`, off by default as there.
    pub allow_eio3: bool,
    /// Bytes that may wait for one client on either transport (ferrosocket's
    /// `maxBackpressure`); a client past it is disconnected ("transport
    /// error"), never kept while what it should receive is dropped.
    pub max_buffered: usize,
    /// perMessageDeflate (off: None).
    pub deflate: Option<PerMessageDeflate>,
}

/// socket.io's `perMessageDeflate`: what the WebSocket route negotiates, and
/// the smallest message compressed (smaller ones go as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PerMessageDeflate {
    pub threshold: usize,
    pub config: deflate::Config,
}

/// `maxBackpressure`'s default: 16 MiB.
pub(crate) const DEFAULT_MAX_BUFFERED: usize = 16 << 20;

impl Default for EngineConfig {
    fn default() -> Self {
        // engine.io 6.6 defaults.
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_millis(10_000),
            allow_upgrades: true,
            polling: true,
            websocket: true,
            allow_eio3: false,
            max_buffered: DEFAULT_MAX_BUFFERED,
            deflate: None,
        }
    }
}

/// Why a session ended, in engine.io's words (they reach user code as
/// Socket.IO disconnect reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    TransportClose,
    TransportError,
    PingTimeout,
    ParseError,
    ForcedClose,
}

impl CloseReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
        }
    }
}

/// What the layer above is told.
pub(crate) trait EngineHandler: Send + Sync + 'static {
    fn open(&self, session: &Arc<Session>);
    /// Err: the message broke the protocol above (Socket.IO's "parse
    /// error"); the engine ends the session with that reason.
    fn message(&self, session: &Arc<Session>, payload: Payload) -> Result<(), ()>;
    fn close(&self, session: &Arc<Session>, reason: CloseReason);
    /// Called on every heartbeat tick, for timeouts of the layer above.
    fn tick(&self, _now: Instant) {}
    /// The held polling GET `req` has something to answer: whoever holds the
    /// HTTP response calls [`Engine::poll_drain`] (soon, so that packets sent
    /// meanwhile go out in the same body).
    fn poll_ready(&self, _req: u64) {}
    /// The session moved from polling to its WebSocket (engine.io's 'upgrade').
    fn upgrade(&self, _session: &Arc<Session>) {}
    /// A request refused here, which JS never saw (an upgrade on Rust's own
    /// listener): for engine.io's `connection_error` event.
    fn refused(&self, _refusal: &Refusal, _req: &Request) {}
}

struct Heartbeat {
    /// When the last ping went out (or the session opened / the last pong came).
    since: Instant,
    awaiting_pong: bool,
}

/// What the session's first request looked like (socket.io's `handshake`),
/// kept compact and handed to JS only when user code reads it.
pub(crate) struct Handshake {
    pub(crate) url: Box<str>,
    /// `name: value` lines joined by `\n`, names lowercased.
    pub(crate) headers: Box<str>,
    pub(crate) issued_ms: u64,
    pub(crate) secure: bool,
    pub(crate) remote: SocketAddr,
}

/// A request's headers as JS reads them: `name: value` lines (names
/// lowercase, repeats kept in order), one string to cross N-API.
pub(crate) fn header_lines(req: &Request) -> String {
    let mut headers = String::with_capacity(req.headers.iter().map(|(k, v)| k.len() + v.len() + 3).sum());
    for (i, (k, v)) in req.headers.iter().enumerate() {
        if i > 0 {
            headers.push('\n');
        }
        headers.push_str(k);
        headers.push_str(": ");
        headers.push_str(v);
    }
    headers
}

impl Handshake {
    pub(crate) fn new(req: &Request, secure: bool, remote: SocketAddr) -> Self {
        let headers = header_lines(req);
        let issued_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self { url: req.url.clone().into(), headers: headers.into(), issued_ms, secure, remote }
    }
}

/// The long-polling side of a session: packets wait here for the next GET.
#[derive(Default)]
struct Polling {
    queue: Vec<Packet>,
    /// The held GET, by request id.
    waiter: Option<u64>,
    /// `poll_ready` was called for the waiter and not drained yet.
    notified: bool,
    /// A WebSocket connection probing for the upgrade.
    probe: Option<Probe>,
    probed: bool,
    closed: bool,
    /// Bytes queued; past the cap the session ends (a client that never
    /// polls must not collect broadcasts without limit).
    queued_bytes: usize,
    overflowed: bool,
    /// The server closed the session with packets still queued: they go out
    /// first, and `1` in the response after (socket.io-client handles a
    /// packet a tick after the payload it came in, so `41` and `1` in one
    /// body would read as "transport close").
    close_pending: bool,
    /// A POST body is being read (`begin_post`); a second one is refused.
    posting: bool,
}

impl Polling {
    /// Ends the upgrade attempt: the probe connection (to close), and the
    /// next probe must start with `2probe` again.
    fn take_probe(&mut self) -> Option<Probe> {
        self.probed = false;
        self.probe.take()
    }

    /// The next response body: everything queued, else a deferred `1`.
    fn take_body(&mut self, eio3: bool) -> Option<Bytes> {
        if !self.queue.is_empty() {
            let body = payload(eio3, &self.queue);
            self.queue.clear();
            self.queued_bytes = 0;
            return Some(body);
        }
        if self.close_pending {
            // engine.io's polling: an empty send ("noop") carries the close.
            self.close_pending = false;
            return Some(payload(eio3, &[Packet::Noop, Packet::Close]));
        }
        None
    }
}

/// A polling response body in the session's protocol.
fn payload(eio3: bool, packets: &[Packet]) -> Bytes {
    if eio3 {
        v3::encode_payload(packets)
    } else {
        packet::encode_payload(packets)
    }
}

fn packet_size(p: &Packet) -> usize {
    match p {
        Packet::Message(payload) => payload.as_bytes().len() + 2,
        _ => 8,
    }
}

struct Probe {
    conn: Arc<Conn>,
    server: Weak<ServerCore>,
    since: Instant,
}

enum Transport {
    Ws { conn: Arc<Conn>, server: Weak<ServerCore> },
    Polling(Box<Polling>),
}

pub(crate) struct Session {
    /// Shared with the engine's sid map (one allocation per session).
    pub(crate) sid: Arc<str>,
    /// The layer above's key for this session (0 until it sets one), so it
    /// needs no sid map of its own.
    pub(crate) tag: std::sync::atomic::AtomicU64,
    engine: Weak<Engine>,
    heartbeat: Mutex<Heartbeat>,
    transport: Mutex<Transport>,
    pub(crate) handshake: Handshake,
    /// Engine.IO v3 (socket.io-client v2): the client pings, binary frames
    /// carry their type, polling payloads are length-prefixed.
    pub(crate) eio3: bool,
}

/// A packet built once for many sessions (a broadcast), in the form each
/// transport sends: the WebSocket frame, shared by every WebSocket session,
/// and the packet itself for polling sessions. The layer above hands
/// packets over; framing them stays here.
pub(crate) struct SharedMessage {
    framed: Bytes,
    packet: Packet,
    /// The frame's payload: where it starts in `framed`, and whether binary.
    header_len: usize,
    binary: bool,
    /// The compressed frame (permessage-deflate without context), made at
    /// the first recipient that takes it, shared by all the others.
    compressed: std::sync::OnceLock<Bytes>,
}

impl SharedMessage {
    pub(crate) fn new(packet: Packet) -> SharedMessage {
        let (binary, bytes) = packet::encode_ws(&packet);
        let framed = frame::encode_frame(if binary { OpCode::Binary } else { OpCode::Text }, &bytes);
        let header_len = framed.len() - bytes.len();
        SharedMessage { framed, packet, header_len, binary, compressed: std::sync::OnceLock::new() }
    }

    fn payload(&self) -> &[u8] {
        &self.framed[self.header_len..]
    }

    fn compressed_frame(&self) -> &Bytes {
        self.compressed.get_or_init(|| {
            deflate::shared_frame(if self.binary { OpCode::Binary } else { OpCode::Text }, self.payload())
        })
    }

    /// Bytes held: the frame and the packet.
    pub(crate) fn size(&self) -> usize {
        self.framed.len() + packet_size(&self.packet)
    }
}

impl Session {
    /// Sends one Engine.IO packet on the session's transport. False when the
    /// transport is gone.
    pub(crate) fn send(&self, packet: &Packet) -> bool {
        self.send_with(packet, true)
    }

    /// As `send`; `compress`: compressed if permessage-deflate was
    /// negotiated and it is at least perMessageDeflate's threshold.
    pub(crate) fn send_with(&self, packet: &Packet, compress: bool) -> bool {
        self.deliver(packet, |server, conn| {
            let (binary, bytes) = match packet {
                Packet::Message(Payload::Binary(data)) if self.eio3 => (true, v3::encode_binary(data)),
                _ => packet::encode_ws(packet),
            };
            // The connection is looked at first: without deflate negotiated
            // (the common case) the engine's setting is never fetched.
            if compress && conn.compression().is_some() && self.compresses(bytes.len()) {
                conn.send_compressed(server, &bytes, binary).is_some()
            } else {
                conn.send(server, &bytes, binary).is_some()
            }
        })
    }

    /// Sends a message built once for many sessions (broadcast): a WebSocket
    /// session queues the shared frame for the server's next `flush` (one
    /// `writev` for a burst of broadcasts), a polling one the shared packet.
    /// Compressed (`compress`, where negotiated) once for every session
    /// that keeps no context, by its own compressor for one that does.
    pub(crate) fn send_shared(&self, message: &SharedMessage, compress: bool) -> bool {
        // A v3 binary frame differs from the shared (v4) one.
        if self.eio3 && matches!(message.packet, Packet::Message(Payload::Binary(_))) {
            return self.send_with(&message.packet, compress);
        }
        self.deliver(&message.packet, |server, conn| {
            let how = conn.compression().filter(|_| compress && self.compresses(message.payload().len()));
            match how {
                None => server.queue_shared(conn, &message.framed),
                Some(true) => server.queue_shared(conn, message.compressed_frame()),
                Some(false) => server.queue_compressed(conn, message.payload(), message.binary),
            }
        })
    }

    /// perMessageDeflate is on and `len` bytes reach its threshold.
    fn compresses(&self, len: usize) -> bool {
        self.engine.upgrade().and_then(|e| e.cfg.deflate).is_some_and(|d| len >= d.threshold)
    }

    /// Polling: queue `packet`. WebSocket: `ws` with the connection, called
    /// without the transport lock held.
    fn deliver(&self, packet: &Packet, ws: impl FnOnce(&ServerCore, &Arc<Conn>) -> bool) -> bool {
        let mut t = self.transport.lock();
        match &mut *t {
            Transport::Ws { conn, server } => {
                let (conn, server) = (conn.clone(), server.clone());
                drop(t);
                server.upgrade().is_some_and(|server| ws(&server, &conn))
            }
            Transport::Polling(p) => self.queue(p, packet.clone()),
        }
    }

    fn queue(&self, p: &mut Polling, packet: Packet) -> bool {
        if p.closed || p.overflowed {
            return false;
        }
        p.queued_bytes += packet_size(&packet);
        // As a WebSocket's queue on the Socket.IO route (EngineConfig::max_buffered).
        let cap = self.engine.upgrade().map_or(DEFAULT_MAX_BUFFERED, |e| e.cfg.max_buffered);
        if p.queued_bytes > cap {
            // Ended by the next heartbeat tick (the transport lock is held here).
            p.overflowed = true;
            return false;
        }
        p.queue.push(packet);
        self.notify(p);
        true
    }

    fn notify(&self, p: &mut Polling) {
        if let (Some(req), false) = (p.waiter, p.notified) {
            p.notified = true;
            if let Some(engine) = self.engine.upgrade() {
                engine.poll_ready(req);
            }
        }
    }

    /// Server-side close ("forced close"): the close packet, then the transport.
    pub(crate) fn close(self: &Arc<Self>) {
        self.close_for(CloseReason::ForcedClose)
    }

    /// A clean server-side close for `reason`: what is queued goes first
    /// (on polling, to the next GET), then the close packet, as engine.io's
    /// `socket.close()`.
    fn close_for(self: &Arc<Self>, reason: CloseReason) {
        // Over polling, unless a GET is held to carry it now, the close waits
        // for the next GET (after anything queued), as engine.io's polling
        // `doClose` when the transport is not writable.
        let deferred = match &mut *self.transport.lock() {
            Transport::Polling(p) if !p.queue.is_empty() || p.waiter.is_none() => {
                p.close_pending = true;
                true
            }
            _ => false,
        };
        if !deferred {
            self.send(&Packet::Close);
        }
        if let Some(engine) = self.engine.upgrade() {
            engine.end_session(self, reason, true);
        }
    }

    /// Remote address of the session's first request (`handshake.address`).
    pub(crate) fn remote(&self) -> SocketAddr {
        self.handshake.remote
    }

    /// Whether the transport would take a packet now (engine.io's
    /// `transport.writable`, which volatile packets need): on a WebSocket,
    /// nothing waits in the socket's queue; on polling, a GET is held and
    /// not yet being answered.
    pub(crate) fn writable(&self) -> bool {
        match &*self.transport.lock() {
            Transport::Ws { conn, .. } => conn.buffered_amount() == 0,
            Transport::Polling(p) => p.waiter.is_some() && !p.notified && !p.closed,
        }
    }

    /// "websocket" or "polling" (`socket.conn.transport.name`).
    pub(crate) fn transport_name(&self) -> &'static str {
        match &*self.transport.lock() {
            Transport::Ws { .. } => "websocket",
            Transport::Polling(_) => "polling",
        }
    }
}

/// A refused request, as engine.io reports it in `connection_error`: the
/// code, and the event's `context` as a JSON object (`{"transport":…}`,
/// `{"sid":…}`, `{"method":…}`, `{"name":"TRANSPORT_MISMATCH",…}`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: HttpErrorCode,
    pub context: String,
}

impl Refusal {
    /// `fields`: the context's members in order (None is `null`).
    fn new(code: HttpErrorCode, fields: &[(&str, Option<&str>)]) -> Self {
        let mut context = String::from("{");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                context.push(',');
            }
            push_json_string(&mut context, k);
            context.push(':');
            match v {
                Some(v) => push_json_string(&mut context, v),
                None => context.push_str("null"),
            }
        }
        context.push('}');
        Self { code, context }
    }

    fn unknown_transport(transport: Option<&str>) -> Self {
        Self::new(HttpErrorCode::TransportUnknown, &[("transport", transport)])
    }

    /// A new session after `close_all`.
    fn server_closed() -> Self {
        Self::new(HttpErrorCode::BadRequest, &[("name", Some("SERVER_CLOSED"))])
    }

    fn unknown_sid(sid: &str) -> Self {
        Self::new(HttpErrorCode::SessionIdUnknown, &[("sid", Some(sid))])
    }

    /// A request for a session on the transport it is not on.
    fn mismatch(transport: &str, previous: &str) -> Self {
        Self::new(
            HttpErrorCode::BadRequest,
            &[
                ("name", Some("TRANSPORT_MISMATCH")),
                ("transport", Some(transport)),
                ("previousTransport", Some(previous)),
            ],
        )
    }

    /// A handshake for a protocol other than v4: engine.io reads any `EIO`
    /// but "4" as protocol 3.
    fn unsupported_version() -> Self {
        Self { code: HttpErrorCode::UnsupportedProtocolVersion, context: r#"{"protocol":3}"#.into() }
    }

    /// allowRequest (or the `cors` policy, for upgrades) said no; `message`
    /// is the one it gave.
    pub(crate) fn forbidden(message: Option<&str>) -> Self {
        Self::new(HttpErrorCode::Forbidden, &[("message", message)])
    }
}

/// The answer to a polling request that can be given at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PollAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    /// Set when the answer refuses the request (the body is its JSON).
    pub error: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PollReply {
    Now(PollAnswer),
    /// A GET with nothing to say yet: answered after `poll_ready(req)`.
    Held,
}

const TEXT: &str = "text/plain; charset=UTF-8";

fn answer(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> PollReply {
    PollReply::Now(PollAnswer { status, content_type, body: body.into(), error: None })
}

fn http_error(refused: Refusal) -> PollReply {
    PollReply::Now(refusal(refused, None))
}

/// engine.io's `abortRequest` answer (`message`: allowRequest's own, in
/// place of the code's).
pub(crate) fn refusal(refused: Refusal, message: Option<&str>) -> PollAnswer {
    let (status, body) = packet::error_body(refused.code, message);
    PollAnswer { status, content_type: "application/json", body: body.into(), error: Some(refused) }
}

/// The answer to a refused WebSocket upgrade, with its refusal: engine.io's
/// `abortUpgrade` (400, the message as text/html) when `allowRequest`
/// refused, or 403 "Origin not allowed" when the `cors` policy did
/// (ferrosocket applies it to upgrades; engine.io does not).
pub(crate) fn upgrade_refusal(origin: bool, message: Option<&str>) -> (Refusal, Vec<u8>) {
    if origin {
        let text = "Origin not allowed";
        let response = crate::ws::handshake::simple_response(
            403,
            "Forbidden",
            &[("Content-type", "text/html")],
            text.as_bytes(),
            false,
        );
        return (Refusal::forbidden(Some(text)), response);
    }
    (Refusal::forbidden(message), abort_upgrade(message.unwrap_or(HttpErrorCode::Forbidden.message())))
}

/// The query part of a request target.
fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, q)| q)
}

/// A closed session still answering one more GET, and since when.
type Lingering = (Arc<Session>, Instant);

pub(crate) struct Engine {
    me: Weak<Engine>,
    cfg: EngineConfig,
    handler: Arc<dyn EngineHandler>,
    /// Sessions by WebSocket connection id (the transport's events arrive by
    /// conn), upgrade probes included.
    by_conn: Mutex<HashMap<u64, Arc<Session>>>,
    by_sid: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    /// Held polling GETs by request id.
    polls: Mutex<HashMap<u64, Arc<Session>>>,
    /// Polling sessions closed by the server with packets still queued,
    /// until the client's next GET takes them (or pingTimeout passes).
    closing: Mutex<HashMap<Arc<str>, Lingering>>,
    /// Upgrades the HTTP front above must see first, on a listener that
    /// hands it what Rust does not serve: ones with an Origin (its CORS
    /// policy) and handshakes without a `sid` (its `allowRequest`).
    front_checks_origin: AtomicBool,
    front_checks_handshake: AtomicBool,
    /// The WebSocket server whose route this engine serves (set by `start`);
    /// sessions on a WebSocket send through it.
    server: std::sync::OnceLock<Weak<ServerCore>>,
    /// Held GETs served in Rust ([`PollingService`], on an App's listener),
    /// by request id: told here rather than through the layer above.
    native_polls: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<()>>>,
    next_native: std::sync::atomic::AtomicU64,
    /// `close_all` ran: no new sessions. An engine on an App outlives its
    /// Socket.IO server's close (the App's routes stay), and a session
    /// opened then would reach no one.
    closed: AtomicBool,
}

/// Request ids of Rust-served polls, apart from the ids JS gives its own.
const NATIVE_POLL_IDS: u64 = 1 << 62;

impl Engine {
    /// What the WebSocket route negotiates (None: no compression).
    pub(crate) fn deflate_config(&self) -> Option<deflate::Config> {
        self.cfg.deflate.map(|d| d.config)
    }

    /// Bytes one client may have waiting (see [`EngineConfig::max_buffered`]).
    pub(crate) fn max_buffered(&self) -> usize {
        self.cfg.max_buffered
    }

    pub(crate) fn new(cfg: EngineConfig, handler: Arc<dyn EngineHandler>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            cfg,
            handler,
            by_conn: Mutex::new(HashMap::new()),
            by_sid: RwLock::new(HashMap::new()),
            polls: Mutex::new(HashMap::new()),
            closing: Mutex::new(HashMap::new()),
            front_checks_origin: AtomicBool::new(false),
            front_checks_handshake: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            server: std::sync::OnceLock::new(),
            native_polls: Mutex::new(HashMap::new()),
            next_native: std::sync::atomic::AtomicU64::new(NATIVE_POLL_IDS),
        })
    }

    /// The held GET `req` can be answered: a Rust-served one is woken here,
    /// one held by JS is told through the layer above.
    fn poll_ready(&self, req: u64) {
        if let Some(tx) = self.native_polls.lock().remove(&req) {
            let _ = tx.send(());
            return;
        }
        self.handler.poll_ready(req);
    }

    /// What the HTTP front checks in JS (see `front_checks_origin`); set
    /// before listening.
    pub(crate) fn set_front_checks(&self, origin: bool, handshake: bool) {
        self.front_checks_origin.store(origin, Ordering::Relaxed);
        self.front_checks_handshake.store(handshake, Ordering::Relaxed);
    }

    pub(crate) fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.by_sid.read().get(sid).cloned()
    }

    pub(crate) fn session_count(&self) -> usize {
        self.by_sid.read().len()
    }

    /// The heartbeat. Its tick is a twentieth of the shorter interval (tests
    /// use ~100 ms intervals, production 20-25 s), between 10 ms and 1 s.
    /// Deadlines are kept on the nominal schedule (a late tick does not push
    /// them back), and a request for an expired session is refused at once.
    /// Call once, inside the runtime.
    /// Starts the heartbeat; `server` is the one whose route leads here.
    pub(crate) fn start(self: &Arc<Self>, server: &Arc<ServerCore>) {
        let _ = self.server.set(Arc::downgrade(server));
        let tick = (self.cfg.ping_interval.min(self.cfg.ping_timeout).min(self.cfg.upgrade_timeout) / 20)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                let now = Instant::now();
                engine.heartbeat(now);
                engine.handler.tick(now);
            }
        });
    }

    fn server(&self) -> Weak<ServerCore> {
        self.server.get().cloned().unwrap_or_default()
    }

    fn heartbeat(&self, now: Instant) {
        let sessions: Vec<Arc<Session>> = self.by_sid.read().values().cloned().collect();
        self.closing.lock().retain(|_, (_, since)| now.saturating_duration_since(*since) < self.cfg.ping_timeout);
        for s in sessions {
            if self.check_polling(&s, now) {
                continue;
            }
            let unread = match &*s.transport.lock() {
                Transport::Ws { conn, server } => server.upgrade().is_some_and(|srv| srv.is_unread(conn)),
                Transport::Polling(_) => false,
            };
            let mut hb = s.heartbeat.lock();
            if unread && (hb.awaiting_pong || s.eio3) {
                // Its pong (v3: its ping) may be waiting in the kernel while
                // the layer above is behind: the wait starts over once it
                // is read again, as the core API's idle timer does.
                hb.since = now;
                continue;
            }
            let elapsed = now.saturating_duration_since(hb.since);
            if s.eio3 {
                // v3: the client pings; silence for both intervals ends it.
                if elapsed >= self.cfg.ping_interval + self.cfg.ping_timeout {
                    drop(hb);
                    self.end_session(&s, CloseReason::PingTimeout, true);
                }
                continue;
            }
            if hb.awaiting_pong {
                if elapsed >= self.cfg.ping_timeout {
                    drop(hb);
                    self.end_session(&s, CloseReason::PingTimeout, true);
                    continue;
                }
            } else if elapsed >= self.cfg.ping_interval {
                hb.awaiting_pong = true;
                hb.since += self.cfg.ping_interval;
                drop(hb);
                s.send(&Packet::Ping(None));
            }
        }
    }

    /// Whether the session's heartbeat deadline has passed (the tick may not
    /// have seen it yet).
    fn expired(&self, s: &Session, now: Instant) -> bool {
        let hb = s.heartbeat.lock();
        let limit =
            if hb.awaiting_pong { self.cfg.ping_timeout } else { self.cfg.ping_interval + self.cfg.ping_timeout };
        now.saturating_duration_since(hb.since) >= limit
    }

    /// Polling upkeep, under one look at the transport: a queue past its cap
    /// ends the session (returns true); a probe that has not sent `5` within
    /// upgradeTimeout is closed, and the session carries on polling.
    fn check_polling(&self, s: &Arc<Session>, now: Instant) -> bool {
        let (overflowed, late) = match &mut *s.transport.lock() {
            Transport::Polling(p) => {
                let late = match &p.probe {
                    Some(probe) if now.saturating_duration_since(probe.since) >= self.cfg.upgrade_timeout => {
                        p.take_probe()
                    }
                    _ => None,
                };
                (p.overflowed, late)
            }
            Transport::Ws { .. } => (false, None),
        };
        if let Some(probe) = late {
            self.drop_probe(&probe.conn, &probe.server);
        }
        if overflowed {
            self.end_session(s, CloseReason::TransportError, true);
        }
        overflowed
    }

    fn drop_probe(&self, conn: &Arc<Conn>, server: &Weak<ServerCore>) {
        self.by_conn.lock().remove(&conn.id);
        if let Some(server) = server.upgrade() {
            conn.end(&*server, 1000, b"");
        }
    }

    /// Removes the session and tells the layer above, once.
    fn end_session(&self, s: &Arc<Session>, reason: CloseReason, close_transport: bool) {
        if self.by_sid.write().remove(&s.sid).is_none() {
            return;
        }
        let mut t = s.transport.lock();
        match &mut *t {
            Transport::Ws { conn, server } => {
                let (conn, server) = (conn.clone(), server.clone());
                drop(t);
                self.by_conn.lock().remove(&conn.id);
                if close_transport {
                    if let Some(server) = server.upgrade() {
                        conn.end(&*server, 1000, b"");
                    }
                }
            }
            Transport::Polling(p) => {
                // A held GET learns of the end: a noop when the client closed
                // (engine.io's polling onClose), else the close packet.
                let close_after = p.close_pending;
                if p.waiter.is_some() && p.queue.is_empty() && !close_after {
                    let last = if reason == CloseReason::TransportClose { Packet::Noop } else { Packet::Close };
                    p.queue.push(last);
                } else if p.waiter.is_some()
                    && !close_after
                    && !matches!(p.queue.last(), Some(Packet::Close))
                    && reason != CloseReason::TransportClose
                {
                    p.queue.push(Packet::Close);
                }
                s.notify(p);
                p.closed = true;
                // A server-side close with packets queued and no GET held
                // (`41`, `1`): they wait for the client's next GET, as
                // engine.io waits for the drain before closing.
                let server_side = matches!(reason, CloseReason::ForcedClose | CloseReason::ParseError);
                let linger = server_side && (close_after || (p.waiter.is_none() && !p.queue.is_empty()));
                let probe = p.take_probe();
                drop(t);
                if linger {
                    self.closing.lock().insert(s.sid.clone(), (s.clone(), Instant::now()));
                }
                if let Some(probe) = probe {
                    self.drop_probe(&probe.conn, &probe.server);
                }
            }
        }
        self.handler.close(s, reason);
    }

    /// Server-initiated close of every session (`io.close()`).
    pub(crate) fn close_all(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let sessions: Vec<Arc<Session>> = self.by_sid.read().values().cloned().collect();
        for s in sessions {
            s.send(&Packet::Close);
            self.end_session(&s, CloseReason::ForcedClose, true);
        }
    }

    fn on_packet(&self, s: &Arc<Session>, p: Packet) {
        match p {
            Packet::Pong(_) => {
                let mut hb = s.heartbeat.lock();
                hb.awaiting_pong = false;
                hb.since = Instant::now();
            }
            Packet::Message(payload) => {
                if self.handler.message(s, payload).is_err() {
                    // A protocol violation above (socket.io's `client.close()`):
                    // a clean close, the packets queued before it first.
                    s.close_for(CloseReason::ParseError);
                }
            }
            // v3: the client pings, the server answers (with its data).
            Packet::Ping(data) if s.eio3 => {
                s.heartbeat.lock().since = Instant::now();
                s.send(&Packet::Pong(data));
            }
            // engine.io 6: a v4 client ping is "invalid heartbeat direction".
            Packet::Ping(_) => self.end_session(s, CloseReason::TransportError, true),
            Packet::Close => self.end_session(s, CloseReason::TransportClose, true),
            // Open/upgrade/noop from a client are ignored, as engine.io does.
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn open_info(&self, sid: &str, upgrades: bool) -> OpenInfo {
        OpenInfo {
            sid: sid.to_string(),
            upgrades: if upgrades { vec!["websocket"] } else { Vec::new() },
            ping_interval: self.cfg.ping_interval.as_millis() as u64,
            ping_timeout: self.cfg.ping_timeout.as_millis() as u64,
            max_payload: self.cfg.max_payload as u64,
        }
    }

    fn new_session(&self, sid: String, transport: Transport, handshake: Handshake, eio3: bool) -> Arc<Session> {
        Arc::new(Session {
            sid: sid.into(),
            tag: std::sync::atomic::AtomicU64::new(0),
            engine: self.me.clone(),
            heartbeat: Mutex::new(Heartbeat { since: Instant::now(), awaiting_pong: false }),
            transport: Mutex::new(transport),
            handshake,
            eio3,
        })
    }

    /// engine.io's `verify`, which runs before `allowRequest`: the transport
    /// must be one we serve, and a handshake (no `sid`) must be a GET on
    /// the polling transport. Requests with a `sid` are decided by
    /// `handle_poll` itself.
    pub(crate) fn verify(&self, req: &Request) -> Option<Refusal> {
        self.verify_query(&packet::parse_query(query_of(&req.url)), &req.method)
    }

    fn verify_query(&self, q: &packet::Query, method: &str) -> Option<Refusal> {
        let polling = q.transport.as_deref() == Some("polling") && self.cfg.polling;
        let websocket = q.transport.as_deref() == Some("websocket") && self.cfg.websocket;
        if !polling && !websocket {
            return Some(Refusal::unknown_transport(q.transport.as_deref()));
        }
        if q.sid.is_none() {
            if self.closed.load(Ordering::Relaxed) {
                return Some(Refusal::server_closed());
            }
            if method != "GET" {
                return Some(Refusal::new(HttpErrorCode::BadHandshakeMethod, &[("method", Some(method))]));
            }
            if websocket {
                // A websocket handshake that is not an upgrade request.
                return Some(Refusal::new(HttpErrorCode::BadRequest, &[("name", Some("TRANSPORT_HANDSHAKE_ERROR"))]));
            }
        }
        None
    }

    /// engine.io's `verify` for a WebSocket upgrade: what `accept` would
    /// refuse, asked by the HTTP front before `allowRequest` runs.
    /// The protocol version is the handshake's business, after allowRequest.
    pub(crate) fn verify_upgrade(&self, req: &Request) -> Option<Refusal> {
        self.check_upgrade(req, false).err()
    }

    /// The WebSocket upgrade must name the websocket transport (and, with
    /// `version`, Engine.IO v4); with a `sid` it is an upgrade of a polling
    /// session.
    fn check_upgrade(&self, req: &Request, version: bool) -> Result<(), Refusal> {
        let q = packet::parse_query(req.query());
        if q.transport.as_deref() != Some("websocket") || !self.cfg.websocket {
            return Err(Refusal::unknown_transport(q.transport.as_deref()));
        }
        match q.sid.as_deref() {
            None if self.closed.load(Ordering::Relaxed) => Err(Refusal::server_closed()),
            // engine.io reads any EIO but "4" as protocol 3.
            None if version && !q.is_eio4() && !self.cfg.allow_eio3 => Err(Refusal::unsupported_version()),
            None => Ok(()),
            // A probe for an upgrade. One that cannot be (already upgraded
            // or upgrading) is accepted and closed at once, as engine.io does.
            Some(sid) => match self.session(sid) {
                Some(_) if self.cfg.allow_upgrades => Ok(()),
                Some(s) => Err(Refusal::mismatch("websocket", s.transport_name())),
                None => Err(Refusal::unknown_sid(sid)),
            },
        }
    }

    /// A POST for a session is about to be read (`req` as handle_poll takes
    /// it): the body limit, or the answer instead of reading. One POST is
    /// read at a time per session; `end_post` (or the poll that delivers
    /// the body) ends it.
    pub(crate) fn begin_post(&self, req: &Request) -> Result<usize, PollAnswer> {
        let q = packet::parse_query(query_of(&req.url));
        let Some(sid) = q.sid else { return Ok(self.cfg.max_payload) };
        let refuse = |r: Refusal| Err(refusal(r, None));
        let Some(s) = self.session(&sid) else {
            return refuse(Refusal::unknown_sid(&sid));
        };
        let mut t = s.transport.lock();
        let Transport::Polling(p) = &mut *t else {
            return refuse(Refusal::mismatch("polling", "websocket"));
        };
        let declared = req.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.cfg.max_payload as u64) {
            return Err(PollAnswer { status: 413, content_type: TEXT, body: Bytes::new(), error: None });
        }
        // A second POST while one is read ("data request overlap"), or a
        // binary body (v4 sends binary as base64 text: "invalid content"):
        // 400, and the session ends.
        let binary = req.header("content-type") == Some("application/octet-stream");
        if p.posting || (binary && !s.eio3) {
            drop(t);
            self.end_session(&s, CloseReason::TransportError, true);
            return Err(PollAnswer { status: 400, content_type: TEXT, body: Bytes::new(), error: None });
        }
        p.posting = true;
        Ok(self.cfg.max_payload)
    }

    /// The POST `begin_post` allowed was not delivered (the client went, or
    /// the body passed the limit: `too_large`, answered 413).
    pub(crate) fn end_post(&self, sid: &str, too_large: bool) -> Option<PollAnswer> {
        if let Some(s) = self.session(sid) {
            if let Transport::Polling(p) = &mut *s.transport.lock() {
                p.posting = false;
            }
        }
        too_large.then(|| PollAnswer { status: 413, content_type: TEXT, body: Bytes::new(), error: None })
    }

    /// The session a request names, as every decision here reads it (the
    /// last non-empty `sid`), or None for a handshake. The HTTP front asks
    /// this rather than parse the query itself: two parsers that disagree
    /// on `sid=abc&sid=` would let a handshake skip `allowRequest`.
    pub(crate) fn sid_of(&self, req: &Request) -> Option<String> {
        packet::parse_query(query_of(&req.url)).sid
    }

    /// One long-polling request, already read whole (Node's HTTP server
    /// parses it; CORS and `allowRequest` ran there). `body` is the POST body.
    pub(crate) fn handle_poll(
        &self,
        req_id: u64,
        req: &Request,
        body: &[u8],
        secure: bool,
        remote: SocketAddr,
    ) -> PollReply {
        let q = packet::parse_query(query_of(&req.url));
        if let Some(refused) = self.verify_query(&q, &req.method) {
            return http_error(refused);
        }
        let websocket = q.transport.as_deref() == Some("websocket");
        let Some(sid) = q.sid else {
            if !q.is_eio4() && !self.cfg.allow_eio3 {
                return http_error(Refusal::unsupported_version());
            }
            if q.jsonp.is_some() {
                // JSONP polling (for browsers without CORS) is not supported.
                return http_error(Refusal::unknown_transport(Some("polling")));
            }
            return self.poll_handshake(req, secure, remote, !q.is_eio4());
        };
        let Some(s) = self.session(&sid) else {
            // The last packets of a session the server closed.
            let lingering = if req.method == "GET" { self.closing.lock().remove(sid.as_str()) } else { None };
            if let Some((s, since)) = lingering {
                if let Transport::Polling(p) = &mut *s.transport.lock() {
                    let body = p.take_body(s.eio3).unwrap_or_else(|| payload(s.eio3, &[Packet::Close]));
                    if p.close_pending || !p.queue.is_empty() {
                        // More for the GET after this one (the deferred `1`).
                        self.closing.lock().insert(s.sid.clone(), (s.clone(), since));
                    }
                    return answer(200, TEXT, body);
                }
            }
            return http_error(Refusal::unknown_sid(&sid));
        };
        if req.method == "POST" {
            // The body `begin_post` allowed is here, whatever the answer.
            if let Transport::Polling(p) = &mut *s.transport.lock() {
                p.posting = false;
            }
        }
        if self.expired(&s, Instant::now()) {
            self.end_session(&s, CloseReason::PingTimeout, true);
            return http_error(Refusal::unknown_sid(&sid));
        }
        if websocket {
            return http_error(Refusal::mismatch("websocket", s.transport_name()));
        }
        match req.method.as_str() {
            "GET" => self.poll_get(req_id, &s),
            "POST" => self.poll_post(&s, body, req.header("content-type") == Some("application/octet-stream")),
            // engine.io's polling transport answers other methods with 500.
            _ => answer(500, TEXT, Bytes::new()),
        }
    }

    fn poll_handshake(&self, req: &Request, secure: bool, remote: SocketAddr, eio3: bool) -> PollReply {
        let Ok(sid) = packet::generate_sid() else {
            return http_error(Refusal::new(HttpErrorCode::BadRequest, &[("name", Some("ID_GENERATION_ERROR"))]));
        };
        let session = self.new_session(
            sid.clone(),
            Transport::Polling(Box::default()),
            Handshake::new(req, secure, remote),
            eio3,
        );
        let open = self.open_info(&sid, self.cfg.allow_upgrades && self.cfg.websocket);
        self.by_sid.write().insert(session.sid.clone(), session.clone());
        self.handler.open(&session);
        // The open packet first, then whatever the layer above sent on open.
        let mut packets = vec![Packet::Open(open)];
        if let Transport::Polling(p) = &mut *session.transport.lock() {
            packets.append(&mut p.queue);
            p.queued_bytes = 0;
        }
        answer(200, TEXT, payload(eio3, &packets))
    }

    fn poll_get(&self, req_id: u64, s: &Arc<Session>) -> PollReply {
        let mut t = s.transport.lock();
        let Transport::Polling(p) = &mut *t else {
            // Upgraded: polling is over for this sid.
            return http_error(Refusal::mismatch("polling", "websocket"));
        };
        if p.waiter.is_some() {
            // Overlapping GETs: 400, and the session ends (the held GET gets `1`).
            drop(t);
            self.end_session(s, CloseReason::TransportError, true);
            return answer(400, TEXT, Bytes::new());
        }
        if let Some(body) = p.take_body(s.eio3) {
            return answer(200, TEXT, body);
        }
        p.waiter = Some(req_id);
        p.notified = false;
        drop(t);
        self.polls.lock().insert(req_id, s.clone());
        PollReply::Held
    }

    fn poll_post(&self, s: &Arc<Session>, body: &[u8], binary: bool) -> PollReply {
        if !matches!(&*s.transport.lock(), Transport::Polling(_)) {
            return http_error(Refusal::mismatch("polling", "websocket"));
        }
        if body.len() > self.cfg.max_payload {
            return answer(413, TEXT, Bytes::new());
        }
        // v3 payloads are all or nothing (engine.io-parser 2).
        let decoded: Box<dyn Iterator<Item = Result<Packet, packet::DecodeError>>> = if s.eio3 {
            match v3::decode_payload(body, binary) {
                Ok(packets) => Box::new(packets.into_iter().map(Ok)),
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        } else {
            Box::new(packet::PayloadDecoder::new(body))
        };
        for p in decoded {
            match p {
                Ok(p) => self.on_packet(s, p),
                Err(_) => {
                    self.end_session(s, CloseReason::ParseError, true);
                    break;
                }
            }
            if !self.by_sid.read().contains_key(&s.sid) {
                break;
            }
        }
        answer(200, "text/html", Bytes::from_static(b"ok"))
    }

    /// The body for the held GET `req_id` (everything queued by now), or None
    /// if that request is no longer held.
    pub(crate) fn poll_drain(&self, req_id: u64) -> Option<Bytes> {
        let s = self.polls.lock().remove(&req_id)?;
        let mut t = s.transport.lock();
        match &mut *t {
            Transport::Polling(p) if p.waiter == Some(req_id) => {
                p.waiter = None;
                p.notified = false;
                Some(p.take_body(s.eio3).unwrap_or_else(|| payload(s.eio3, &[Packet::Noop])))
            }
            // Upgraded while held: release it.
            _ => Some(payload(s.eio3, &[Packet::Noop])),
        }
    }

    /// The client went away while its GET was held: engine.io ends the
    /// session ("poll connection closed prematurely" -> transport error).
    pub(crate) fn poll_abort(&self, req_id: u64) {
        let Some(s) = self.polls.lock().remove(&req_id) else { return };
        let held = match &mut *s.transport.lock() {
            Transport::Polling(p) if p.waiter == Some(req_id) => {
                p.waiter = None;
                true
            }
            _ => false,
        };
        if held {
            self.end_session(&s, CloseReason::TransportError, true);
        }
    }

    /// A message on a probing WebSocket: `2probe` -> `3probe` (and a noop to
    /// release the held GET), `5` -> the session moves to the WebSocket.
    fn on_probe(&self, host: &dyn ConnHost, s: &Arc<Session>, conn: &Arc<Conn>, p: Result<Packet, ()>) {
        match p {
            Ok(Packet::Ping(Some(data))) if &data[..] == b"probe" => {
                let (_, pong) = packet::encode_ws(&Packet::Pong(Some(Bytes::from_static(b"probe"))));
                conn.send(host, &pong, false);
                if let Transport::Polling(p) = &mut *s.transport.lock() {
                    // One noop per probe releases the held GET; repeats get
                    // their 3probe and nothing more.
                    if !p.probed {
                        p.probed = true;
                        s.queue(p, Packet::Noop);
                    }
                }
            }
            Ok(Packet::Upgrade) => {
                let mut t = s.transport.lock();
                let Transport::Polling(p) = &mut *t else { return };
                if !p.probed {
                    p.take_probe();
                    drop(t);
                    return self.drop_probe(conn, &self.server());
                }
                let queued = std::mem::take(&mut p.queue);
                p.queued_bytes = 0;
                let waiter = p.waiter.take();
                *t = Transport::Ws { conn: conn.clone(), server: self.server() };
                drop(t);
                if let Some(req) = waiter {
                    // Answered with a noop by poll_drain.
                    self.poll_ready(req);
                }
                self.handler.upgrade(s);
                for packet in &queued {
                    if !matches!(packet, Packet::Noop) {
                        s.send(packet);
                    }
                }
            }
            // Anything else aborts the upgrade (engine.io closes the probe).
            _ => {
                if let Transport::Polling(p) = &mut *s.transport.lock() {
                    p.take_probe();
                }
                self.drop_probe(conn, &self.server());
            }
        }
    }

    fn is_probe(s: &Session, conn: &Conn) -> bool {
        matches!(&*s.transport.lock(), Transport::Polling(p) if p.probe.as_ref().is_some_and(|pr| pr.conn.id == conn.id))
    }
}

/// Engine.IO long-polling answered in Rust, for a listener with no Node HTTP
/// server in front (an App's: `io.attachApp`). No CORS or `allowRequest`
/// here: those need JS, and the attachApp form refuses them.
pub(crate) struct PollingService(pub(crate) Arc<Engine>);

fn http_answer(a: &PollAnswer) -> Vec<u8> {
    crate::ws::handshake::simple_response(a.status, "", &[("Content-Type", a.content_type)], &a.body, false)
}

/// Ends a Rust-served poll that did not finish (the client went away).
struct PollGuard {
    engine: Arc<Engine>,
    id: u64,
    done: bool,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if !self.done {
            self.engine.native_polls.lock().remove(&self.id);
            self.engine.poll_abort(self.id);
        }
    }
}

impl HttpService for PollingService {
    fn body_limit(&self, req: &Request) -> Result<usize, Vec<u8>> {
        if req.method != "POST" {
            return Ok(0);
        }
        self.0.begin_post(req).map_err(|a| http_answer(&a))
    }

    fn body_failed(&self, req: &Request, too_large: bool) {
        if let Some(sid) = self.0.sid_of(req) {
            self.0.end_post(&sid, too_large);
        }
    }

    fn serve(&self, req: Request, body: Vec<u8>, remote: SocketAddr, secure: bool) -> ServiceFuture {
        let engine = self.0.clone();
        Box::pin(async move {
            let id = engine.next_native.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = tokio::sync::oneshot::channel();
            // Before the poll: a packet sent meanwhile must find the waiter.
            engine.native_polls.lock().insert(id, tx);
            let mut guard = PollGuard { engine: engine.clone(), id, done: false };
            let resp = match engine.handle_poll(id, &req, &body, secure, remote) {
                PollReply::Now(a) => {
                    engine.native_polls.lock().remove(&id);
                    http_answer(&a)
                }
                PollReply::Held => {
                    let _ = rx.await;
                    let body = engine.poll_drain(id).unwrap_or_default();
                    http_answer(&PollAnswer { status: 200, content_type: TEXT, body, error: None })
                }
            };
            guard.done = true;
            resp
        })
    }
}

/// A refused upgrade, as engine.io's `abortUpgrade`: always 400, the bare
/// message as text/html.
pub(crate) fn upgrade_response(refused: &Refusal) -> Vec<u8> {
    abort_upgrade(refused.code.message())
}

fn abort_upgrade(message: &str) -> Vec<u8> {
    crate::ws::handshake::simple_response(
        400,
        "Bad Request",
        &[("Content-type", "text/html")],
        message.as_bytes(),
        false,
    )
}

impl WsHandler for Engine {
    fn hand_off_upgrade(&self, req: &Request) -> bool {
        (self.front_checks_origin.load(Ordering::Relaxed) && req.header("origin").is_some())
            || (self.front_checks_handshake.load(Ordering::Relaxed) && packet::parse_query(req.query()).sid.is_none())
    }

    fn accept(&self, req: &Request) -> Result<(), Vec<u8>> {
        self.check_upgrade(req, true).map_err(|r| {
            self.handler.refused(&r, req);
            upgrade_response(&r)
        })
    }

    fn open(&self, host: &dyn ConnHost, conn: &Arc<Conn>) {
        // Always reached through open_request on this route.
        conn.terminate(host);
    }

    fn open_request(&self, host: &dyn ConnHost, conn: &Arc<Conn>, req: &Request, secure: bool) {
        let q = packet::parse_query(req.query());
        if let Some(sid) = q.sid {
            // The probe of an upgrade (accept() checked the session).
            let Some(s) = self.session(&sid) else { return conn.terminate(host) };
            let attached = match &mut *s.transport.lock() {
                Transport::Polling(p) if p.probe.is_none() && !p.closed => {
                    p.probe = Some(Probe { conn: conn.clone(), server: self.server(), since: Instant::now() });
                    true
                }
                _ => false,
            };
            if attached {
                self.by_conn.lock().insert(conn.id, s);
            } else {
                conn.terminate(host);
            }
            return;
        }
        let Ok(sid) = packet::generate_sid() else {
            conn.terminate(host);
            return;
        };
        let transport = Transport::Ws { conn: conn.clone(), server: self.server() };
        let session = self.new_session(sid.clone(), transport, Handshake::new(req, secure, conn.remote), !q.is_eio4());
        // Opened directly over WebSocket: nothing to upgrade to.
        let open = self.open_info(&sid, false);
        self.by_conn.lock().insert(conn.id, session.clone());
        self.by_sid.write().insert(session.sid.clone(), session.clone());
        session.send(&Packet::Open(open));
        self.handler.open(&session);
    }

    fn message(&self, host: &dyn ConnHost, conn: &Conn, payload: &[u8], binary: bool) {
        let Some(s) = self.by_conn.lock().get(&conn.id).cloned() else { return };
        let p = if binary && s.eio3 {
            v3::decode_binary(payload).map_err(|_| ())
        } else if binary {
            Ok(Packet::Message(Payload::Binary(Bytes::copy_from_slice(payload))))
        } else {
            packet::decode_text(payload).map_err(|_| ())
        };
        if Self::is_probe(&s, conn) {
            let Some(conn) = self.server().upgrade().and_then(|server| server.get(conn.id)) else { return };
            return self.on_probe(host, &s, &conn, p);
        }
        match p {
            Ok(p) => self.on_packet(&s, p),
            Err(()) => self.end_session(&s, CloseReason::ParseError, true),
        }
    }

    fn ping(&self, _: &dyn ConnHost, _: &Conn, _: &[u8]) {}
    fn pong(&self, _: &dyn ConnHost, _: &Conn, _: &[u8]) {}
    fn drain(&self, _: &dyn ConnHost, _: &Conn) {}

    /// 1009 from us: a message too large either way (the client's over
    /// maxHttpBufferSize, or ours queued past maxBackpressure): engine.io's
    /// "transport error"; any other close, the client's own 1009 included,
    /// is "transport close".
    fn close(&self, _: &dyn ConnHost, conn: &Conn, code: u16, _reason: &[u8]) {
        let Some(s) = self.by_conn.lock().remove(&conn.id) else { return };
        let was_probe = match &mut *s.transport.lock() {
            Transport::Polling(p) => {
                if p.probe.as_ref().is_some_and(|pr| pr.conn.id == conn.id) {
                    p.take_probe();
                }
                true
            }
            Transport::Ws { conn: c, .. } => c.id != conn.id,
        };
        if !was_probe {
            let ours = code == 1009 && !conn.closed_by_peer();
            let reason = if ours { CloseReason::TransportError } else { CloseReason::TransportClose };
            self.end_session(&s, reason, false);
        }
    }
}
