//! `NativeApp`: the handle lib/app.js holds. Thin: converts options and
//! arguments, then calls into `ws::ServerCore`.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice, Function};
use napi::{Env, Result, Unknown};
use napi_derive::napi;

use super::core::{err, Core, CoreOptions, ListenResult};
use crate::adapter::redis::topics::Topics;
use crate::net::{self, TlsSource};
use crate::ws::deflate;
use crate::ws::{Behavior, Decision, Forward, HttpRoute, Pattern, ResponsePart, WsRoute};

#[napi(object)]
pub struct SslOptions {
    pub key_file_name: Option<String>,
    pub cert_file_name: Option<String>,
    /// PEM contents instead of file names (ferrosocket extension).
    pub key: Option<Buffer>,
    pub cert: Option<Buffer>,
    pub passphrase: Option<String>,
}

#[napi(object)]
pub struct AppOptions {
    /// I/O worker threads; 0 or absent = one per core.
    pub workers: Option<u32>,
    pub max_connections: Option<u32>,
    pub ssl: Option<SslOptions>,
    /// Ms from accept to a complete request head (default 10 s).
    pub handshake_timeout: Option<u32>,
    /// Largest HTTP request body a route is given, bytes (default 16 MiB).
    pub max_body_length: Option<f64>,
}

/// The status line and headers of an HTTP route's response.
#[napi(object)]
pub struct HttpHead {
    pub status: String,
    /// Flat [name, value, ...].
    pub headers: Vec<String>,
    /// Content-Length, or -1 for chunked.
    pub length: f64,
}

#[napi(object)]
pub struct BehaviorOptions {
    pub idle_timeout: Option<u32>,
    pub max_payload_length: Option<f64>,
    pub max_backpressure: Option<f64>,
    pub close_on_backpressure_limit: Option<bool>,
    pub send_pings_automatically: Option<bool>,
    pub has_upgrade: bool,
    /// Which handlers the behavior has: frames nobody handles never cross.
    pub has_message: Option<bool>,
    pub has_ping: Option<bool>,
    pub has_pong: Option<bool>,
    /// uWS.js's `compression` bits (0: off).
    pub compression: Option<u32>,
}

/// Largest accepted maxPayloadLength: event lengths to JS are u32, and one
/// message buffered per socket must stay allocatable.
const MAX_PAYLOAD_CAP: usize = 1 << 30;

/// A JS number option: absent or NaN -> default; negative -> 0; beyond `cap`
/// (Infinity included) -> cap.
fn to_usize(v: Option<f64>, default: usize, cap: usize) -> usize {
    match v {
        Some(x) if x.is_nan() => default,
        Some(x) if x <= 0.0 => 0,
        Some(x) if x >= cap as f64 => cap,
        Some(x) => x as usize,
        None => default,
    }
}

#[napi]
pub struct NativeApp {
    core: Core,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// `App({ scaleOut })`: publishes also reach the other nodes (scale_out.rs).
    pub(super) topics: parking_lot::RwLock<Option<Arc<Topics>>>,
}

impl NativeApp {
    /// Its runtime and server, for a Socket.IO engine attached to it.
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// To this node's subscribers (but `skip`), and with `scaleOut` to the
    /// other nodes' (where the sender is not: nothing to skip there).
    fn publish_bytes(&self, topic: &str, data: &[u8], binary: bool, skip: Option<i64>, compress: bool) -> u32 {
        if let Some(topics) = self.topics.read().as_ref() {
            topics.publish(topic, data, binary);
        }
        self.core.server.publish(topic, data, binary, skip.map(|s| s as u64), compress) as u32
    }
}

#[napi]
impl NativeApp {
    /// `on_events(batch)` receives every event batch, as a length in
    /// `scratch` or a Buffer (see `Core::new`; lib/native-host.js decodes).
    #[napi(constructor)]
    pub fn new(opts: AppOptions, on_events: Function<napi::Either<u32, Buffer>, ()>, scratch: Buffer) -> Result<Self> {
        let tls = match &opts.ssl {
            None => None,
            Some(ssl) => Some(load_tls(ssl)?),
        };
        Ok(Self {
            core: Core::new(
                CoreOptions {
                    workers: opts.workers,
                    max_connections: opts.max_connections,
                    handshake_timeout_ms: opts.handshake_timeout,
                    max_body: opts.max_body_length,
                },
                on_events,
                scratch,
            )?,
            tls,
            topics: parking_lot::RwLock::new(None),
        })
    }

