//! `NativeSocketIo`: the handle lib/socketio/server.js holds. Engine.IO
//! framing, heartbeats, namespaces, rooms and fan-out run in Rust; JS gets
//! CONNECT (for middleware), events and acks as raw JSON text.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::Result;
use napi_derive::napi;

use super::app::NativeApp;
use super::core::{Core, CoreOptions, ListenResult};
use super::http::{self, EngineOptions, NativeEngineFront};
use crate::adapter::recovery::RecoveryConfig;
use crate::adapter::BroadcastOptions;
use crate::engineio::engine::Engine;
use crate::socketio;
use crate::socketio::server::SioServer;
use crate::ws::ServerCore;

/// Connection state recovery keeps at most this much of the broadcasts
/// (frames included) unless told otherwise: two minutes of a busy server's
/// traffic would otherwise be held whatever its size.
const DEFAULT_RECOVERY_BYTES: usize = 64 << 20;

#[napi]
pub struct NativeSocketIo {
    core: Arc<Core>,
    engine: Arc<Engine>,
    sio: Arc<SioServer>,
    /// The server whose connections the engine's are: this handle's own, or
    /// an App's after `attach_app` (broadcasts are flushed there).
    pub(super) served_by: Arc<parking_lot::RwLock<Arc<ServerCore>>>,
    path: String,
    max_payload: usize,
}

impl NativeSocketIo {
    pub(super) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub(super) fn sio(&self) -> &Arc<SioServer> {
        &self.sio
    }
}

#[napi]
impl NativeSocketIo {
    #[napi(constructor)]
    pub fn new(
        opts: EngineOptions,
        on_events: Function<napi::Either<u32, Buffer>, ()>,
        scratch: Buffer,
    ) -> Result<Self> {
        let core = Arc::new(Core::new(
            CoreOptions { workers: opts.workers, handshake_timeout_ms: opts.handshake_timeout, ..Default::default() },
            on_events,
            scratch,
        )?);
        let cfg = http::engine_config(&opts);
        let max_payload = cfg.max_payload;
        let connect_timeout = Duration::from_millis(opts.connect_timeout.unwrap_or(45_000) as u64);
        let recovery = opts.recovery_max_age.map(|ms| RecoveryConfig {
            max_age: Duration::from_millis(ms as u64),
            max_bytes: opts
                .recovery_max_bytes
                .map_or(DEFAULT_RECOVERY_BYTES, |b| b.clamp(0.0, usize::MAX as f64) as usize),
        });
        let sio = SioServer::new(core.sink.clone(), connect_timeout, recovery);
        let engine = Engine::new(cfg, sio.clone());
        let path = opts.path.clone().unwrap_or_else(|| "/socket.io".into());
        if !opts.on_app.unwrap_or(false) {
            http::mount(&core, &engine, &path, max_payload)?;
        }
        let served_by = Arc::new(parking_lot::RwLock::new(core.server.clone()));
        Ok(Self { core, engine, sio, served_by, path, max_payload })
    }

    /// `io.attachApp(app)`: the engine serves under the path on the App's
    /// own listener (WebSocket and long-polling, TLS with SSLApp), beside
    /// its routes. For a handle made with `onApp`, once.
    #[napi]
    pub fn attach_app(&self, app: &NativeApp) -> Result<()> {
        let core = app.core();
        http::mount(core, &self.engine, &self.path, self.max_payload)?;
        http::mount_polling(core, &self.engine, &self.path);
        *self.served_by.write() = core.server.clone();
        Ok(())
    }

    /// Listens in Rust: WebSocket upgrades are served here, every other
    /// connection is handed to JS (HANDOFF events) for the Node HTTP server;
    /// so are upgrades with an Origin when `check_origin` (CORS), and
    /// handshakes when `check_handshake` (allowRequest).
    #[napi]
    pub fn listen(
        &self,
        host: String,
        port: u32,
        check_origin: bool,
        check_handshake: bool,
        reuse_port: bool,
    ) -> Result<ListenResult> {
        self.engine.set_front_checks(check_origin, check_handshake);
        self.core.server.set_handoff_http(true);
        self.core.listen(host, port, Some(reuse_port), None)
    }

