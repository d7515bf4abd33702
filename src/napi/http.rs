//! The Engine.IO handles' shared HTTP side: requests parsed by Node's HTTP
//! server reach the Rust engine here (polls), and upgraded sockets move into
//! the Rust server (by fd, or through a socket pair when TLS lives in Node).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi::Result;
use napi_derive::napi;

use super::core::{err, Core};
use crate::engineio::engine::{self, Engine, EngineConfig, PerMessageDeflate, PollReply, PollingService, Refusal};
use crate::ws::{deflate, Behavior, HttpRoute, Pattern, Request, WsRoute};

/// A polling request answered at once.
#[napi(object)]
pub struct PollAnswer {
    pub status: u32,
    pub content_type: String,
    pub body: String,
    /// For a refusal: engine.io's error code, its own message (the body may
    /// carry allowRequest's instead) and the context (JSON object text),
    /// for the `connection_error` event.
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
    pub error_context: Option<String>,
}

impl From<engine::PollAnswer> for PollAnswer {
    fn from(a: engine::PollAnswer) -> PollAnswer {
        let (error_code, error_message, error_context) = match a.error {
            Some(r) => (Some(u32::from(r.code.code())), Some(r.code.message().to_string()), Some(r.context)),
            None => (None, None, None),
        };
        PollAnswer {
            status: a.status as u32,
            content_type: a.content_type.to_string(),
            body: String::from_utf8_lossy(&a.body).into_owned(),
            error_code,
            error_message,
            error_context,
        }
    }
}

/// A refused WebSocket upgrade: the `connection_error` fields and the whole
/// HTTP response to write on the socket.
#[napi(object)]
pub struct UpgradeRefusal {
    pub error_code: u32,
    pub error_message: String,
    /// JSON object text.
    pub error_context: String,
    pub response: Buffer,
}

fn upgrade_refusal(r: engine::Refusal, response: Vec<u8>) -> UpgradeRefusal {
    UpgradeRefusal {
        error_code: u32::from(r.code.code()),
        error_message: r.code.message().to_string(),
        error_context: r.context,
        response: response.into(),
    }
}