    #[napi]
    pub fn add_ws(&self, pattern: String, b: BehaviorOptions) -> u32 {
        // The route's connection events go to JS, through the event sink.
        let d = Behavior::new(self.core.sink.clone());
        let behavior = Behavior {
            handler: d.handler.clone(),
            idle_timeout_secs: b.idle_timeout.unwrap_or(d.idle_timeout_secs),
            max_payload: to_usize(b.max_payload_length, d.max_payload, MAX_PAYLOAD_CAP),
            max_backpressure: to_usize(b.max_backpressure, d.max_backpressure, usize::MAX / 2),
            close_on_backpressure_limit: b.close_on_backpressure_limit.unwrap_or(d.close_on_backpressure_limit),
            send_pings: b.send_pings_automatically.unwrap_or(d.send_pings),
            forward: Forward {
                message: b.has_message.unwrap_or(true),
                ping: b.has_ping.unwrap_or(true),
                pong: b.has_pong.unwrap_or(true),
            },
            compression: b.compression.and_then(deflate::Config::from_uws),
        };
        self.core.server.add_ws_route(WsRoute {
            pattern: Pattern::parse(&pattern),
            behavior: Arc::new(behavior),
            js_upgrade: b.has_upgrade,
        }) as u32
    }

    /// `method` lowercase, or "any".
    #[napi]
    pub fn add_route(&self, method: String, pattern: String) -> u32 {
        let method = method.to_ascii_lowercase();
        self.core.server.add_http_route(HttpRoute {
            method: (method != "any").then_some(method),
            pattern: Pattern::parse(&pattern),
            service: None,
        }) as u32
    }

    #[napi]
    pub fn listen(&self, host: String, port: u32, reuse_port: Option<bool>) -> Result<ListenResult> {
        self.core.listen(host, port, reuse_port, self.tls.clone())
    }

    #[napi]
    pub fn close_listener(&self, token: u32) -> bool {
        self.core.server.close_listener(token)
    }

