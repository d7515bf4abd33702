//! `NativeSocketIo`: the handle lib/socketio/server.js holds. Engine.IO
//! framing, heartbeats, namespaces, rooms and fan-out run in Rust; JS gets
//! CONNECT (for middleware), events and acks as raw JSON text.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::Result;
use napi_derive::napi;

use super::core::{Core, ListenResult};
use super::http::{self, EngineOptions, HttpRequestInfo, PollAnswer};
use crate::engineio::engine::Engine;
use crate::socketio::server::SioServer;

#[napi]
pub struct NativeSocketIo {
    core: Core,
    engine: Arc<Engine>,
    sio: Arc<SioServer>,
}

#[napi]
impl NativeSocketIo {
    #[napi(constructor)]
    pub fn new(opts: EngineOptions, on_events: Function<Buffer, ()>) -> Result<Self> {
        let core = Core::new(opts.workers, None, on_events)?;
        let cfg = http::engine_config(&opts);
        let max_payload = cfg.max_payload;
        let connect_timeout = Duration::from_millis(opts.connect_timeout.unwrap_or(45_000) as u64);
        let sio = SioServer::new(core.sink.clone(), connect_timeout);
        let engine = Engine::new(cfg, sio.clone());
        http::mount(&core, &engine, opts.path.as_deref().unwrap_or("/socket.io"), max_payload)?;
        Ok(Self { core, engine, sio })
    }

    /// Listens in Rust: WebSocket upgrades are served here, every other
    /// connection is handed to JS (HANDOFF events) for the Node HTTP server;
    /// so are upgrades with an Origin when `check_origin` (CORS), and
    /// handshakes when `check_handshake` (allowRequest).
    #[napi]
    pub fn listen(&self, host: String, port: u32, check_origin: bool, check_handshake: bool) -> Result<ListenResult> {
        self.core.server.set_handoff_http(true, check_origin, check_handshake);
        self.core.listen(host, port, None, None)
    }

    /// Takes over the socket `fd` of an upgrade request that Node's HTTP
    /// server read (`head`: bytes read past it). The fd is duplicated: the
    /// caller closes its own copy afterwards.
    #[napi]
    pub fn adopt(&self, fd: i32, req: HttpRequestInfo, head: Buffer) -> Result<()> {
        http::adopt(&self.core, fd, &req, &head)
    }

    /// For an upgrade whose bytes live in Node (TLS terminated by an https
    /// server): a socket pair whose one end becomes the connection; the
    /// returned fd is the other end, which JS pipes to and from its socket.
    #[napi]
    pub fn bridge(&self, req: HttpRequestInfo, head: Buffer) -> Result<i32> {
        http::bridge(&self.core, &req, &head)
    }

    /// One long-polling request (`body`: the POST body). An answer now, or
    /// none: the GET is held until a POLL_READY event for `req_id`.
    #[napi]
    pub fn poll(&self, req_id: f64, req: HttpRequestInfo, body: Option<Buffer>) -> Option<PollAnswer> {
        http::poll(&self.engine, req_id, &req, body.as_deref())
    }

    /// Whether a POST body for `sid` should be read at all.
    #[napi]
    pub fn poll_accepts_post(&self, sid: String) -> bool {
        self.engine.accepts_post(&sid)
    }

