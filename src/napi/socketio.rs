//! `NativeSocketIo`: the handle lib/socketio/server.js holds. Engine.IO
//! framing, heartbeats, namespaces, rooms and fan-out run in Rust; JS gets
//! CONNECT (for middleware), events and acks as raw JSON text.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::Result;
use napi_derive::napi;

use super::core::{err, Core, ListenResult};
use crate::engineio::engine::{Engine, EngineConfig, PollReply};
use crate::socketio::server::SioServer;
use crate::ws::{Behavior, Pattern, Request, WsRoute};

#[napi(object)]
pub struct SocketIoOptions {
    pub workers: Option<u32>,
    /// Default "/socket.io".
    pub path: Option<String>,
    pub ping_interval: Option<u32>,
    pub ping_timeout: Option<u32>,
    pub max_http_buffer_size: Option<f64>,
    /// ms a client may stay without joining any namespace (default 45000).
    pub connect_timeout: Option<u32>,
    pub upgrade_timeout: Option<u32>,
    pub allow_upgrades: Option<bool>,
    /// Default ["polling", "websocket"].
    pub transports: Option<Vec<String>>,
}

/// A polling request answered at once.
#[napi(object)]
pub struct PollAnswer {
    pub status: u32,
    pub content_type: String,
    pub body: String,
}

/// A request read by Node's HTTP server, for the Rust engine.
#[napi(object)]
pub struct HttpRequestInfo {
    pub method: String,
    pub url: String,
    /// Flat name/value list, names lowercased (`req.rawHeaders`, names lowered).
    pub headers: Vec<String>,
    pub remote_address: String,
    pub remote_port: u32,
    pub secure: bool,
}

fn request_of(info: &HttpRequestInfo) -> (Request, SocketAddr) {
    let headers = info.headers.chunks_exact(2).map(|kv| (kv[0].to_ascii_lowercase(), kv[1].clone())).collect();
    let req = Request { method: info.method.clone(), url: info.url.clone(), version: 1, headers, head_len: 0 };
    // "::ffff:1.2.3.4" parses as the IPv6 form and prints back the same.
    let ip = info.remote_address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    (req, SocketAddr::new(ip, info.remote_port as u16))
}

#[napi]
pub struct NativeSocketIo {
    core: Core,
    engine: Arc<Engine>,
    sio: Arc<SioServer>,
}

#[napi]
impl NativeSocketIo {
    #[napi(constructor)]
    pub fn new(opts: SocketIoOptions, on_events: Function<Buffer, ()>) -> Result<Self> {
        let core = Core::new(opts.workers, None, on_events)?;
        let d = EngineConfig::default();
        let max_payload =
            opts.max_http_buffer_size.map_or(d.max_payload, |n| n.clamp(1.0, (1u64 << 30) as f64) as usize);
        let has = |t: &str| opts.transports.as_ref().is_none_or(|ts| ts.iter().any(|x| x == t));
        let cfg = EngineConfig {
            ping_interval: opts.ping_interval.map_or(d.ping_interval, |ms| Duration::from_millis(ms as u64)),
            ping_timeout: opts.ping_timeout.map_or(d.ping_timeout, |ms| Duration::from_millis(ms as u64)),
            max_payload,
            upgrade_timeout: opts.upgrade_timeout.map_or(d.upgrade_timeout, |ms| Duration::from_millis(ms as u64)),
            allow_upgrades: opts.allow_upgrades.unwrap_or(d.allow_upgrades),
            polling: has("polling"),
            websocket: has("websocket"),
        };
        let connect_timeout = Duration::from_millis(opts.connect_timeout.unwrap_or(45_000) as u64);
        let sio = SioServer::new(core.sink.clone(), connect_timeout);
        let engine = Engine::new(cfg, sio.clone());
        core.enter(|| engine.start())?;
        let path = opts.path.unwrap_or_else(|| "/socket.io".to_string());
        core.server.add_ws_route(WsRoute {
            pattern: Pattern::parse(&format!("{}/*", path.trim_end_matches('/'))),
            // Engine.IO heartbeats replace WebSocket-level idle pings.
            behavior: Arc::new(Behavior {
                handler: Some(engine.clone()),
                idle_timeout_secs: 0,
                send_pings: false,
                max_payload,
                // A slow Socket.IO client queues, as with socket.io; bounded.
                max_backpressure: 16 << 20,
                ..Behavior::default()
            }),
            js_upgrade: false,
        });
        Ok(Self { core, engine, sio })
    }

    #[napi]
    pub fn listen(&self, host: String, port: u32) -> Result<ListenResult> {
        self.core.listen(host, port, None, None)
    }

    /// Takes over the socket `fd` of an upgrade request that Node's HTTP
    /// server read (`head`: bytes read past it). The fd is duplicated: the
    /// caller closes its own copy afterwards.
    #[napi]
    pub fn adopt(&self, fd: i32, req: HttpRequestInfo, head: Buffer) -> Result<()> {
        // SAFETY: dup returns a new descriptor that nothing else owns.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(err(format!("adopt: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let sock = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(dup) });
        let (request, remote) = request_of(&req);
        let secure = req.secure;
        self.core.enter(|| self.core.server.adopt(sock, request, head.to_vec(), remote, secure))
    }

    /// For an upgrade whose bytes live in Node (TLS terminated by an https
    /// server): a socket pair whose one end becomes the connection; the
    /// returned fd is the other end, which JS pipes to and from its socket.
    #[napi]
    pub fn bridge(&self, req: HttpRequestInfo, head: Buffer) -> Result<i32> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(err)?;
        let sock = std::net::TcpStream::from(OwnedFd::from(ours));
        let (request, remote) = request_of(&req);
        let secure = req.secure;
        self.core.enter(|| self.core.server.adopt(sock, request, head.to_vec(), remote, secure))?;
        Ok(std::os::fd::IntoRawFd::into_raw_fd(theirs))
    }

    /// One long-polling request (`body`: the POST body). An answer now, or
    /// none: the GET is held until a POLL_READY event for `req_id`.
    #[napi]
    pub fn poll(&self, req_id: f64, req: HttpRequestInfo, body: Option<Buffer>) -> Option<PollAnswer> {
        let (request, remote) = request_of(&req);
        let body = body.as_deref().unwrap_or(&[]);
        match self.engine.handle_poll(req_id as u64, &request, body, req.secure, remote) {
            PollReply::Held => None,
            PollReply::Now(a) => Some(PollAnswer {
                status: a.status as u32,
                content_type: a.content_type.to_string(),
                body: String::from_utf8_lossy(&a.body).into_owned(),
            }),
        }
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
        let c = self.sio.client(key as u64)?;
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