    /// `send` as a plain function bound to this server (fast_send.rs):
    /// `(id, data, isBinary)`, data a string, an ArrayBuffer or a view.
    #[napi(ts_return_type = "(id: number, data: string | ArrayBuffer | ArrayBufferView, isBinary: boolean) => number")]
    pub fn sender<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let f = super::fast_send::sender(env.raw(), self.core.server.clone())?;
        // SAFETY: a function value just created in this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), f) })
    }

    #[napi]
    pub fn end(&self, id: i64, code: u32, reason: BufferSlice) -> bool {
        self.core.server.end(id as u64, code.min(u16::MAX as u32) as u16, &reason)
    }

    #[napi]
    pub fn terminate(&self, id: i64) -> bool {
        self.core.server.terminate(id as u64)
    }

    #[napi]
    pub fn ping(&self, id: i64, data: BufferSlice) -> bool {
        self.core.server.get(id as u64).is_some_and(|c| c.ping(&*self.core.server, &data))
    }

    #[napi]
    pub fn cork(&self, id: i64, corked: bool) {
        if let Some(c) = self.core.server.get(id as u64) {
            c.set_corked(&*self.core.server, corked);
        }
    }

    /// -1 when the connection is gone.
    #[napi]
    pub fn buffered_amount(&self, id: i64) -> f64 {
        self.core.server.get(id as u64).map_or(-1.0, |c| c.buffered_amount() as f64)
    }

    #[napi]
    pub fn remote_address(&self, id: i64) -> Option<String> {
        self.core.server.get(id as u64).map(|c| net::ip_text(c.remote.ip()))
    }

    #[napi]
    pub fn subscribe(&self, id: i64, topic: String) -> bool {
        self.core.server.get(id as u64).is_some_and(|c| self.core.server.subscribe(&c, &topic))
    }

    #[napi]
    pub fn unsubscribe(&self, id: i64, topic: String) -> bool {
        self.core.server.unsubscribe(id as u64, &topic)
    }

    #[napi]
    pub fn is_subscribed(&self, id: i64, topic: String) -> bool {
        self.core.server.is_subscribed(id as u64, &topic)
    }

    #[napi]
    pub fn topics(&self, id: i64) -> Vec<String> {
        self.core.server.topics_of(id as u64).iter().map(|t| t.to_string()).collect()
    }

    /// Queues `data` for every subscriber of `topic` (except `skip`); returns
    /// how many got it. Call `flush()` once after a burst of publishes.
    #[napi]
    pub fn publish(
        &self,
        topic: String,
        data: BufferSlice,
        binary: bool,
        skip: Option<i64>,
        compress: Option<bool>,
    ) -> u32 {
        self.publish_bytes(&topic, &data, binary, skip, compress.unwrap_or(false))
    }

    #[napi]
    pub fn publish_text(
        &self,
        topic: String,
        data: String,
        binary: bool,
        skip: Option<i64>,
        compress: Option<bool>,
    ) -> u32 {
        self.publish_bytes(&topic, data.as_bytes(), binary, skip, compress.unwrap_or(false))
    }

    #[napi]
    pub fn flush(&self) {
        self.core.server.flush();
    }

    #[napi]
    pub fn num_subscribers(&self, topic: String) -> u32 {
        self.core.server.num_subscribers(&topic) as u32
    }

    #[napi]
    pub fn connection_count(&self) -> u32 {
        self.core.server.connection_count() as u32
    }

    /// Accepts a pending upgrade (`protocol` is echoed as
    /// Sec-WebSocket-Protocol; `extensions` are the offers compression is
    /// negotiated from).
    #[napi]
    pub fn accept_upgrade(&self, id: i64, protocol: Option<String>, extensions: Option<String>) -> bool {
        let protocol = protocol.filter(|p| !p.is_empty());
        let extensions = extensions.filter(|e| !e.is_empty());
        self.core.server.decide(id as u64, Decision::Upgrade { protocol, extensions })
    }

    /// Answers a pending upgrade request with a refusal and closes it.
    /// `headers` is a flat [name, value, ...] list.
    #[napi]
    pub fn respond(&self, id: i64, status_line: String, headers: Vec<String>, body: BufferSlice) -> bool {
        let (mut out, has_length) = response_head(&status_line, &headers);
        if !has_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&body);
        self.core.server.decide(id as u64, Decision::Respond(out))
    }

    /// Writes part of an HTTP route's response. With the first part, the
    /// status line and headers (`headers` flat [name, value, ...]) and the
    /// framing: `length` >= 0 a Content-Length, -1 chunked. Returns the
    /// bytes queued after it (under 64 KiB: no backpressure), or -1 when
    /// the request is gone.
    #[napi]
    pub fn http_write(&self, id: i64, head: Option<HttpHead>, body: BufferSlice, end: bool, close: bool) -> f64 {
        let mut chunked = false;
        let head = head.map(|h| {
            let (mut out, has_length) = response_head(&h.status, &h.headers);
            // A length the handler wrote itself is its framing.
            if has_length {
                return out;
            }
            if h.length < 0.0 {
                chunked = true;
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            } else {
                out.extend_from_slice(format!("Content-Length: {}\r\n", h.length as u64).as_bytes());
            }
            out
        });
        let part = ResponsePart { head, chunked, body: body.to_vec(), end, close };
        self.core.server.write_response(id as u64, part).map_or(-1.0, |q| q as f64)
    }

    /// Closes a pending HTTP request's connection at once (`res.close()`).
    #[napi]
    pub fn http_close(&self, id: i64) -> bool {
        self.core.server.decide(id as u64, Decision::Respond(Vec::new()))
    }

    /// Stops listening, closes every connection with 1001; Node can then exit.
    #[napi]
    pub fn close(&self) {
        if let Some(topics) = self.topics.write().take() {
            let _ = self.core.enter(|| topics.link.close());
        }
        self.core.close();
    }
}

pub(super) fn load_tls(ssl: &SslOptions) -> Result<Arc<rustls::ServerConfig>> {
    let key = match (&ssl.key, &ssl.key_file_name) {
        (Some(b), _) => TlsSource::Pem(b.to_vec()),
        (None, Some(f)) => TlsSource::File(f.clone()),
        (None, None) => return Err(err("SSLApp needs key_file_name (or key)")),
    };
    let cert = match (&ssl.cert, &ssl.cert_file_name) {
        (Some(b), _) => TlsSource::Pem(b.to_vec()),
        (None, Some(f)) => TlsSource::File(f.clone()),
        (None, None) => return Err(err("SSLApp needs cert_file_name (or cert)")),
    };
    net::load_server_config(&key, &cert, ssl.passphrase.as_deref()).map_err(err)
}

/// `HTTP/1.1 <status>` and the headers, each line with its CRLF, and
/// whether a Content-Length is among those written. CR or LF in a
/// user-supplied status, name or value would inject headers: such a status
/// becomes 500, such a header is left out.
fn response_head(status_line: &str, headers: &[String]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(128);
    let status_line = status_line.trim();
    let status_line = if status_line.is_empty() {
        "200 OK"
    } else if status_line.contains(['\r', '\n']) {
        "500 Internal Server Error"
    } else {
        status_line
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    for pair in headers.chunks(2) {
        if let [k, v] = pair {
            if k.contains(['\r', '\n']) || v.contains(['\r', '\n']) {
                continue;
            }
            has_length |= k.eq_ignore_ascii_case("content-length");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    (out, has_length)
}