    /// `new Server(httpServer)`: takes over the http.Server's own listening
    /// socket (`fd`, duplicated; JS closes Node's handle), so connections
    /// arrive as with `listen`: WebSocket upgrades served here, the rest
    /// handed to the http.Server unread.
    #[napi]
    pub fn listen_fd(&self, fd: i32, check_origin: bool, check_handshake: bool) -> Result<ListenResult> {
        self.engine.set_front_checks(check_origin, check_handshake);
        self.core.server.set_handoff_http(true);
        self.core.listen_fd(fd)
    }

    /// Stops a listener `listen_fd` started; connections stay.
    #[napi]
    pub fn close_listener(&self, token: u32) -> bool {
        self.core.server.close_listener(token)
    }

    /// The Engine.IO HTTP front's native half (polls, upgrades, sessions).
    #[napi]
    pub fn front(&self) -> NativeEngineFront {
        NativeEngineFront::new(&self.core, &self.engine)
    }

    /// The client's current transport, "polling" or "websocket" (None: gone).
    #[napi]
    pub fn transport_name(&self, key: i64) -> Option<String> {
        self.sio.client(key as u64).map(|c| c.session.transport_name().to_string())
    }

    /// `socket.handshake` material, read when user code asks for it:
    /// [url, issued ms, secure "1"/"0", transport name, headers text,
    /// address, Engine.IO sid].
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
            c.session.sid.to_string(),
        ])
    }

    /// JS has run the disconnect handlers of closed client `key`: its
    /// handshake need not stay readable any more.
    #[napi]
    pub fn release(&self, key: i64) {
        self.sio.release(key as u64)
    }

    /// Middleware passed: `key` joins `nsp` as `socket_id` (`pid`: its
    /// private session id, with connection state recovery).
    #[napi]
    pub fn accept(&self, key: i64, nsp: String, socket_id: String, pid: Option<String>) -> bool {
        self.sio.accept(key as u64, &nsp, &socket_id, pid.as_deref())
    }

    /// Connection state recovery: the pending socket `pending_id` is the
    /// kept session `sid` (its `rooms`, its client `old_key` then) if
    /// `offset` is still known; the client is sent what it missed.
    #[napi]
    pub fn restore(&self, key: i64, to: Restore) -> bool {
        self.sio.restore(
            key as u64,
            &socketio::server::Restore {
                nsp: &to.nsp,
                pending_id: &to.pending_id,
                sid: &to.sid,
                rooms: &to.rooms,
                old_key: to.old_key.map(|k| k as u64),
                offset: to.offset.as_deref(),
            },
        )
    }

    /// Middleware refused: CONNECT_ERROR with `message` and optional JSON `data`.
    #[napi]
    pub fn reject(&self, key: i64, nsp: String, socket_id: String, message: String, data: Option<String>) -> bool {
        self.sio.reject(key as u64, &nsp, &socket_id, &message, data.as_deref())
    }

    /// One encoded Socket.IO packet (`2["ev",…]`) to one client.
    #[napi]
    pub fn emit(&self, key: i64, packet: String, volatile: Option<bool>, compress: Option<bool>) -> bool {
        self.sio.emit(key as u64, &packet, &[], volatile.unwrap_or(false), compress.unwrap_or(true))
    }

    /// A binary packet (`51-["ev",{"_placeholder":true,"num":0}]`) and its
    /// attachments, sent as one text frame then one binary frame each.
    #[napi]
    pub fn emit_binary(
        &self,
        key: i64,
        packet: String,
        attachments: Vec<Buffer>,
        volatile: Option<bool>,
        compress: Option<bool>,
    ) -> bool {
        let attachments: Vec<Bytes> = attachments.iter().map(|b| Bytes::copy_from_slice(b)).collect();
        self.sio.emit(key as u64, &packet, &attachments, volatile.unwrap_or(false), compress.unwrap_or(true))
    }

    #[napi]
    pub fn join(&self, key: i64, nsp: String, socket_id: String, room: String) -> bool {
        self.sio.join(key as u64, &nsp, &socket_id, &room)
    }

    #[napi]
    pub fn leave(&self, key: i64, nsp: String, socket_id: String, room: String) -> bool {
        self.sio.leave(key as u64, &nsp, &socket_id, &room)
    }

    /// One encoded packet (and its attachments, for a binary packet) to
    /// every client `to` selects (`volatile`: those whose transport can take
    /// it now); framed once in Rust.
    #[napi]
    pub fn broadcast(
        &self,
        to: Selection,
        packet: String,
        attachments: Option<Vec<Buffer>>,
        volatile: Option<bool>,
        remote: Option<RemoteOut>,
        compress: Option<bool>,
    ) -> u32 {
        let attachments: Vec<Bytes> =
            attachments.unwrap_or_default().iter().map(|b| Bytes::copy_from_slice(b)).collect();
        let opts = to.into();
        let volatile = volatile.unwrap_or(false);
        let n = self.sio.broadcast(&opts, &packet, &attachments, volatile, compress.unwrap_or(true)) as u32;
        if let Some(r) = remote {
            self.sio.publish_remote(&opts, &packet, &attachments, &r.except_ids, r.flags(volatile));
        }
        n
    }

    /// As `broadcast` (not volatile), kept for connection state recovery
    /// under an offset appended to the event's arguments (an EVENT packet
    /// without an ack id only).
    #[napi]
    pub fn broadcast_stored(
        &self,
        to: Selection,
        packet: String,
        attachments: Option<Vec<Buffer>>,
        remote: Option<RemoteOut>,
        compress: Option<bool>,
    ) -> u32 {
        let attachments: Vec<Bytes> =
            attachments.unwrap_or_default().iter().map(|b| Bytes::copy_from_slice(b)).collect();
        let opts = to.into();
        if let Some(r) = remote {
            // The other nodes get the event without this node's offset.
            self.sio.publish_remote(&opts, &packet, &attachments, &r.except_ids, r.flags(false));
        }
        self.sio.broadcast_stored(&opts, &packet, &attachments, compress.unwrap_or(true)) as u32
    }

    /// The client keys a broadcast to `to` reaches (for the operators:
    /// broadcast acks, fetchSockets, socketsJoin/Leave, disconnectSockets),
    /// in no particular order.
    #[napi]
    pub fn select(&self, to: Selection) -> Vec<i64> {
        self.sio.select(&to.into()).into_iter().map(|k| k as i64).collect()
    }

    /// The socket's 'disconnecting' handlers have run: it leaves its rooms.
    #[napi]
    pub fn remove_socket(&self, key: i64, nsp: String, socket_id: String) -> bool {
        self.sio.remove_socket(key as u64, &nsp, &socket_id)
    }

    /// Writes what broadcasts queued (JS calls this once per tick after
    /// broadcasting, so a burst reaches each socket in one `writev`).
    #[napi]
    pub fn flush(&self) {
        self.served_by.read().flush();
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

    #[napi]
    pub fn close(&self) {
        self.engine.close_all();
        self.core.close();
    }
}

