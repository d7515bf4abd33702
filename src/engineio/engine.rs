//! Engine.IO v4 sessions over the WebSocket transport, with the server-driven
//! heartbeat, entirely in Rust: a million idle Socket.IO clients must cost
//! the JS thread nothing.
//!
//! The engine is the `WsHandler` of the Engine.IO route: it sees frames, not
//! JS. It hands the layer above (Socket.IO) whole messages through
//! [`EngineHandler`]. Long-polling and the polling -> websocket upgrade are
//! the next step of issue #3; `Session` is shaped so that a session outlives
//! any one transport.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::packet::{self, HttpErrorCode, OpenInfo, Packet, Payload};
use crate::ws::{Conn, Request, ServerCore, WsHandler};

#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// maxHttpBufferSize: the largest message either transport accepts.
    pub max_payload: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        // engine.io 6.6 defaults.
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
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
}

struct Heartbeat {
    /// When the last ping went out (or the session opened / the last pong came).
    since: Instant,
    awaiting_pong: bool,
}

pub(crate) struct Session {
    pub(crate) sid: String,
    conn: Arc<Conn>,
    server: Weak<ServerCore>,
    heartbeat: Mutex<Heartbeat>,
}

impl Session {
    /// Sends one Engine.IO packet on the session's transport. False when the
    /// transport is gone.
    pub(crate) fn send(&self, packet: &Packet) -> bool {
        let (binary, bytes) = packet::encode_ws(packet);
        self.send_raw(binary, &bytes)
    }

    /// Sends a WebSocket frame built once for many sessions (broadcast):
    /// the bytes are shared, not copied.
    pub(crate) fn send_framed(&self, framed: &Bytes) -> bool {
        let Some(server) = self.server.upgrade() else { return false };
        self.conn.send_frame(&server, framed.clone()).is_some()
    }

    fn send_raw(&self, binary: bool, bytes: &Bytes) -> bool {
        let Some(server) = self.server.upgrade() else { return false };
        self.conn.send(&server, bytes, binary).is_some()
    }

    /// Server-side close ("forced close"): the close packet, then the socket.
    pub(crate) fn close(&self) {
        self.send(&Packet::Close);
        if let Some(server) = self.server.upgrade() {
            self.conn.end(&server, 1000, b"");
        }
    }
}

pub(crate) struct Engine {
    cfg: EngineConfig,
    handler: Arc<dyn EngineHandler>,
    /// Sessions by WebSocket connection id (the transport's events arrive by conn).
    by_conn: Mutex<HashMap<u64, Arc<Session>>>,
    by_sid: RwLock<HashMap<String, Arc<Session>>>,
}

impl Engine {
    pub(crate) fn new(cfg: EngineConfig, handler: Arc<dyn EngineHandler>) -> Arc<Self> {
        Arc::new(Self { cfg, handler, by_conn: Mutex::new(HashMap::new()), by_sid: RwLock::new(HashMap::new()) })
    }

    pub(crate) fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.by_sid.read().get(sid).cloned()
    }

    pub(crate) fn session_count(&self) -> usize {
        self.by_sid.read().len()
    }

    /// The heartbeat. Its tick is a quarter of the shorter interval (tests
    /// use ~100 ms intervals, production 20-25 s), between 10 ms and 1 s.
    /// Call once, inside the runtime.
    pub(crate) fn start(self: &Arc<Self>) {
        let tick = (self.cfg.ping_interval.min(self.cfg.ping_timeout) / 4)
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

    fn heartbeat(&self, now: Instant) {
        let sessions: Vec<Arc<Session>> = self.by_sid.read().values().cloned().collect();
        for s in sessions {
            let mut hb = s.heartbeat.lock();
            let elapsed = now.saturating_duration_since(hb.since);
            if hb.awaiting_pong {
                if elapsed >= self.cfg.ping_timeout {
                    drop(hb);
                    self.end_session(&s, CloseReason::PingTimeout, true);
                }
            } else if elapsed >= self.cfg.ping_interval {
                hb.awaiting_pong = true;
                hb.since = now;
                drop(hb);
                s.send(&Packet::Ping(None));
            }
        }
    }

    /// Removes the session and tells the layer above, once.
    fn end_session(&self, s: &Arc<Session>, reason: CloseReason, close_transport: bool) {
        if self.by_sid.write().remove(&s.sid).is_none() {
            return;
        }
        self.by_conn.lock().remove(&s.conn.id);
        if close_transport {
            if let Some(server) = s.server.upgrade() {
                s.conn.end(&server, 1000, b"");
            }
        }
        self.handler.close(s, reason);
    }

    /// Server-initiated close of every session (`io.close()`).
    pub(crate) fn close_all(&self) {
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
                    self.end_session(s, CloseReason::ParseError, true);
                }
            }
            // engine.io 6: a client ping is "invalid heartbeat direction".
            Packet::Ping(_) => self.end_session(s, CloseReason::TransportError, true),
            Packet::Close => self.end_session(s, CloseReason::TransportClose, true),
            // Open/upgrade/noop from a client are ignored, as engine.io does.
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }
}

