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
use crate::engineio::engine::{Engine, EngineConfig};
use crate::socketio::server::SioServer;
use crate::ws::{Behavior, Pattern, WsRoute};

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
        let cfg = EngineConfig {
            ping_interval: opts.ping_interval.map_or(d.ping_interval, |ms| Duration::from_millis(ms as u64)),
            ping_timeout: opts.ping_timeout.map_or(d.ping_timeout, |ms| Duration::from_millis(ms as u64)),
            max_payload,
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
        match self.sio.client(key as u64) {
            Some(c) => {
                c.session.close();
                true
            }
            None => false,
        }
    }

    #[napi]
    pub fn close(&self) {
        self.engine.close_all();
        self.core.close();
    }
}
