//! Rust -> JS event delivery in batches.
//!
//! I/O workers append compactly encoded events to one buffer per app; the
//! first event after a drain schedules one threadsafe call, and the JS side
//! receives everything queued by then as one `Buffer`. Crossing N-API costs
//! ~1-2 us per call and ~0.1 us per batched event, so a busy server pays the
//! crossing once per wake-up rather than once per message.
//!
//! Layout (little endian), per event: kind u8, id low u32, id high u32, then
//! the kind's fields; byte strings are a u32 length and the bytes. The JS
//! decoder is lib/events.js; keep the two in step.

use std::net::SocketAddr;
use std::sync::Arc;

use napi::bindgen_prelude::Buffer;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use parking_lot::Mutex;

use bytes::Bytes;

use crate::engineio::engine::{header_lines, CloseReason, Refusal};
use crate::socketio::packet::PacketType;
use crate::socketio::server::{Client, SioHandler};
use crate::ws::{Conn, ConnHost, Inflow, Request, RequestKind, RequestSink, WsHandler};

pub(crate) const OPEN: u8 = 1;
pub(crate) const MESSAGE: u8 = 2;
pub(crate) const CLOSE: u8 = 3;
pub(crate) const DRAIN: u8 = 4;
pub(crate) const PING: u8 = 5;
pub(crate) const PONG: u8 = 6;
pub(crate) const REQUEST: u8 = 7;
pub(crate) const ABORTED: u8 = 8;

/// What the JS callback gets: the length of a batch written to the
/// handle's scratch Buffer, or a batch too large for it.
pub(crate) type EventBatch = napi::Either<u32, Buffer>;

/// Weak (never keeps Node alive by itself), not callee-handled: the JS
/// dispatcher catches user errors itself.
pub(crate) type EventFn = ThreadsafeFunction<(), (), EventBatch, napi::Status, false, true>;

pub(crate) struct Batch {
    pub(crate) buf: Mutex<Vec<u8>>,
    /// Bytes queued for JS; reading pauses while it is over its limit.
    pub(crate) inflow: Arc<Inflow>,
}

impl Batch {
    /// Called on the JS thread: everything queued so far, as one batch.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut buf = self.buf.lock();
        let events = std::mem::take(&mut *buf);
        // Under the buffer lock: an event pushed right after counts as
        // pending for the next batch instead of being zeroed with this one.
        self.inflow.drained();
        drop(buf);
        events
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.lock().is_empty()
    }

    /// A taken batch's vector, copied out: kept for the next batch if none
    /// has started meanwhile (and it is not a large one's), so steady
    /// traffic allocates nothing per batch.
    pub(crate) fn recycle(&self, mut events: Vec<u8>) {
        if events.capacity() > RECYCLE_MAX {
            return;
        }
        let mut buf = self.buf.lock();
        if buf.is_empty() && buf.capacity() < events.capacity() {
            events.clear();
            *buf = events;
        }
    }
}

/// Largest batch vector kept for reuse.
const RECYCLE_MAX: usize = 256 * 1024;

/// How a batch reaches JS, on the JS thread: the number of bytes written to
/// `scratch` (a Buffer JS holds for the handle's life) when it fits there,
/// else a Buffer of its own. A small batch (the usual one at low rates) then
/// costs no allocation and no Buffer construction in Node, whose prototype
/// setup was ~12% of the JS thread in the heartbeat profile.
pub(crate) struct Delivery {
    pub(crate) batch: Arc<Batch>,
    scratch: Mutex<Buffer>,
}

impl Delivery {
    pub(crate) fn new(batch: Arc<Batch>, scratch: Buffer) -> Self {
        Self { batch, scratch: Mutex::new(scratch) }
    }

    /// Everything queued, as the JS callback's argument. Only on the JS
    /// thread, the only one that touches `scratch`; JS decodes it before
    /// the next call.
    pub(crate) fn take(&self) -> EventBatch {
        let events = self.batch.take();
        let mut scratch = self.scratch.lock();
        if events.len() <= scratch.len() {
            scratch[..events.len()].copy_from_slice(&events);
            let n = events.len() as u32;
            self.batch.recycle(events);
            napi::Either::A(n)
        } else {
            napi::Either::B(Buffer::from(events))
        }
    }
}

thread_local! {
    /// The batch the JS thread delivers itself right after the read round it
    /// is running (loop_read.rs): events for it need no wake-up call. Only
    /// that one: a round can produce events for another handle's batch (a
    /// Socket.IO server mounted on an App with attachApp).
    pub(crate) static DRIVING: std::cell::Cell<*const Batch> = const { std::cell::Cell::new(std::ptr::null()) };
}

pub(crate) struct EventSink {
    batch: Arc<Batch>,
    wake: EventFn,
}

impl EventSink {
    pub(crate) fn new(batch: Arc<Batch>, wake: EventFn) -> Self {
        Self { batch, wake }
    }