/// Who a broadcast or an operator reaches, as JS describes it: the union
/// of `rooms` in `nsp` (all of it if empty), minus members of `except`,
/// minus the client `skip` (the sender).
#[napi(object)]
pub struct Selection {
    pub nsp: String,
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    pub skip: Option<i64>,
}

/// A broadcast's way to the other nodes (with a Redis adapter, unless
/// `local`): socket ids the local selection skipped by key (the sender),
/// and the `compress` flag.
#[napi(object)]
pub struct RemoteOut {
    pub except_ids: Vec<String>,
    pub compress: Option<bool>,
}

impl RemoteOut {
    fn flags(&self, volatile: bool) -> crate::adapter::redis::wire::Flags {
        crate::adapter::redis::wire::Flags { volatile, compress: self.compress }
    }
}

/// A kept session to restore (see `restore`).
#[napi(object)]
pub struct Restore {
    pub nsp: String,
    pub pending_id: String,
    pub sid: String,
    /// None: restored by a custom adapter in JS; the socket takes `sid` only.
    pub offset: Option<String>,
    pub rooms: Vec<String>,
    pub old_key: Option<i64>,
}

impl From<Selection> for BroadcastOptions {
    fn from(s: Selection) -> Self {
        BroadcastOptions { nsp: s.nsp, rooms: s.rooms, except: s.except, except_client: s.skip.map(|k| k as u64) }
    }
}