/// Where a POST body goes: read it up to `limit` bytes, or write `answer`
/// instead.
#[napi(object)]
pub struct PostStart {
    pub limit: f64,
    pub answer: Option<PollAnswer>,
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

/// Engine options from JS, engine.io's names and defaults.
#[napi(object)]
pub struct EngineOptions {
    pub workers: Option<u32>,
    /// Default "/socket.io" ("/engine.io" for the raw server).
    pub path: Option<String>,
    pub ping_interval: Option<u32>,
    pub ping_timeout: Option<u32>,
    pub max_http_buffer_size: Option<f64>,
    /// ms a client may stay without joining any namespace (default 45000).
    pub connect_timeout: Option<u32>,
    /// Connection state recovery (Socket.IO only; off when absent): how long
    /// broadcasts are kept for a client to come back to (ms)…
    pub recovery_max_age: Option<u32>,
    /// …and at most how many bytes of them.
    pub recovery_max_bytes: Option<f64>,
    pub upgrade_timeout: Option<u32>,
    pub allow_upgrades: Option<bool>,
    /// Default ["polling", "websocket"].
    pub transports: Option<Vec<String>>,
    /// Serve Engine.IO v3 clients (socket.io-client v2); default false.
    pub allow_eio3: Option<bool>,
    /// Bytes that may wait for one client before it is disconnected
    /// (default 16 MiB; ferrosocket's).
    pub max_backpressure: Option<f64>,
    /// The engine will be mounted on an App (`attachApp`), not on this
    /// handle's own server.
    pub on_app: Option<bool>,
    /// Ms from accept to a complete request head (default 10 s).
    pub handshake_timeout: Option<u32>,
    /// perMessageDeflate (off when absent).
    pub per_message_deflate: Option<DeflateOptions>,
}

/// socket.io's `perMessageDeflate` (ws's options) as the engine takes them.
#[napi(object)]
pub struct DeflateOptions {
    /// Smallest message compressed, bytes (default 1024).
    pub threshold: Option<f64>,
    /// Keep our compression context between messages (a compressor per
    /// connection); default: a fresh context per message.
    pub server_context_takeover: Option<bool>,
    /// Let the client keep its context (a decompressor per connection).
    pub client_context_takeover: Option<bool>,
}

pub(crate) fn engine_config(opts: &EngineOptions) -> EngineConfig {
    let d = EngineConfig::default();
    let ms = |v: Option<u32>, d: Duration| v.map_or(d, |ms| Duration::from_millis(ms as u64));
    let has = |t: &str| opts.transports.as_ref().is_none_or(|ts| ts.iter().any(|x| x == t));
    EngineConfig {
        ping_interval: ms(opts.ping_interval, d.ping_interval),
        ping_timeout: ms(opts.ping_timeout, d.ping_timeout),
        max_payload: opts.max_http_buffer_size.map_or(d.max_payload, |n| n.clamp(1.0, (1u64 << 30) as f64) as usize),
        upgrade_timeout: ms(opts.upgrade_timeout, d.upgrade_timeout),
        allow_upgrades: opts.allow_upgrades.unwrap_or(d.allow_upgrades),
        polling: has("polling"),
        websocket: has("websocket"),
        allow_eio3: opts.allow_eio3.unwrap_or(false),
        max_buffered: opts.max_backpressure.map_or(d.max_buffered, |n| n.clamp(1024.0, (1u64 << 40) as f64) as usize),
        deflate: opts.per_message_deflate.as_ref().map(|p| PerMessageDeflate {
            threshold: p.threshold.map_or(1024, |t| t.max(0.0) as usize),
            config: deflate::Config {
                compressor_window: (p.server_context_takeover == Some(true)).then_some(15),
                decompressor_window: (p.client_context_takeover == Some(true)).then_some(15),
            },
        }),
    }
}

/// Also on an App (`io.attachApp`): long-polling under `path` answered in
/// Rust, as the App's listener has no Node HTTP server in front.
pub(crate) fn mount_polling(core: &Core, engine: &Arc<Engine>, path: &str) {
    core.server.add_http_route(HttpRoute {
        method: None,
        pattern: Pattern::parse(&format!("{}/*", path.trim_end_matches('/'))),
        service: Some(Arc::new(PollingService(engine.clone()))),
    });
}

/// Starts `engine` and routes WebSocket upgrades under `path` to it.
pub(crate) fn mount(core: &Core, engine: &Arc<Engine>, path: &str, max_payload: usize) -> Result<()> {
    core.enter(|| engine.start(&core.server))?;
    core.server.add_ws_route(WsRoute {
        pattern: Pattern::parse(&format!("{}/*", path.trim_end_matches('/'))),
        // Engine.IO heartbeats replace WebSocket-level idle pings.
        behavior: Arc::new(Behavior {
            idle_timeout_secs: 0,
            send_pings: false,
            max_payload,
            compression: engine.deflate_config(),
            // A slow client queues, as with engine.io, up to maxBackpressure;
            // past it the connection closes (1009, "transport error") rather
            // than dropping what the client should receive.
            max_backpressure: engine.max_buffered(),
            close_on_backpressure_limit: true,
            ..Behavior::new(engine.clone())
        }),
        js_upgrade: false,
    });
    Ok(())
}

/// The native half of the Engine.IO HTTP front (lib/engineio/http-front.js),
/// one class for both handles that carry an engine (`NativeSocketIo`,
/// `NativeEngineIo`, each handing one out with `front()`): polls, upgraded
/// sockets moving into Rust, and session-wide operations.
#[napi]
pub struct NativeEngineFront {
    core: Arc<Core>,
    engine: Arc<Engine>,
}

impl NativeEngineFront {
    pub(crate) fn new(core: &Arc<Core>, engine: &Arc<Engine>) -> NativeEngineFront {
        NativeEngineFront { core: core.clone(), engine: engine.clone() }
    }
}

#[napi]
impl NativeEngineFront {
    /// Takes over the socket `fd` of an upgrade request that Node's HTTP
    /// server read (`head`: bytes read past it). The fd is duplicated: the
    /// caller closes its own copy afterwards.
    #[napi]
    pub fn adopt(&self, fd: i32, req: HttpRequestInfo, head: Buffer) -> Result<()> {
        let (request, remote) = request_of(&req);
        self.adopt_fd(fd, request, remote, &head, req.secure)
    }

    fn adopt_fd(&self, fd: i32, request: Request, remote: SocketAddr, head: &[u8], secure: bool) -> Result<()> {
        // SAFETY: fcntl on a descriptor the caller owns; returns a new one or -1.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(err(format!("adopt: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let sock = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(dup) });
        self.core.enter(|| self.core.server.adopt(sock, request, head.to_vec(), remote, secure))
    }