    /// The body for a held GET after its POLL_READY (None: no longer held).
    #[napi]
    pub fn poll_drain(&self, req_id: f64) -> Option<String> {
        self.engine.poll_drain(req_id as u64).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// A held GET's client went away.
    #[napi]
    pub fn poll_abort(&self, req_id: f64) {
        self.engine.poll_abort(req_id as u64)
    }

    /// The client's current transport, "polling" or "websocket" (None: gone).
    #[napi]
    pub fn transport_name(&self, key: i64) -> Option<String> {
        self.sio.client(key as u64).map(|c| c.session.transport_name().to_string())
    }

    /// `socket.handshake` material, read when user code asks for it:
    /// [url, issued ms, secure "1"/"0", transport name, headers text, address].
    #[napi]
    pub fn handshake(&self, key: i64) -> Option<Vec<String>> {
        let c = self.sio.client_or_departed(key as u64)?;
        let h = &c.session.handshake;
        Some(vec![
            h.url.to_string(),
            h.issued_ms.to_string(),
            if h.secure { "1" } else { "0" }.to_string(),
            c.session.transport_name().to_string(),
            h.headers.to_string(),
            h.remote.ip().to_string(),
        ])
    }

    /// JS has run the disconnect handlers of closed client `key`: its
    /// handshake need not stay readable any more.
    #[napi]
    pub fn release(&self, key: i64) {
        self.sio.release(key as u64)
    }

    /// Open Engine.IO sessions (`io.engine.clientsCount`).
    #[napi]
    pub fn clients_count(&self) -> u32 {
        self.engine.session_count() as u32
    }

    /// Middleware passed: `key` joins `nsp` as `socket_id`.
    #[napi]
    pub fn accept(&self, key: i64, nsp: String, socket_id: String) -> bool {
        self.sio.accept(key as u64, &nsp, &socket_id)
    }

    /// Middleware refused: CONNECT_ERROR with `message` and optional JSON `data`.
    #[napi]
    pub fn reject(&self, key: i64, nsp: String, message: String, data: Option<String>) -> bool {
        self.sio.reject(key as u64, &nsp, &message, data.as_deref())
    }

    /// One encoded Socket.IO packet (`2["ev",…]`) to one client.
    #[napi]
    pub fn emit(&self, key: i64, packet: String) -> bool {
        self.sio.emit(key as u64, &packet, &[])
    }

    /// A binary packet (`51-["ev",{"_placeholder":true,"num":0}]`) and its
    /// attachments, sent as one text frame then one binary frame each.
    #[napi]
    pub fn emit_binary(&self, key: i64, packet: String, attachments: Vec<Buffer>) -> bool {
        let attachments: Vec<Bytes> = attachments.iter().map(|b| Bytes::copy_from_slice(b)).collect();
        self.sio.emit(key as u64, &packet, &attachments)
    }

    #[napi]
    pub fn join(&self, key: i64, nsp: String, room: String) -> bool {
        self.sio.join(key as u64, &nsp, &room)
    }

    #[napi]
    pub fn leave(&self, key: i64, nsp: String, room: String) -> bool {
        self.sio.leave(key as u64, &nsp, &room)
    }

    /// One encoded packet (and its attachments, for a binary packet) to the
    /// union of `rooms` (whole namespace if empty) minus `except` rooms and
    /// the `skip` client; framed once in Rust.
    #[napi]
    pub fn broadcast(
        &self,
        nsp: String,
        rooms: Vec<String>,
        except: Vec<String>,
        skip: Option<i64>,
        packet: String,
        attachments: Option<Vec<Buffer>>,
    ) -> u32 {
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let except: Vec<&str> = except.iter().map(String::as_str).collect();
        let attachments: Vec<Bytes> =
            attachments.unwrap_or_default().iter().map(|b| Bytes::copy_from_slice(b)).collect();
        self.sio.broadcast(&nsp, &rooms, &except, skip.map(|k| k as u64), &packet, &attachments) as u32
    }

    /// The client keys `broadcast` with the same arguments would reach: what
    /// JS acts on for broadcast acks, fetchSockets, socketsJoin/Leave and
    /// disconnectSockets, so the selection rule exists once.
    #[napi]
    pub fn select(&self, nsp: String, rooms: Vec<String>, except: Vec<String>, skip: Option<i64>) -> Vec<i64> {
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let except: Vec<&str> = except.iter().map(String::as_str).collect();
        self.sio.select(&nsp, &rooms, &except, skip.map(|k| k as u64)).iter().map(|c| c.key as i64).collect()
    }

    /// Writes what broadcasts queued (JS calls this once per tick after
    /// broadcasting, so a burst reaches each socket in one `writev`).
    #[napi]
    pub fn flush(&self) {
        self.core.server.flush();
    }

    /// Server-side namespace disconnect (`socket.disconnect()`).
    #[napi]
    pub fn disconnect(&self, key: i64, nsp: String) -> bool {
        self.sio.disconnect(key as u64, &nsp)
    }

    /// Closes the whole client (`socket.disconnect(true)`).
    #[napi]
    pub fn close_client(&self, key: i64) -> bool {
        self.sio.disconnect_all(key as u64)
    }

    /// Ends every session ("1" to each; held GETs become ready to drain).
    #[napi]
    pub fn close_sessions(&self) {
        self.engine.close_all();
    }

    /// A second POST for `sid` while one is being read: the session ends
    /// ("transport error"), as engine.io's "data request overlap".
    #[napi]
    pub fn fail_session(&self, sid: String) {
        self.engine.fail(&sid);
    }

    #[napi]
    pub fn close(&self) {
        self.engine.close_all();
        self.core.close();
    }
}