fn error_response(code: HttpErrorCode) -> Vec<u8> {
    let (status, body) = packet::error_body(code);
    crate::ws::handshake::simple_response(
        status,
        crate::ws::handshake::status_reason(status),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        false,
    )
}

impl WsHandler for Engine {
    /// The WebSocket upgrade must name Engine.IO v4 and the websocket
    /// transport. (A `sid`, i.e. an upgrade from polling, comes with the
    /// polling transport.)
    fn accept(&self, req: &Request) -> Result<(), Vec<u8>> {
        let q = packet::parse_query(req.query());
        if !q.is_eio4() {
            return Err(error_response(HttpErrorCode::UnsupportedProtocolVersion));
        }
        if q.transport.as_deref() != Some("websocket") {
            return Err(error_response(HttpErrorCode::TransportUnknown));
        }
        if q.sid.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(error_response(HttpErrorCode::SessionIdUnknown));
        }
        Ok(())
    }

    fn open(&self, server: &ServerCore, conn: &Arc<Conn>) {
        let Ok(sid) = packet::generate_sid() else {
            conn.terminate(server);
            return;
        };
        let session = Arc::new(Session {
            sid: sid.clone(),
            conn: conn.clone(),
            server: server.weak(),
            heartbeat: Mutex::new(Heartbeat { since: Instant::now(), awaiting_pong: false }),
        });
        let open = OpenInfo {
            sid: sid.clone(),
            // Opened directly over WebSocket: nothing to upgrade to.
            upgrades: Vec::new(),
            ping_interval: self.cfg.ping_interval.as_millis() as u64,
            ping_timeout: self.cfg.ping_timeout.as_millis() as u64,
            max_payload: self.cfg.max_payload as u64,
        };
        self.by_conn.lock().insert(conn.id, session.clone());
        self.by_sid.write().insert(sid, session.clone());
        session.send(&Packet::Open(open));
        self.handler.open(&session);
    }

    fn message(&self, _server: &ServerCore, conn: &Conn, payload: &[u8], binary: bool) {
        let Some(s) = self.by_conn.lock().get(&conn.id).cloned() else { return };
        if binary {
            return self.on_packet(&s, Packet::Message(Payload::Binary(Bytes::copy_from_slice(payload))));
        }
        match packet::decode_text(payload) {
            Ok(p) => self.on_packet(&s, p),
            Err(_) => self.end_session(&s, CloseReason::ParseError, true),
        }
    }

    fn ping(&self, _: &ServerCore, _: &Conn, _: &[u8]) {}
    fn pong(&self, _: &ServerCore, _: &Conn, _: &[u8]) {}
    fn drain(&self, _: &ServerCore, _: &Conn) {}

    fn close(&self, _: &ServerCore, conn: &Conn, _code: u16, _reason: &[u8]) {
        let s = self.by_conn.lock().get(&conn.id).cloned();
        if let Some(s) = s {
            self.end_session(&s, CloseReason::TransportClose, false);
        }
    }
}

/// Remote address of a session's transport (for `handshake.address`).
impl Session {
    pub(crate) fn remote(&self) -> SocketAddr {
        self.conn.remote
    }
}