    /// `verify_upgrade`, then `adopt`, in one call: the common upgrade (no
    /// `cors` origin or `allowRequest` to consult in JS) costs one crossing.
    /// The refusal when verify refuses (the fd is then untouched).
    #[napi]
    pub fn verify_and_adopt(&self, fd: i32, req: HttpRequestInfo, head: Buffer) -> Result<Option<UpgradeRefusal>> {
        let (request, remote) = request_of(&req);
        if let Some(refused) = self.engine.verify_upgrade(&request) {
            let response = engine::upgrade_response(&refused);
            return Ok(Some(upgrade_refusal(refused, response)));
        }
        self.adopt_fd(fd, request, remote, &head, req.secure)?;
        Ok(None)
    }

    /// For an upgrade whose bytes live in Node (TLS terminated by an https
    /// server): a socket pair whose one end becomes the connection; the
    /// returned fd is the other end, which JS pipes to and from its socket.
    #[napi]
    pub fn bridge(&self, req: HttpRequestInfo, head: Buffer) -> Result<i32> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(err)?;
        let sock = std::net::TcpStream::from(OwnedFd::from(ours));
        let (request, remote) = request_of(&req);
        self.core.enter(|| self.core.server.adopt(sock, request, head.to_vec(), remote, req.secure))?;
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
            PollReply::Now(a) => Some(a.into()),
        }
    }

    /// engine.io's `verify`, before `allowRequest` runs: the refusal of a
    /// request whose transport or handshake is wrong, or None.
    #[napi]
    pub fn verify(&self, req: HttpRequestInfo) -> Option<PollAnswer> {
        let (request, _) = request_of(&req);
        self.engine.verify(&request).map(|r| engine::refusal(r, None).into())
    }

    /// The `sid` the engine reads in this request (None: a handshake, which
    /// `allowRequest` must see).
    #[napi]
    pub fn sid_of(&self, req: HttpRequestInfo) -> Option<String> {
        self.engine.sid_of(&request_of(&req).0)
    }

    /// The answer when `allowRequest` refused a polling request (`message`:
    /// the one it passed, if any).
    #[napi]
    pub fn forbidden(&self, message: Option<String>) -> PollAnswer {
        let message = message.as_deref().filter(|m| !m.is_empty());
        engine::refusal(Refusal::forbidden(message), message).into()
    }

    /// engine.io's `verify` for a WebSocket upgrade, before `allowRequest`
    /// runs: its refusal, or None.
    #[napi]
    pub fn verify_upgrade(&self, req: HttpRequestInfo) -> Option<UpgradeRefusal> {
        let refused = self.engine.verify_upgrade(&request_of(&req).0)?;
        let response = engine::upgrade_response(&refused);
        Some(upgrade_refusal(refused, response))
    }

    /// The refusal of a WebSocket upgrade by the `cors` policy (`origin`) or
    /// allowRequest (with its `message`, if any).
    #[napi]
    pub fn refuse_upgrade(&self, origin: bool, message: Option<String>) -> UpgradeRefusal {
        let (refused, response) = engine::upgrade_refusal(origin, message.as_deref().filter(|m| !m.is_empty()));
        upgrade_refusal(refused, response)
    }

    /// A POST is about to be read: its body limit, or the answer instead
    /// (unknown or upgraded session, a second POST at once, a binary body,
    /// a declared length over the limit).
    #[napi]
    pub fn poll_begin_post(&self, req: HttpRequestInfo) -> PostStart {
        match self.engine.begin_post(&request_of(&req).0) {
            Ok(limit) => PostStart { limit: limit as f64, answer: None },
            Err(a) => PostStart { limit: 0.0, answer: Some(a.into()) },
        }
    }

    /// A begun POST whose body will not come (`too_large`: it passed the
    /// limit; the answer to write is returned).
    #[napi]
    pub fn poll_end_post(&self, sid: String, too_large: bool) -> Option<PollAnswer> {
        self.engine.end_post(&sid, too_large).map(Into::into)
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

    /// Ends every session ("1" to each; held GETs become ready to drain).
    #[napi]
    pub fn close_sessions(&self) {
        self.engine.close_all();
    }

    /// Open Engine.IO sessions (`clientsCount`).
    #[napi]
    pub fn clients_count(&self) -> u32 {
        self.engine.session_count() as u32
    }
}