    fn push(&self, kind: u8, id: u64, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = self.batch.buf.lock();
        let was_empty = buf.is_empty();
        buf.push(kind);
        buf.extend_from_slice(&(id as u32).to_le_bytes());
        buf.extend_from_slice(&((id >> 32) as u32).to_le_bytes());
        let before = buf.len();
        fill(&mut buf);
        self.batch.inflow.add(buf.len() - before + 9);
        drop(buf);
        if was_empty && !DRIVING.with(|d| std::ptr::eq(d.get(), Arc::as_ptr(&self.batch))) {
            // NonBlocking: a Blocking call from a worker on a full queue can
            // deadlock against a JS thread that is calling into us.
            self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

fn remote_text(addr: &SocketAddr) -> String {
    crate::net::ip_text(addr.ip())
}

impl WsHandler for EventSink {
    fn open(&self, _: &dyn ConnHost, conn: &Arc<Conn>) {
        self.push(OPEN, conn.id, |b| b.extend_from_slice(&conn.route.to_le_bytes()));
    }

    fn message(&self, _: &dyn ConnHost, conn: &Conn, payload: &[u8], binary: bool) {
        self.push(MESSAGE, conn.id, |b| {
            b.push(binary as u8);
            put_bytes(b, payload);
        });
    }

    fn ping(&self, _: &dyn ConnHost, conn: &Conn, payload: &[u8]) {
        self.push(PING, conn.id, |b| put_bytes(b, payload));
    }

    fn pong(&self, _: &dyn ConnHost, conn: &Conn, payload: &[u8]) {
        self.push(PONG, conn.id, |b| put_bytes(b, payload));
    }

    fn drain(&self, _: &dyn ConnHost, conn: &Conn) {
        self.push(DRAIN, conn.id, |_| {});
    }

    fn close(&self, _: &dyn ConnHost, conn: &Conn, code: u16, reason: &[u8]) {
        self.push(CLOSE, conn.id, |b| {
            b.extend_from_slice(&code.to_le_bytes());
            put_bytes(b, reason);
        });
    }
}

impl RequestSink for EventSink {
    fn handoff(&self, sock: std::net::TcpStream, _remote: SocketAddr, within: std::time::Duration) {
        let fd = std::os::fd::IntoRawFd::into_raw_fd(sock);
        let ms = u32::try_from(within.as_millis()).unwrap_or(u32::MAX).max(1);
        self.push(HANDOFF, fd as u64, |b| b.extend_from_slice(&ms.to_le_bytes()));
    }

    fn request(&self, id: u64, kind: RequestKind, route: u16, req: &Request, params: &[&str], remote: SocketAddr) {
        self.push(REQUEST, id, |b| {
            b.push(match kind {
                RequestKind::Upgrade => 0,
                RequestKind::Http => 1,
            });
            b.extend_from_slice(&route.to_le_bytes());
            put_bytes(b, req.method.to_ascii_lowercase().as_bytes());
            put_bytes(b, req.path().as_bytes());
            put_bytes(b, req.query().as_bytes());
            b.extend_from_slice(&(req.headers.len() as u32).to_le_bytes());
            for (k, v) in &req.headers {
                put_bytes(b, k.as_bytes());
                put_bytes(b, v.as_bytes());
            }
            put_bytes(b, remote_text(&remote).as_bytes());
            b.extend_from_slice(&(params.len() as u32).to_le_bytes());
            for p in params {
                put_bytes(b, p.as_bytes());
            }
        });
    }

    fn aborted(&self, id: u64) {
        self.push(ABORTED, id, |_| {});
    }

    fn body(&self, id: u64, data: &[u8], last: bool) {
        self.push(HTTP_DATA, id, |b| {
            b.push(last as u8);
            put_bytes(b, data);
        });
    }

    fn writable(&self, id: u64) {
        self.push(HTTP_WRITABLE, id, |_| {});
    }
}

pub(crate) const SIO_CONNECT: u8 = 9;
pub(crate) const SIO_PACKET: u8 = 10;
pub(crate) const SIO_DISCONNECT: u8 = 11;
pub(crate) const SIO_CLOSE: u8 = 12;
/// A held polling GET can be answered (id = request id).
pub(crate) const POLL_READY: u8 = 13;
/// Raw Engine.IO sessions (`EngineServer`): open (sid, address), message
/// (binary flag, bytes), close (reason).
pub(crate) const EIO_OPEN: u8 = 14;
pub(crate) const EIO_MESSAGE: u8 = 15;
pub(crate) const EIO_CLOSE: u8 = 16;
/// A plain-HTTP connection for Node's HTTP server (id = the fd, now JS's).
pub(crate) const HANDOFF: u8 = 17;
/// A session (id = the Socket.IO client's or the raw session's key) moved
/// from polling to its WebSocket.
pub(crate) const UPGRADE: u8 = 18;
/// A Socket.IO client sent a packet the decoder refused (message: socket.io-parser's).
pub(crate) const SIO_DECODE_ERROR: u8 = 19;
/// The engine refused a request JS never saw: code, message, context (JSON),
/// method, URL and the headers ("name: value" lines).
pub(crate) const REFUSED: u8 = 20;

/// The Redis link (#12): a request or response for JS (channel, JSON,
/// attachments); the link's state (id: 0 connecting, 1 connected,
/// 2 disconnected; the error text); the answer to a command JS asked for
/// (id: its request id; ok flag, value or error text).
pub(crate) const REDIS_MESSAGE: u8 = 21;
pub(crate) const REDIS_STATE: u8 = 22;
pub(crate) const REDIS_REPLY: u8 = 23;
/// A piece of an HTTP request's body (last flag, bytes).
pub(crate) const HTTP_DATA: u8 = 24;
/// An HTTP response's queue went to the socket (`onWritable`).
pub(crate) const HTTP_WRITABLE: u8 = 25;

impl EventSink {
    pub(crate) fn redis_message(&self, channel: &str, json: &str, attachments: &[Bytes]) {
        self.push(REDIS_MESSAGE, 0, |b| {
            put_bytes(b, channel.as_bytes());
            put_bytes(b, json.as_bytes());
            b.extend_from_slice(&(attachments.len() as u32).to_le_bytes());
            for a in attachments {
                put_bytes(b, a);
            }
        });
    }

    pub(crate) fn redis_state(&self, state: u8, error: &str) {
        self.push(REDIS_STATE, u64::from(state), |b| put_bytes(b, error.as_bytes()));
    }

    pub(crate) fn redis_reply(&self, req: u64, result: Result<String, String>) {
        self.push(REDIS_REPLY, req, |b| {
            b.push(result.is_ok() as u8);
            put_bytes(b, result.unwrap_or_else(|e| e).as_bytes());
        });
    }

    pub(crate) fn eio_open(&self, key: u64, sid: &str, remote: &SocketAddr) {
        self.push(EIO_OPEN, key, |b| {
            put_bytes(b, sid.as_bytes());
            put_bytes(b, remote.ip().to_string().as_bytes());
        });
    }

    pub(crate) fn eio_message(&self, key: u64, binary: bool, data: &[u8]) {
        self.push(EIO_MESSAGE, key, |b| {
            b.push(binary as u8);
            put_bytes(b, data);
        });
    }

    pub(crate) fn eio_close(&self, key: u64, reason: CloseReason) {
        self.push(EIO_CLOSE, key, |b| put_bytes(b, reason.as_str().as_bytes()));
    }

    pub(crate) fn poll_ready_event(&self, req: u64) {
        self.push(POLL_READY, req, |_| {});
    }

    pub(crate) fn upgrade_event(&self, key: u64) {
        self.push(UPGRADE, key, |_| {});
    }

    pub(crate) fn refused_event(&self, refusal: &Refusal, req: &Request) {
        self.push(REFUSED, u64::from(refusal.code.code()), |b| {
            put_bytes(b, refusal.code.message().as_bytes());
            put_bytes(b, refusal.context.as_bytes());
            put_bytes(b, req.method.as_bytes());
            put_bytes(b, req.url.as_bytes());
            put_bytes(b, header_lines(req).as_bytes());
        });
    }
}

/// Socket.IO events share the batch with the core's: one wake-up carries both.
impl SioHandler for EventSink {
    fn connect(&self, client: &Arc<Client>, nsp: &str, auth: &str, socket_id: &str, pid: &str) {
        self.push(SIO_CONNECT, client.key, |b| {
            put_bytes(b, nsp.as_bytes());
            put_bytes(b, auth.as_bytes());
            put_bytes(b, remote_text(&client.session.remote()).as_bytes());
            put_bytes(b, socket_id.as_bytes());
            put_bytes(b, pid.as_bytes());
        });
    }

    fn packet(
        &self,
        client: &Arc<Client>,
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        data: &str,
        attachments: Vec<Bytes>,
    ) {
        self.push(SIO_PACKET, client.key, |b| {
            b.push(kind.as_byte());
            put_bytes(b, nsp.as_bytes());
            let id = id.map_or(-1.0, |i| i as f64);
            b.extend_from_slice(&id.to_le_bytes());
            put_bytes(b, data.as_bytes());
            b.extend_from_slice(&(attachments.len() as u32).to_le_bytes());
            for a in &attachments {
                put_bytes(b, a);
            }
        });
    }

    fn disconnect(&self, client: &Arc<Client>, nsp: &str) {
        self.push(SIO_DISCONNECT, client.key, |b| put_bytes(b, nsp.as_bytes()));
    }

    fn decode_error(&self, client: &Arc<Client>, message: &str) {
        self.push(SIO_DECODE_ERROR, client.key, |b| put_bytes(b, message.as_bytes()));
    }

    fn refused(&self, refusal: &Refusal, req: &Request) {
        self.refused_event(refusal, req);
    }

    fn upgrade(&self, client: &Arc<Client>) {
        self.upgrade_event(client.key);
    }

    fn close(&self, client: &Arc<Client>, reason: CloseReason) {
        self.push(SIO_CLOSE, client.key, |b| put_bytes(b, reason.as_str().as_bytes()));
    }

    fn poll_ready(&self, req: u64) {
        self.poll_ready_event(req);
    }
}
